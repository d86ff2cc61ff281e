using System.Security.Cryptography;
using CrocNet.Crypto;

namespace CrocNet.Tests.Crypto;

public class FrameTests
{
    private static readonly byte[] SessionKey = RandomNumberGenerator.GetBytes(32);

    private static byte[] Key(int connection = 0, StreamDirection direction = StreamDirection.SenderToRecipient) =>
        FrameKeys.Derive(SessionKey, direction, connection);

    private static async Task<byte[]> WriteFramesAsync(byte[] key, params (FrameType Type, byte[] Payload)[] frames)
    {
        var wire = new MemoryStream();
        using var writer = new FrameWriter(wire, key);
        foreach (var (type, payload) in frames)
        {
            if (type == FrameType.End)
            {
                await writer.WriteEndAsync(CancellationToken.None);
            }
            else
            {
                await writer.WriteAsync(type, payload, CancellationToken.None);
            }
        }

        return wire.ToArray();
    }

    private static async Task<List<(FrameType Type, byte[] Payload)>> ReadAllAsync(byte[] wire, byte[] key)
    {
        using var reader = new FrameReader(new MemoryStream(wire), key);
        var frames = new List<(FrameType, byte[])>();
        while (!reader.Ended)
        {
            var frame = await reader.ReadAsync(CancellationToken.None);
            frames.Add((frame.Type, frame.Payload.ToArray()));
        }

        return frames;
    }

    private static int FrameLength(byte[] wire, int at) =>
        FrameFormat.HeaderSize + System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(wire.AsSpan(at + 4)) + FrameFormat.TagSize;

    [Test]
    public async Task ReadAsync_RoundTrip_ReturnsEveryFrameInOrder()
    {
        var a = RandomNumberGenerator.GetBytes(100_000);
        var b = RandomNumberGenerator.GetBytes(3);
        var wire = await WriteFramesAsync(Key(), (FrameType.Data, a), (FrameType.Trailer, b), (FrameType.Data, []), (FrameType.End, []));

        var frames = await ReadAllAsync(wire, Key());

        Assert.That(frames.Select(f => f.Type), Is.EqualTo(new[] { FrameType.Data, FrameType.Trailer, FrameType.Data, FrameType.End }));
        Assert.That(frames[0].Payload, Is.EqualTo(a));
        Assert.That(frames[1].Payload, Is.EqualTo(b));
        Assert.That(wire.AsSpan().IndexOf(a.AsSpan(0, 32)), Is.EqualTo(-1), "plaintext must not appear on the wire");
    }

    [Test]
    public async Task ReadAsync_FlippedCiphertextBit_ThrowsDataTampered()
    {
        var wire = await WriteFramesAsync(Key(), (FrameType.Data, new byte[64]), (FrameType.End, []));
        wire[FrameFormat.HeaderSize + 10] ^= 0x01;

        var ex = Assert.ThrowsAsync<CrocTransferException>(() => ReadAllAsync(wire, Key()));
        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.DataTampered));
    }

    [Test]
    public async Task ReadAsync_FlippedHeaderTypeOrFlags_ThrowsDataTampered()
    {
        var wire = await WriteFramesAsync(Key(), (FrameType.Data, new byte[64]), (FrameType.End, []));
        var typeFlipped = (byte[])wire.Clone();
        typeFlipped[0] = (byte)FrameType.Trailer;
        var flagsFlipped = (byte[])wire.Clone();
        flagsFlipped[1] = (byte)FrameFlags.Last;

        Assert.That(Assert.ThrowsAsync<CrocTransferException>(() => ReadAllAsync(typeFlipped, Key()))!.Code, Is.EqualTo(CrocErrorCode.DataTampered));
        Assert.That(Assert.ThrowsAsync<CrocTransferException>(() => ReadAllAsync(flagsFlipped, Key()))!.Code, Is.EqualTo(CrocErrorCode.DataTampered));
    }

    [Test]
    public async Task ReadAsync_DroppedFrame_ThrowsDataTampered()
    {
        var wire = await WriteFramesAsync(Key(), (FrameType.Data, [1]), (FrameType.Data, [2]), (FrameType.End, []));
        var first = FrameLength(wire, 0);
        var withoutFirst = wire[first..];

        Assert.That(Assert.ThrowsAsync<CrocTransferException>(() => ReadAllAsync(withoutFirst, Key()))!.Code, Is.EqualTo(CrocErrorCode.DataTampered));
    }

    [Test]
    public async Task ReadAsync_ReorderedFrames_ThrowsDataTampered()
    {
        var wire = await WriteFramesAsync(Key(), (FrameType.Data, [1]), (FrameType.Data, [2]), (FrameType.End, []));
        var first = FrameLength(wire, 0);
        var second = FrameLength(wire, first);
        var swapped = wire.AsSpan(first, second).ToArray().Concat(wire[..first]).Concat(wire[(first + second)..]).ToArray();

        Assert.That(Assert.ThrowsAsync<CrocTransferException>(() => ReadAllAsync(swapped, Key()))!.Code, Is.EqualTo(CrocErrorCode.DataTampered));
    }

    [Test]
    public async Task ReadAsync_ReplayedFrame_ThrowsDataTampered()
    {
        var wire = await WriteFramesAsync(Key(), (FrameType.Data, [1]), (FrameType.End, []));
        var first = FrameLength(wire, 0);
        var replayed = wire[..first].Concat(wire).ToArray();

        Assert.That(Assert.ThrowsAsync<CrocTransferException>(() => ReadAllAsync(replayed, Key()))!.Code, Is.EqualTo(CrocErrorCode.DataTampered));
    }

    [Test]
    public async Task ReadAsync_StreamCutBeforeEnd_ThrowsConnectionLost()
    {
        var wire = await WriteFramesAsync(Key(), (FrameType.Data, new byte[1000]), (FrameType.End, []));
        var first = FrameLength(wire, 0);

        Assert.That(Assert.ThrowsAsync<CrocTransferException>(() => ReadAllAsync(wire[..first], Key()))!.Code, Is.EqualTo(CrocErrorCode.ConnectionLost));
        Assert.That(Assert.ThrowsAsync<CrocTransferException>(() => ReadAllAsync(wire[..(first - 5)], Key()))!.Code, Is.EqualTo(CrocErrorCode.ConnectionLost));
    }

    [Test]
    public async Task ReadAsync_FrameSplicedFromOtherConnection_ThrowsDataTampered()
    {
        var fromConnection1 = await WriteFramesAsync(Key(1), (FrameType.Data, [7]), (FrameType.End, []));

        Assert.That(Assert.ThrowsAsync<CrocTransferException>(() => ReadAllAsync(fromConnection1, Key(0)))!.Code, Is.EqualTo(CrocErrorCode.DataTampered));
    }

    [Test]
    public async Task ReadAsync_FrameReflectedFromOtherDirection_ThrowsDataTampered()
    {
        var reflected = await WriteFramesAsync(Key(0, StreamDirection.RecipientToSender), (FrameType.Accept, [7]), (FrameType.End, []));

        Assert.That(Assert.ThrowsAsync<CrocTransferException>(() => ReadAllAsync(reflected, Key(0)))!.Code, Is.EqualTo(CrocErrorCode.DataTampered));
    }

    [Test]
    public void ReadAsync_HugeLengthHeader_RefusedBeforeAllocating()
    {
        var header = new byte[FrameFormat.HeaderSize];
        FrameFormat.WriteHeader(header, FrameType.Data, FrameFlags.None, int.MaxValue);

        Assert.That(Assert.ThrowsAsync<CrocTransferException>(() => ReadAllAsync(header, Key()))!.Code, Is.EqualTo(CrocErrorCode.DataTampered));
    }

    [Test]
    public async Task WriteAsync_AfterEnd_Throws()
    {
        using var writer = new FrameWriter(new MemoryStream(), Key());
        await writer.WriteEndAsync(CancellationToken.None);

        Assert.ThrowsAsync<InvalidOperationException>(async () => await writer.WriteAsync(FrameType.Data, new byte[1], CancellationToken.None));
    }

    [Test]
    public void Derive_DifferentDirectionsAndConnections_GiveDistinctKeys()
    {
        var keys = new[] { Key(0), Key(1), Key(0, StreamDirection.RecipientToSender), Key(1, StreamDirection.RecipientToSender) };

        Assert.That(keys.Select(Convert.ToHexString).Distinct().Count(), Is.EqualTo(4));
        Assert.That(keys.All(k => k.Length == 32));
    }
}

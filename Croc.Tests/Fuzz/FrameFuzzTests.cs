using System.Security.Cryptography;
using CrocNet.Crypto;
using CsCheck;

namespace CrocNet.Tests.Fuzz;

/// <summary>
/// The frame reader under hostile bytes: random streams and every kind of damage to a real stream. The oracle is
/// the protocol's promise: every frame returned is exactly one the writer wrote, in order, and anything else is a
/// typed <see cref="CrocTransferException"/> (tampered or cut short) — never a crash, a hang or a forged frame.
/// </summary>
public class FrameFuzzTests
{
    private static readonly byte[] Key = RandomNumberGenerator.GetBytes(32);
    private static readonly (FrameType Type, byte[] Payload)[] Frames =
    [
        (FrameType.Manifest, "{\"version\":1}"u8.ToArray()),
        (FrameType.Data, RandomNumberGenerator.GetBytes(300)),
        (FrameType.Trailer, "{\"files\":[]}"u8.ToArray()),
    ];

    private static readonly byte[] Genuine = Write();

    [Test]
    public void Read_RandomStream_OnlyTypedErrors()
    {
        Fuzzing.Run(Gen.Byte.Array[0, 600], bytes => ReadAll(bytes), typeof(CrocTransferException));
    }

    [Test]
    public void Read_DamagedGenuineStream_NeverAcceptsAnAlteredFrame()
    {
        // Flip, overwrite, insert, delete or cut at any position, once or a few times.
        var damage = Gen.Select(Gen.Int[0, 4], Gen.Int[0, Genuine.Length - 1], Gen.Byte[1, 255], Gen.Int[1, 3]);
        var gen = damage.Array[1, 3];

        Fuzzing.Run(
            gen,
            edits =>
            {
                var bytes = Genuine.ToList();
                foreach (var (kind, at, value, count) in edits)
                {
                    var position = Math.Min(at, bytes.Count - 1);
                    switch (kind)
                    {
                        case 0: bytes[position] ^= value; break;
                        case 1: bytes.InsertRange(position, Enumerable.Repeat(value, count)); break;
                        case 2: bytes.RemoveRange(position, Math.Min(count, bytes.Count - position)); break;
                        case 3: bytes.RemoveRange(position, bytes.Count - position); break;
                        default: bytes[position] = value; break;
                    }

                    if (bytes.Count == 0)
                    {
                        break;
                    }
                }

                if (bytes.Count >= Genuine.Length && bytes.Take(Genuine.Length).SequenceEqual(Genuine))
                {
                    // An edit that undid itself, or bytes appended after the authenticated end (an insertion just before
                    // a last byte of the same value is one): the reader stops at the end mark and never reads them.
                    Fuzzing.Check(ReadAll(bytes.ToArray(), out var whole).Count == Frames.Length && whole, "the genuine frames read to their end");
                    return;
                }

                // Every frame handed out before the reader stops (at an error or at the end) is checked, not only
                // those of a read that ends without an error.
                var read = ReadAll(bytes.ToArray(), out var completed);
                Fuzzing.Check(!completed, "a damaged stream must never read to its authenticated end");
                Fuzzing.Check(read.Count <= Frames.Length, "no more frames than were written");
                for (var i = 0; i < read.Count; i++)
                {
                    Fuzzing.Check(read[i].Type == Frames[i].Type && read[i].Payload.AsSpan().SequenceEqual(Frames[i].Payload), $"frame {i} is the one written");
                }
            });
    }

    [Test]
    public void Read_GenuineStream_ReadsEveryFrameToTheEnd()
    {
        var read = ReadAll(Genuine, out var completed);

        Assert.That(completed, Is.True);
        Assert.That(read.Select(f => f.Payload), Is.EqualTo(Frames.Select(f => f.Payload)));
    }

    private static List<(FrameType Type, byte[] Payload)> ReadAll(byte[] bytes) => ReadAll(bytes, out _);

    /// <summary>Every frame read until the end mark or the reader's first (typed) error, which ends the read.</summary>
    private static List<(FrameType Type, byte[] Payload)> ReadAll(byte[] bytes, out bool completed)
    {
        completed = false;
        var frames = new List<(FrameType, byte[])>();
        using var reader = new FrameReader(new MemoryStream(bytes), Key);
        // A reader must always stop: at the end mark, at an error, or when the bytes run out.
        for (var guard = 0; guard < 1000; guard++)
        {
            Frame frame;
            try
            {
                frame = reader.ReadAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
            }
            catch (CrocTransferException)
            {
                return frames;
            }

            if (frame.Type == FrameType.End)
            {
                completed = reader.Ended;
                return frames;
            }

            frames.Add((frame.Type, frame.Payload.ToArray()));
        }

        Assert.Fail("the reader returned 1000 frames from a short stream");
        return frames;
    }

    private static byte[] Write()
    {
        var stream = new MemoryStream();
        using (var writer = new FrameWriter(stream, Key))
        {
            foreach (var (type, payload) in Frames)
            {
                writer.WriteAsync(type, payload, CancellationToken.None).AsTask().GetAwaiter().GetResult();
            }

            writer.WriteEndAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
        }

        return stream.ToArray();
    }
}

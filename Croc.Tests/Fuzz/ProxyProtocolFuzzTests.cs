using System.Diagnostics;
using System.Net;
using System.Text;
using CrocNet.Relay.Net;
using CrocNet.Tests.Relay.Net;
using CsCheck;

namespace CrocNet.Tests.Fuzz;

/// <summary>
/// The PROXY protocol header reader under any bytes, delivered in any pieces: it never crashes, answers a header, no
/// header, or a typed refusal, never consumes a byte past the header (nor past its bounds), and gives the same answer
/// however the bytes arrive.
/// </summary>
public class ProxyProtocolFuzzTests
{
    private static readonly byte[] Trailer = Encoding.ASCII.GetBytes("{\"channel\":\"abc\",\"uuid\":\"u\"}\n");

    [Test]
    public void ReadAsync_AnyBytesAnyPieces_HeaderOrTypedRefusalAndNothingPastTheHeader()
    {
        string[] families = ["TCP4", "TCP6", "UNKNOWN", "tcp4", "UDP4", ""];
        string[] addresses = ["192.0.2.7", "2001:db8::7", "::ffff:1.2.3.4", "1.2.3", "", "256.1.1.1"];
        var v1 = Gen.Select(Gen.Int[0, families.Length - 1], Gen.Int[0, addresses.Length - 1], Gen.Int[-1, 70000])
            .Select((family, address, port) => Encoding.ASCII.GetBytes($"PROXY {families[family]} {addresses[address]} 198.51.100.1 {port} 9010\r\n"));
        var v2 = Gen.Select(Gen.Int[0, 15], Gen.Byte, Gen.Byte.Array[0, 80])
            .Select((command, family, block) => ProxyProtocolTests.V2(command, family, block));
        var valid = Gen.OneOf(v1, v2);

        // Valid-looking headers, then cut, flipped or lengthened; and plain hostile bytes.
        var mutated = Gen.Select(valid, Gen.Int[0, 3], Gen.Int[0, 600], Gen.Byte).Select((bytes, how, at, value) => how switch
        {
            0 => bytes,
            1 => bytes[..Math.Min(at, bytes.Length)],
            2 when bytes.Length > 0 => Flip(bytes, at % bytes.Length, value),
            _ => [.. bytes, .. new byte[at]],
        });
        var data = Gen.Frequency(
            (3, mutated),
            (1, Fuzzing.HostileBytes("PROXY TCP46UNKOW0123456789.: \r\n\0QUIT", 200)),
            (1, Gen.Byte.Array[0, 700].Select(b => b.Length > 0 ? [(byte)'\r', .. b] : b)));
        var gen = Gen.Select(data, Gen.Int[1, 40], Gen.Bool);

        var clock = Stopwatch.StartNew();
        Fuzzing.Run(gen, ((byte[] Bytes, int Piece, bool WithTrailer) c) =>
        {
            var input = c.WithTrailer ? [.. c.Bytes, .. Trailer] : c.Bytes;
            var whole = Read(input, int.MaxValue);
            var pieces = Read(input, c.Piece);
            // A refused header may be read partly, depending on the pieces (the connection is refused anyway).
            Fuzzing.Check(whole.Header == pieces.Header && whole.Error == pieces.Error && (whole.Error != ProxyHeaderError.None || whole.Consumed == pieces.Consumed), $"in pieces of {c.Piece}: {pieces}, whole: {whole}");

            var (header, error, consumed) = whole;
            Fuzzing.Check(Enum.IsDefined(error), $"undefined error {error}");
            if (header is { } h)
            {
                Fuzzing.Check(error == ProxyHeaderError.None && consumed == h.Length, $"a header of {h.Length} bytes, {consumed} consumed");
                Fuzzing.Check(consumed <= (input[0] == (byte)'P' ? ProxyProtocol.MaxV1Length : ProxyProtocol.MaxV2Length), $"{consumed} bytes is past the bounds");
                Fuzzing.Check(ProxyProtocol.Parse(input.AsSpan(0, consumed), out var again, out _, out _) == ProxyProtocol.Status.Complete && again == h, "the header alone parses alike");
            }
            else if (error == ProxyHeaderError.None)
            {
                Fuzzing.Check(consumed == 0, $"no header, but {consumed} bytes consumed");
            }
            else
            {
                Fuzzing.Check(Math.Max(consumed, pieces.Consumed) <= (input[0] == (byte)'P' ? ProxyProtocol.MaxV1Length : ProxyProtocol.MaxV2Length), $"{consumed} bytes consumed before a refusal");
            }
        });
        if (Fuzzing.Iterations <= 100_000)
        {
            Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)), "10^5 cases within 10 s");
        }
    }

    private static byte[] Flip(byte[] bytes, int at, byte value)
    {
        var copy = (byte[])bytes.Clone();
        copy[at] = value;
        return copy;
    }

    private static (ProxyHeader? Header, ProxyHeaderError Error, int Consumed) Read(byte[] input, int piece)
    {
        var source = new ProxyProtocolTests.Source(input, () => piece);
        var task = source.ReadAsync().AsTask();
        Fuzzing.Check(task.IsCompleted, "a reader over bytes at hand completes at once");
        var (header, error) = task.GetAwaiter().GetResult();
        return (header, error, source.Position);
    }
}

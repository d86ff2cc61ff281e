using System.Net;
using System.Text;
using CrocNet.Relay.Net;

namespace CrocNet.Tests.Relay.Net;

/// <summary>The PROXY protocol header reader: versions 1 and 2, exactly the header consumed, typed refusals.</summary>
[CancelAfter(10_000)]
public class ProxyProtocolTests
{
    internal static byte[] V1(string line) => Encoding.ASCII.GetBytes(line);

    internal static byte[] V2(int command, byte family, byte[] block)
    {
        var header = new List<byte>(ProxyProtocol.V2Signature.ToArray())
        {
            (byte)(0x20 | command),
            family,
            (byte)(block.Length >> 8),
            (byte)block.Length,
        };
        header.AddRange(block);
        return [.. header];
    }

    internal static byte[] V2Tcp(IPAddress source, IPAddress destination, int sourcePort = 40000, int destinationPort = 9010, byte[]? tlvs = null)
    {
        var block = new List<byte>(source.GetAddressBytes());
        block.AddRange(destination.GetAddressBytes());
        block.AddRange([(byte)(sourcePort >> 8), (byte)sourcePort, (byte)(destinationPort >> 8), (byte)destinationPort]);
        block.AddRange(tlvs ?? []);
        return V2(1, source.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? (byte)0x11 : (byte)0x21, [.. block]);
    }

    /// <summary>A stream read through peek and consume, delivering at most <paramref name="chunk"/> bytes per peek.</summary>
    internal sealed class Source(byte[] data, Func<int> chunk)
    {
        public int Position { get; private set; }

        public ValueTask<int> PeekAsync(Memory<byte> target, CancellationToken cancellationToken)
        {
            var count = Math.Min(Math.Min(target.Length, data.Length - Position), Math.Max(1, chunk()));
            data.AsSpan(Position, count).CopyTo(target.Span);
            return ValueTask.FromResult(count);
        }

        public ValueTask ConsumeAsync(Memory<byte> target, CancellationToken cancellationToken)
        {
            if (!target.Span.SequenceEqual(data.AsSpan(Position, target.Length)))
            {
                throw new InvalidOperationException("consumed bytes that were not peeked");
            }

            Position += target.Length;
            return ValueTask.CompletedTask;
        }

        public ValueTask<(ProxyHeader? Header, ProxyHeaderError Error)> ReadAsync(CancellationToken cancellationToken = default)
            => ProxyProtocol.ReadAsync(PeekAsync, ConsumeAsync, cancellationToken);
    }

    private static readonly byte[] Hello = Encoding.ASCII.GetBytes("{\"channel\":\"abc\",\"uuid\":\"u\"}\n");

    private static async Task<(ProxyHeader? Header, ProxyHeaderError Error, int Consumed)> ReadAsync(byte[] header, int chunk = int.MaxValue)
    {
        var source = new Source([.. header, .. Hello], () => chunk);
        var (parsed, error) = await source.ReadAsync();
        return (parsed, error, source.Position);
    }

    [TestCase("PROXY TCP4 192.0.2.7 198.51.100.1 40000 9010\r\n", "192.0.2.7")]
    [TestCase("PROXY TCP6 2001:db8::7 2001:db8::1 40000 9010\r\n", "2001:db8::7")]
    [TestCase("PROXY TCP6 ::ffff:192.0.2.7 ::ffff:198.51.100.1 1 65535\r\n", "192.0.2.7")]
    public async Task ReadAsync_V1_ReturnsTheSourceAndConsumesExactlyTheHeader(string line, string expected)
    {
        foreach (var chunk in new[] { int.MaxValue, 1, 7 })
        {
            var (header, error, consumed) = await ReadAsync(V1(line), chunk);
            Assert.That(error, Is.EqualTo(ProxyHeaderError.None));
            Assert.That(header!.Value.Source!.ToString(), Is.EqualTo(expected));
            Assert.That(consumed, Is.EqualTo(line.Length), "the hello after the header stays unread");
        }
    }

    [Test]
    public async Task ReadAsync_V1Unknown_KeepsThePeer()
    {
        var (header, error, consumed) = await ReadAsync(V1("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"));
        Assert.That((error, header!.Value.Source, consumed), Is.EqualTo((ProxyHeaderError.None, (IPAddress?)null, 35)));
        (header, error, consumed) = await ReadAsync(V1("PROXY UNKNOWN\r\n"));
        Assert.That((error, header!.Value.Source, consumed), Is.EqualTo((ProxyHeaderError.None, (IPAddress?)null, 15)));
    }

    [Test]
    public async Task ReadAsync_V1Longest_IsRead()
    {
        var line = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        Assert.That(line, Has.Length.EqualTo(ProxyProtocol.MaxV1Length));
        var (header, error, consumed) = await ReadAsync(V1(line), 3);
        Assert.That((error, header!.Value.Source, consumed), Is.EqualTo((ProxyHeaderError.None, (IPAddress?)null, line.Length)));

        line = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        (header, error, consumed) = await ReadAsync(V1(line), 3);
        Assert.That((error, header!.Value.Source, consumed), Is.EqualTo((ProxyHeaderError.None, (IPAddress?)IPAddress.Parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), line.Length)));
    }

    [TestCase("PROXY TCP4 192.0.2.7 198.51.100.1 40000 9010\n", nameof(ProxyHeaderError.Malformed))]
    [TestCase("PROXY TCP4 192.0.2.7 198.51.100.1 40000\r\n", nameof(ProxyHeaderError.Malformed))]
    [TestCase("PROXY TCP4 192.0.2.7  198.51.100.1 40000 9010\r\n", nameof(ProxyHeaderError.Malformed))]
    [TestCase("PROXY TCP4 2001:db8::7 198.51.100.1 40000 9010\r\n", nameof(ProxyHeaderError.Malformed))]
    [TestCase("PROXY TCP6 192.0.2.7 198.51.100.1 40000 9010\r\n", nameof(ProxyHeaderError.Malformed))]
    [TestCase("PROXY TCP4 192.0.2.7 198.51.100.1 65536 9010\r\n", nameof(ProxyHeaderError.Malformed))]
    [TestCase("PROXY TCP4 192.0.2.7 198.51.100.1 040 9010\r\n", nameof(ProxyHeaderError.Malformed))]
    [TestCase("PROXY TCP4 127.1 198.51.100.1 40 9010\r\n", nameof(ProxyHeaderError.Malformed))]
    [TestCase("PROXY UDP4 192.0.2.7 198.51.100.1 40000 9010\r\n", nameof(ProxyHeaderError.Malformed))]
    [TestCase("PROXY tcp4 192.0.2.7 198.51.100.1 40000 9010\r\n", nameof(ProxyHeaderError.Malformed))]
    [TestCase("PROXYTCP4 192.0.2.7 198.51.100.1 40000 9010\r\n", nameof(ProxyHeaderError.Malformed))]
    [TestCase("PRIVATE\r\n", nameof(ProxyHeaderError.Malformed))]
    [TestCase("PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n", nameof(ProxyHeaderError.Malformed))]
    public async Task ReadAsync_V1Malformed_IsRefusedTyped(string line, string expected)
    {
        var (header, error, consumed) = await ReadAsync(V1(line));
        Assert.That((header, error), Is.EqualTo(((ProxyHeader?)null, Enum.Parse<ProxyHeaderError>(expected))));
        Assert.That(consumed, Is.LessThanOrEqualTo(line.Length));
    }

    [Test]
    public async Task ReadAsync_V1WithoutEnd_IsTooLongAtTheBound()
    {
        var line = V1("PROXY TCP4 " + new string('1', 200));
        var source = new Source(line, () => 1000);
        var (header, error) = await source.ReadAsync();
        Assert.That((header, error), Is.EqualTo(((ProxyHeader?)null, ProxyHeaderError.TooLong)));
        Assert.That(source.Position, Is.LessThanOrEqualTo(ProxyProtocol.MaxV1Length), "never reads past the bound");
    }

    [Test]
    public async Task ReadAsync_V2Tcp4_ReturnsTheSource()
    {
        var bytes = V2Tcp(IPAddress.Parse("192.0.2.7"), IPAddress.Parse("198.51.100.1"));
        foreach (var chunk in new[] { int.MaxValue, 1, 5 })
        {
            var (header, error, consumed) = await ReadAsync(bytes, chunk);
            Assert.That((error, header!.Value.Source, consumed), Is.EqualTo((ProxyHeaderError.None, (IPAddress?)IPAddress.Parse("192.0.2.7"), bytes.Length)));
        }
    }

    [Test]
    public async Task ReadAsync_V2Tcp6WithTlvs_ReturnsTheSourceAndSkipsTheTlvs()
    {
        // A TLV such as a load balancer's endpoint id (type 0xEA) follows the addresses; it is consumed with the header.
        var bytes = V2Tcp(IPAddress.Parse("2001:db8::7"), IPAddress.Parse("2001:db8::1"), tlvs: [0xEA, 0x00, 0x05, 0x01, (byte)'v', (byte)'p', (byte)'c', (byte)'e']);
        var (header, error, consumed) = await ReadAsync(bytes, 3);
        Assert.That((error, header!.Value.Source, consumed), Is.EqualTo((ProxyHeaderError.None, (IPAddress?)IPAddress.Parse("2001:db8::7"), bytes.Length)));
    }

    [Test]
    public async Task ReadAsync_V2Local_KeepsThePeer()
    {
        var bytes = V2(0, 0x00, []);
        var (header, error, consumed) = await ReadAsync(bytes);
        Assert.That((error, header!.Value.Source, consumed), Is.EqualTo((ProxyHeaderError.None, (IPAddress?)null, 16)));

        // LOCAL ignores an address block, but consumes it.
        bytes = V2(0, 0x11, new byte[12]);
        (header, error, consumed) = await ReadAsync(bytes);
        Assert.That((error, header!.Value.Source, consumed), Is.EqualTo((ProxyHeaderError.None, (IPAddress?)null, 28)));
    }

    [TestCase(0x12, nameof(ProxyHeaderError.Unsupported))]
    [TestCase(0x22, nameof(ProxyHeaderError.Unsupported))]
    [TestCase(0x31, nameof(ProxyHeaderError.Unsupported))]
    [TestCase(0x41, nameof(ProxyHeaderError.Malformed))]
    [TestCase(0x13, nameof(ProxyHeaderError.Malformed))]
    public async Task ReadAsync_V2OtherFamilies_AreRefused(int family, string expected)
    {
        var (header, error, _) = await ReadAsync(V2(1, (byte)family, new byte[36]));
        Assert.That((header, error), Is.EqualTo(((ProxyHeader?)null, Enum.Parse<ProxyHeaderError>(expected))));
    }

    [Test]
    public async Task ReadAsync_V2BadVersionCommandOrShortBlock_IsRefused()
    {
        var wrongVersion = V2Tcp(IPAddress.Parse("192.0.2.7"), IPAddress.Parse("198.51.100.1"));
        wrongVersion[12] = 0x11;
        Assert.That((await ReadAsync(wrongVersion)).Error, Is.EqualTo(ProxyHeaderError.Malformed));
        Assert.That((await ReadAsync(V2(2, 0x11, new byte[12]))).Error, Is.EqualTo(ProxyHeaderError.Unsupported));
        Assert.That((await ReadAsync(V2(1, 0x11, new byte[11]))).Error, Is.EqualTo(ProxyHeaderError.Malformed));
        Assert.That((await ReadAsync(V2(1, 0x21, new byte[35]))).Error, Is.EqualTo(ProxyHeaderError.Malformed));
    }

    [Test]
    public async Task ReadAsync_V2Oversize_IsTooLongBeforeReadingTheBlock()
    {
        var bytes = V2(1, 0x11, new byte[ProxyProtocol.MaxV2Length - 16 + 1]);
        var source = new Source(bytes, () => int.MaxValue);
        var (header, error) = await source.ReadAsync();
        Assert.That((header, error), Is.EqualTo(((ProxyHeader?)null, ProxyHeaderError.TooLong)));
        Assert.That(source.Position, Is.LessThanOrEqualTo(16), "the oversize block is never read");
    }

    [Test]
    public async Task ReadAsync_BadSignature_IsMalformed()
    {
        var bytes = V2Tcp(IPAddress.Parse("192.0.2.7"), IPAddress.Parse("198.51.100.1"));
        bytes[5] ^= 0x40;
        Assert.That((await ReadAsync(bytes)).Error, Is.EqualTo(ProxyHeaderError.Malformed));
    }

    [Test]
    public async Task ReadAsync_Truncated_IsTruncated()
    {
        foreach (var whole in new[] { V1("PROXY TCP4 192.0.2.7 198.51.100.1 40000 9010\r\n"), V2Tcp(IPAddress.Parse("192.0.2.7"), IPAddress.Parse("198.51.100.1")) })
        {
            for (var cut = 1; cut < whole.Length; cut++)
            {
                var source = new Source(whole[..cut], () => 4);
                var (header, error) = await source.ReadAsync();
                Assert.That((header, error), Is.EqualTo(((ProxyHeader?)null, ProxyHeaderError.Truncated)), $"cut at {cut}");
            }
        }
    }

    [Test]
    public async Task ReadAsync_NoHeader_ConsumesNothing()
    {
        var source = new Source(Hello, () => int.MaxValue);
        var (header, error) = await source.ReadAsync();
        Assert.That((header, error, source.Position), Is.EqualTo(((ProxyHeader?)null, ProxyHeaderError.None, 0)));

        var empty = new Source([], () => 1);
        Assert.That(await empty.ReadAsync(), Is.EqualTo(((ProxyHeader?)null, ProxyHeaderError.None)));
    }
}

using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using CrocNet.Relay;
using CrocNet.Relay.Staple;
using CrocNet.Tests.Relay.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using static CrocNet.Tests.Relay.RelayTestKit;

namespace CrocNet.Tests.Relay.Hosting;

/// <summary>
/// Trusted proxies through the real relay: forwarded HTTP client addresses and PROXY protocol headers on the TCP ports
/// count for the IP rule only when the proxy is trusted; from anyone else they are ignored (HTTP) or refused (TCP).
/// </summary>
[CancelAfter(20_000)]
public class TrustedProxyTests
{
    private static readonly IPAddress Fourth = IPAddress.Parse("127.0.0.4");

    private static Task<CrocRelayServer> StartTrustingAsync(CancellationToken cancellationToken, Action<CrocRelayServerOptions>? configure = null)
        => StartRelayAsync(cancellationToken, o =>
        {
            o.Relay.TrustedProxies = ["127.0.0.1"];
            o.Relay.ProxyProtocol = true;
            configure?.Invoke(o);
        });

    private static HttpClient Forwarding(Uri baseAddress, IPAddress source, string forwardedFor)
    {
        var client = Client(baseAddress, source);
        client.DefaultRequestHeaders.Add("X-Forwarded-For", forwardedFor);
        return client;
    }

    [Test]
    public async Task Http_XForwardedForFromTrustedProxy_ThirdForwardedAddressGetsIpLimit(CancellationToken cancellationToken)
    {
        await using var relay = await StartTrustingAsync(cancellationToken);
        using var a = Forwarding(relay.BaseAddress, IPAddress.Loopback, "10.0.0.2");
        using var b = Forwarding(relay.BaseAddress, IPAddress.Loopback, "198.51.100.9, 10.0.0.3");
        using var c = Forwarding(relay.BaseAddress, IPAddress.Loopback, "10.0.0.4");

        var pair = await OpenAsync(a, b, cancellationToken, confirm: false);
        AssertError(await PostAsync(c, "channel", new { channel = pair.Channel, uuid = pair.RecipientUuid }, cancellationToken), HttpStatusCode.Forbidden, "ip_limit");
        await OkAsync(PostAsync(b, "channel", new { channel = pair.Channel, uuid = pair.RecipientUuid }, cancellationToken));
    }

    [Test]
    public async Task Http_XForwardedForFromUntrustedPeer_IsIgnoredAndHintedOnce(CancellationToken cancellationToken)
    {
        var lines = new ConcurrentQueue<(int EventId, string Text)>();
        using var factory = LoggerFactory.Create(l => l.SetMinimumLevel(LogLevel.Trace).AddProvider(new CollectingProvider(lines)));
        await using var relay = await StartTrustingAsync(cancellationToken, o => o.LoggerFactory = factory);
        using var a = Forwarding(relay.BaseAddress, Second, "10.0.0.2");
        using var b = Forwarding(relay.BaseAddress, Second, "10.0.0.3");
        using var c = Forwarding(relay.BaseAddress, Second, "10.0.0.4");

        // All three are 127.0.0.2 to the relay: one address, so no ip_limit.
        var pair = await OpenAsync(a, b, cancellationToken, confirm: false);
        await OkAsync(PostAsync(c, "channel", new { channel = pair.Channel, uuid = pair.RecipientUuid }, cancellationToken));

        var hints = lines.Where(l => l.EventId == 40).ToList();
        Assert.That(hints, Has.Count.EqualTo(1), "once per peer");
        Assert.That(hints[0].Text, Does.Contain("X-Forwarded-For").And.Contain("127.0.0.2").And.Contain("TrustedProxies"));
    }

    private static string V1(IPAddress source, int port) => $"PROXY TCP4 {source} 127.0.0.1 40000 {port}\r\n";

    private static async Task<(Socket Socket, string? Answer)> ViaProxyAsync(int port, byte[] header, string hello, CancellationToken cancellationToken, IPAddress? proxy = null)
    {
        var socket = await ConnectAsync(port, cancellationToken, proxy ?? IPAddress.Loopback);
        byte[] bytes = [.. header, .. Encoding.ASCII.GetBytes(hello)];
        await SendAsync(socket, bytes.AsMemory(), cancellationToken);
        return (socket, await ReadLineAsync(socket, cancellationToken));
    }

    [TestCase(1)]
    [TestCase(2)]
    public async Task Tcp_ProxyHeaderFromTrustedProxy_SourceCountsForTheIpRule(int version, CancellationToken cancellationToken)
    {
        await using var relay = await StartTrustingAsync(cancellationToken);
        using var a = Client(relay.BaseAddress, Second);
        using var b = Client(relay.BaseAddress, Third);
        var pair = await OpenAsync(a, b, cancellationToken);
        byte[] Header(IPAddress source, int port) => version == 1
            ? Encoding.ASCII.GetBytes(V1(source, port))
            : ProxyProtocolTests.V2Tcp(source, IPAddress.Loopback, 40000, port);

        // Both legs come from the proxy (127.0.0.1, a third address of its own); their headers name the participants.
        var (s, sAnswer) = await ViaProxyAsync(relay.Ports[0], Header(Second, relay.Ports[0]), HelloLine(pair.Channel, pair.SenderUuid), cancellationToken);
        var (r, rAnswer) = await ViaProxyAsync(relay.Ports[0], Header(Third, relay.Ports[0]), HelloLine(pair.Channel, pair.RecipientUuid), cancellationToken);
        using (s)
        using (r)
        {
            Assert.That((sAnswer, rAnswer), Is.EqualTo(("ok", "ok")));
            await SendAsync(s, "through the proxy\n", cancellationToken);
            Assert.That(await ReadLineAsync(r, cancellationToken), Is.EqualTo("through the proxy"));

            // A third forwarded address is a third address.
            var (third, answer) = await ViaProxyAsync(relay.Ports[1], Header(Fourth, relay.Ports[1]), HelloLine(pair.Channel, pair.SenderUuid), cancellationToken);
            using (third)
            {
                Assert.That(answer, Is.EqualTo("error ip_limit"));
            }
        }
    }

    [Test]
    public async Task Tcp_TrustedProxyWithoutHeader_RefusedWhenProxyProtocolIsOn_ItsOwnAddressWhenOff(CancellationToken cancellationToken)
    {
        await using var relay = await StartTrustingAsync(cancellationToken);
        using var a = Client(relay.BaseAddress);
        using var b = Client(relay.BaseAddress, Second);
        var pair = await OpenAsync(a, b, cancellationToken);
        var (s, answer) = await HelloAsync(relay.Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        using (s)
        {
            Assert.That(answer, Is.EqualTo("error bad_request"), "behind a PROXY-protocol balancer the header is required, never guessed");
        }

        // Without ProxyProtocol no header is read at all: the trusted peer is its own address, and a PROXY line is a bad hello.
        await using var plain = await StartTrustingAsync(cancellationToken, o => o.Relay.ProxyProtocol = false);
        using var c = Client(plain.BaseAddress);
        using var d = Client(plain.BaseAddress, Second);
        var other = await OpenAsync(c, d, cancellationToken);
        var (header, headerAnswer) = await ViaProxyAsync(plain.Ports[0], "PROXY TCP4 10.9.9.9 127.0.0.1 5000 9010\r\n"u8.ToArray(), HelloLine(other.Channel, other.SenderUuid), cancellationToken);
        using (header)
        {
            Assert.That(headerAnswer, Is.EqualTo("error bad_request"));
        }

        var (bare, bareAnswer) = await HelloAsync(plain.Ports[1], other.Channel, other.SenderUuid, cancellationToken);
        using (bare)
        {
            Assert.That(bareAnswer, Is.EqualTo("ok"));
        }

        // A LOCAL header (the proxy's own connection) keeps the proxy's address too.
        var (local, localAnswer) = await ViaProxyAsync(relay.Ports[1], ProxyProtocolTests.V2(0, 0x00, []), HelloLine(pair.Channel, pair.SenderUuid), cancellationToken);
        using (local)
        {
            Assert.That(localAnswer, Is.EqualTo("ok"));
        }
    }

    [Test]
    public async Task Tcp_HeaderNotCompleteWithinHelloTimeout_IsRefused(CancellationToken cancellationToken)
    {
        await using var relay = await StartTrustingAsync(cancellationToken, o => o.Relay.HelloTimeout = TimeSpan.FromMilliseconds(300));
        using var socket = await ConnectAsync(relay.Ports[0], cancellationToken);
        await SendAsync(socket, "PROXY TCP4 127.0.0.2", cancellationToken);
        Assert.That(await ReadLineAsync(socket, cancellationToken), Is.EqualTo("error bad_request"));
    }

    [TestCase(1)]
    [TestCase(2)]
    public async Task Tcp_ProxyHeaderFromUntrustedPeer_IsABadHello(int version, CancellationToken cancellationToken)
    {
        await using var relay = await StartTrustingAsync(cancellationToken);
        using var a = Client(relay.BaseAddress, Second);
        using var b = Client(relay.BaseAddress, Third);
        var pair = await OpenAsync(a, b, cancellationToken);
        var header = version == 1 ? Encoding.ASCII.GetBytes(V1(Second, relay.Ports[0])) : ProxyProtocolTests.V2Tcp(Second, IPAddress.Loopback, 40000, relay.Ports[0]);

        // 127.0.0.2 claims to forward its own participant: not a proxy, so the header is just bytes before the hello.
        var (socket, answer) = await ViaProxyAsync(relay.Ports[0], header, HelloLine(pair.Channel, pair.SenderUuid), cancellationToken, Second);
        using (socket)
        {
            Assert.That(answer, Is.EqualTo("error bad_request"));
        }
    }

    private static IEnumerable<TestCaseData> BadHeaders()
    {
        yield return new TestCaseData(Encoding.ASCII.GetBytes("PROXY TCP4 127.0.0.2 127.0.0.1 40000"), true).SetName("Tcp_TruncatedV1_IsRefused");
        yield return new TestCaseData(ProxyProtocolTests.V2Tcp(Second, IPAddress.Loopback)[..20], true).SetName("Tcp_TruncatedV2_IsRefused");
        yield return new TestCaseData(Encoding.ASCII.GetBytes("PROXY TCP4 " + new string('9', 300) + "\r\n"), false).SetName("Tcp_OversizeV1_IsRefused");
        yield return new TestCaseData(ProxyProtocolTests.V2(1, 0x11, new byte[2000]), false).SetName("Tcp_OversizeV2_IsRefused");
        yield return new TestCaseData(Encoding.ASCII.GetBytes("PROXY TCP4 garbage garbage 1 2\r\n"), false).SetName("Tcp_GarbageV1_IsRefused");
        yield return new TestCaseData(new byte[] { 13, 10, 13, 10, 0, 13, 10, 81, 85, 73, 84, 10, 0x99, 0x11, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 }, false).SetName("Tcp_GarbageV2_IsRefused");
    }

    [TestCaseSource(nameof(BadHeaders))]
    public async Task Tcp_BadHeaderFromTrustedProxy_IsRefusedWithBadRequest(byte[] header, bool endsEarly, CancellationToken cancellationToken)
    {
        await using var relay = await StartTrustingAsync(cancellationToken);
        using var socket = await ConnectAsync(relay.Ports[0], cancellationToken);
        await SendAsync(socket, header.AsMemory(), cancellationToken);
        if (endsEarly)
        {
            socket.Shutdown(SocketShutdown.Send);
        }

        Assert.That(await ReadLineAsync(socket, cancellationToken), Is.EqualTo("error bad_request"));
        Assert.That(await EventuallyAsync(() => relay.Services.GetRequiredService<StapleListenerService>().OpenConnections == 0, TimeSpan.FromSeconds(5), cancellationToken), Is.True);
    }

    [Test]
    public async Task Tcp_TrustedProxy_IsExemptFromPerAddressCaps(CancellationToken cancellationToken)
    {
        await using var relay = await StartTrustingAsync(cancellationToken, o =>
        {
            o.Relay.Ports = [0];
            o.Relay.MaxConnectionsPerAddress = 2;
            o.Relay.MaxPendingHellosPerAddress = 2;
        });
        var listeners = relay.Services.GetRequiredService<StapleListenerService>();
        var sockets = new List<Socket>();
        try
        {
            for (var i = 0; i < 5; i++)
            {
                sockets.Add(await ConnectAsync(relay.Ports[0], cancellationToken));
            }

            // Five clients behind one proxy, none has said hello yet: all held, past the per-address caps of two.
            Assert.That(await EventuallyAsync(() => listeners.OpenConnections == 5 && listeners.PendingHellos == 5, TimeSpan.FromSeconds(5), cancellationToken), Is.True, $"open {listeners.OpenConnections}, pending {listeners.PendingHellos}");
            // An untrusted address still has its own two.
            for (var i = 0; i < 2; i++)
            {
                sockets.Add(await ConnectAsync(relay.Ports[0], cancellationToken, Second));
            }

            Assert.That(await EventuallyAsync(() => listeners.OpenConnections == 7, TimeSpan.FromSeconds(5), cancellationToken), Is.True, $"open {listeners.OpenConnections}");
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }

    private sealed class CollectingProvider(ConcurrentQueue<(int EventId, string Text)> lines) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Collecting(lines);

        public void Dispose()
        {
        }

        private sealed class Collecting(ConcurrentQueue<(int EventId, string Text)> lines) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
                => lines.Enqueue((eventId.Id, formatter(state, exception)));
        }
    }
}

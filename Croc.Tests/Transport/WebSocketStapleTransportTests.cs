using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using CrocNet.Rendezvous;
using CrocNet.Transport;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrocNet.Tests.Transport;

/// <summary>WebSocket legs against a small WebSocket endpoint on Kestrel that speaks the leg protocol and pipes a lane's two legs.</summary>
public class WebSocketStapleTransportTests
{
    private static readonly StapleTicket Sender = new("chan1234", "uuid-sender");
    private static readonly StapleTicket Recipient = new("chan1234", "uuid-recipient");

    [TestCase("http://relay.example/", "ws://relay.example/staple")]
    [TestCase("https://relay.example/", "wss://relay.example/staple")]
    [TestCase("http://relay.example:9009/", "ws://relay.example:9009/staple")]
    [TestCase("https://relay.example:8443/croc/", "wss://relay.example:8443/croc/staple")]
    [TestCase("http://relay.example/croc", "ws://relay.example/croc/staple")]
    [TestCase("http://user:secret@relay.example/", "ws://relay.example/staple")]
    [TestCase("http://[::1]:9009/", "ws://[::1]:9009/staple")]
    public void LegUri_RelayBase_StapleUnderTheSamePathWithTheWebSocketScheme(string relay, string expected) =>
        Assert.That(WebSocketStapleTransport.LegUri(new Uri(relay)).ToString(), Is.EqualTo(expected));

    [Test]
    [CancelAfter(20_000)]
    public async Task ConnectAsync_TwoLegsOfALane_BytesPassBothWaysInMessagesOfAtMost64KiB(CancellationToken cancellationToken)
    {
        await using var host = await WebSocketLegHost.StartAsync(cancellationToken, pathBase: "/croc");
        using var http = new HttpMessageInvoker(new SocketsHttpHandler());
        var transport = new WebSocketStapleTransport(http, TimeProvider.System);
        var target = Target(host.BaseAddress);

        await using var sender = await transport.ConnectAsync(target, 2, Sender, cancellationToken);
        await using var recipient = await transport.ConnectAsync(target, 2, Recipient, cancellationToken);
        var data = RandomNumberGenerator.GetBytes((3 * 1024 * 1024) + 17);
        var sending = sender.WriteAsync(data, cancellationToken).AsTask();
        var received = new byte[data.Length];
        await recipient.ReadExactlyAsync(received, cancellationToken);
        await sending;
        await recipient.WriteAsync(new byte[] { 1, 2, 3 }, cancellationToken);
        var back = new byte[3];
        await sender.ReadExactlyAsync(back, cancellationToken);

        Assert.That(received.AsSpan().SequenceEqual(data), Is.True, "the bytes arrive unchanged");
        Assert.That(back, Is.EqualTo(new byte[] { 1, 2, 3 }));
        Assert.That(host.MaxMessage, Is.EqualTo(64 * 1024), "large writes go out as full 64 KiB messages, never larger");
        using var hello = JsonDocument.Parse(host.Hellos.First());
        Assert.That(hello.RootElement.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "channel", "uuid", "lane" }));
        Assert.That(hello.RootElement.GetProperty("lane").GetInt32(), Is.EqualTo(2));
        Assert.That(host.Authorizations, Is.All.Empty, "an open relay gets no Authorization header");
    }

    [Test]
    [CancelAfter(20_000)]
    public async Task DisposeAsync_OneLeg_ThePartnerReadsTheEndAfterTheLastBytes(CancellationToken cancellationToken)
    {
        await using var host = await WebSocketLegHost.StartAsync(cancellationToken);
        using var http = new HttpMessageInvoker(new SocketsHttpHandler());
        var transport = new WebSocketStapleTransport(http, TimeProvider.System);
        var target = Target(host.BaseAddress);
        var sender = await transport.ConnectAsync(target, 0, Sender, cancellationToken);
        await using var recipient = await transport.ConnectAsync(target, 0, Recipient, cancellationToken);

        await sender.WriteAsync(new byte[] { 42 }, cancellationToken);
        await sender.DisposeAsync();

        var buffer = new byte[8];
        Assert.That(await recipient.ReadAsync(buffer, cancellationToken), Is.EqualTo(1));
        Assert.That(buffer[0], Is.EqualTo(42));
        Assert.That(await recipient.ReadAsync(buffer, cancellationToken), Is.Zero, "a close is the end of the stream");
    }

    [Test]
    [CancelAfter(20_000)]
    public async Task ReadAsync_ConnectionDropsWithoutAClose_IOException(CancellationToken cancellationToken)
    {
        await using var host = await WebSocketLegHost.StartAsync(cancellationToken);
        using var http = new HttpMessageInvoker(new SocketsHttpHandler());
        var transport = new WebSocketStapleTransport(http, TimeProvider.System);
        var target = Target(host.BaseAddress);
        await using var sender = await transport.ConnectAsync(target, 0, Sender, cancellationToken);
        var recipient = await transport.ConnectAsync(target, 0, Recipient, cancellationToken);

        // Disposing synchronously aborts: the relay sees the connection drop, and cuts the partner the same way.
        recipient.Dispose();

        Assert.CatchAsync<IOException>(async () => await sender.ReadExactlyAsync(new byte[8], cancellationToken));
    }

    [TestCase("error ip_limit", CrocErrorCode.RelayRefused, "ip_limit")]
    [TestCase("error unauthorized", CrocErrorCode.RelayAccessDenied, "unauthorized")]
    [TestCase("nonsense", CrocErrorCode.RelayRefused, "bad_reply")]
    [CancelAfter(20_000)]
    public async Task ConnectAsync_HelloRefused_TypedErrorWithTheRelaysCode(string reply, CrocErrorCode code, string relayCode, CancellationToken cancellationToken)
    {
        await using var host = await WebSocketLegHost.StartAsync(cancellationToken, reply: _ => reply);
        using var http = new HttpMessageInvoker(new SocketsHttpHandler());
        var transport = new WebSocketStapleTransport(http, TimeProvider.System);

        var ex = Assert.ThrowsAsync<CrocRelayException>(async () => await transport.ConnectAsync(Target(host.BaseAddress), 0, Sender, cancellationToken));

        Assert.That((ex!.Code, ex.RelayCode), Is.EqualTo((code, relayCode)));
        Assert.That(ex.Message, Does.Not.Contain(Sender.Uuid));
    }

    [Test]
    [CancelAfter(20_000)]
    public async Task ConnectAsync_PrivateRelay_PasswordOnTheUpgradeOnlyAndItsAbsenceDenied(CancellationToken cancellationToken)
    {
        await using var host = await WebSocketLegHost.StartAsync(cancellationToken, password: "open sesame");
        using var http = new HttpMessageInvoker(new SocketsHttpHandler());
        var transport = new WebSocketStapleTransport(http, TimeProvider.System);
        var target = Target(host.BaseAddress);

        var missing = Assert.ThrowsAsync<CrocRelayException>(async () => await transport.ConnectAsync(target, 0, Sender, cancellationToken));
        var wrong = Assert.ThrowsAsync<CrocRelayException>(async () => await transport.ConnectAsync(target, 0, Sender with { RelayPassword = "open sesam" }, cancellationToken));
        await using var right = await transport.ConnectAsync(target, 0, Sender with { RelayPassword = "open sesame" }, cancellationToken);

        Assert.That((missing!.Code, missing.StatusCode), Is.EqualTo((CrocErrorCode.RelayAccessDenied, (int?)401)));
        Assert.That(missing.Message, Does.Contain("none was given"));
        Assert.That((wrong!.Code, wrong.StatusCode), Is.EqualTo((CrocErrorCode.RelayAccessDenied, (int?)401)));
        Assert.That(wrong.Message, Does.Contain("wrong").And.Not.Contain("sesam"));
        Assert.That(host.Authorizations.Last(), Is.EqualTo("Bearer open sesame"));
        Assert.That(host.Hellos.Single(), Does.Not.Contain("sesame"), "the password travels on the upgrade, not in the hello");
    }

    [Test]
    [CancelAfter(20_000)]
    public async Task ConnectAsync_CallersHandler_CarriesTheUpgrade(CancellationToken cancellationToken)
    {
        await using var host = await WebSocketLegHost.StartAsync(cancellationToken);
        var connects = 0;
        using var http = new HttpMessageInvoker(new SocketsHttpHandler
        {
            ConnectCallback = async (context, token) =>
            {
                Interlocked.Increment(ref connects);
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                socket.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
                await socket.ConnectAsync(context.DnsEndPoint, token);
                return new NetworkStream(socket, ownsSocket: true);
            },
        });
        var transport = new WebSocketStapleTransport(http, TimeProvider.System);

        await using var leg = await transport.ConnectAsync(Target(host.BaseAddress), 0, Sender, cancellationToken);

        Assert.That(connects, Is.EqualTo(1), "the source-address callback of the instance's handler opened the WebSocket");
    }

    [Test]
    [CancelAfter(20_000)]
    public async Task ConnectAsync_NobodyListening_IOExceptionTheRetryPolicyTakes(CancellationToken cancellationToken)
    {
        using var http = new HttpMessageInvoker(new SocketsHttpHandler());
        var transport = new WebSocketStapleTransport(http, TimeProvider.System);
        var target = Target(new Uri($"http://127.0.0.1:{ClosedPort()}/"));

        Assert.CatchAsync<IOException>(async () => await transport.ConnectAsync(target, 0, Sender, cancellationToken));
        var attempts = 0;
        var counting = new CountingTransport(transport, () => attempts++);
        var ex = Assert.ThrowsAsync<CrocRelayException>(() => StapleConnector.ConnectAllAsync(
            counting, target with { Lanes = 1 }, Sender, Pipeline(retries: 2), TimeProvider.System, cancellationToken));

        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.RelayUnreachable));
        Assert.That(attempts, Is.EqualTo(3), "retried like a TCP fault");
    }

    [Test]
    [CancelAfter(20_000)]
    public async Task ConnectAsync_HttpsRelay_WssWithTheTrustedCertificateOnlyAndNoRetry(CancellationToken cancellationToken)
    {
        using var certificate = TestCertificates.SelfSigned();
        await using var host = await WebSocketLegHost.StartAsync(cancellationToken, certificate: certificate);
        using var plain = new HttpMessageInvoker(new SocketsHttpHandler());
        using var trusting = new HttpMessageInvoker(RelayCertificateTrust.CreateHandler(TestCertificates.PublicPart(certificate)));
        var target = Target(host.BaseAddress);

        var attempts = 0;
        var untrusted = new CountingTransport(new WebSocketStapleTransport(plain, TimeProvider.System), () => attempts++);
        var ex = Assert.ThrowsAsync<CrocRelayException>(() => StapleConnector.ConnectAllAsync(
            untrusted, target with { Lanes = 1 }, Sender, Pipeline(retries: 2), TimeProvider.System, cancellationToken));
        var transport = new WebSocketStapleTransport(trusting, TimeProvider.System);
        await using var sender = await transport.ConnectAsync(target, 0, Sender, cancellationToken);
        await using var recipient = await transport.ConnectAsync(target, 0, Recipient, cancellationToken);
        await sender.WriteAsync(new byte[] { 7 }, cancellationToken);
        var one = new byte[1];
        await recipient.ReadExactlyAsync(one, cancellationToken);

        Assert.That(host.BaseAddress.Scheme, Is.EqualTo("https"));
        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.RelayUnreachable));
        Assert.That(ex.Message, Does.Contain("certificate").And.Contain("TrustRelayCertificate"));
        Assert.That(attempts, Is.EqualTo(1), "an untrusted certificate is not retried");
        Assert.That(one[0], Is.EqualTo(7));
    }

    internal static StapleTarget Target(Uri relay) => new(relay, relay.Host, []) { Lanes = 4, WebSockets = true };

    internal static Polly.ResiliencePipeline Pipeline(int retries) =>
        RelayResilience.Create(new CrocOptions { MaxRetries = retries, RetryBaseDelay = TimeSpan.FromMilliseconds(1) }, TimeProvider.System, NullLogger.Instance);

    internal static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private sealed class CountingTransport(IStapleTransport inner, Action onConnect) : IStapleTransport
    {
        public ValueTask<Stream> ConnectAsync(StapleTarget target, int lane, StapleTicket ticket, CancellationToken cancellationToken)
        {
            onConnect();
            return inner.ConnectAsync(target, lane, ticket, cancellationToken);
        }
    }
}

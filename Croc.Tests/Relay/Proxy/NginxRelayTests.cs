using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using CrocNet.Relay;
using static CrocNet.Tests.Relay.RelayTestKit;

namespace CrocNet.Tests.Relay.Proxy;

/// <summary>
/// The relay behind a real nginx that terminates TLS on a loopback port, forwards HTTP and WebSocket upgrades with
/// <c>X-Forwarded-For</c>, and does not forward the relay's TCP ports — the way an ASP.NET Core app usually runs.
/// </summary>
[CancelAfter(60_000)]
[NonParallelizable]
public sealed class NginxRelayTests
{
    private X509Certificate2 _certificate = null!;
    private CrocRelayServer _relay = null!;
    private NginxProxy _nginx = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        Assert.That(NginxProxy.Executable, Is.Not.Null, "nginx must be installed for these tests (.ci/run installs it)");
        _certificate = Transport.TestCertificates.SelfSigned();
        _relay = await StartRelayAsync(CancellationToken.None, o =>
        {
            o.Relay.TrustedProxies = ["127.0.0.1"];
            o.Relay.MaxChannelsPerAddress = 1_000;
            // The TCP ports live where nginx does not forward and clients cannot reach (the proxy's host is 127.0.0.1):
            // every leg has to come through nginx as a WebSocket.
            o.Relay.ListenAddress = "127.0.0.9";
        });
        _nginx = await NginxProxy.StartAsync(_relay.BaseAddress, _certificate, CancellationToken.None);
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        if (_nginx is not null)
        {
            await _nginx.DisposeAsync();
        }

        if (_relay is not null)
        {
            await _relay.DisposeAsync();
        }

        _certificate?.Dispose();
    }

    [Test]
    public async Task Join_ThroughNginxTls_Works(CancellationToken cancellationToken)
    {
        using var client = ThroughNginx(Second);

        var reply = await OkAsync(PostAsync(client, "join", new { role = "sender" }, cancellationToken));

        Assert.That(reply.Str("channel"), Does.Match("^[0-9a-z]{10}$"));
    }

    [Test]
    public async Task Transfer_ThroughNginxTls_TwoMachinesOverWebSocketLegs_AndAThirdAddressGetsIpLimit(CancellationToken cancellationToken)
    {
        var source = Directory.CreateTempSubdirectory("croc-nginx-src-").FullName;
        var target = Directory.CreateTempSubdirectory("croc-nginx-out-").FullName;
        try
        {
            var data = System.Security.Cryptography.RandomNumberGenerator.GetBytes((8 * 1024 * 1024) + 17);
            var file = Path.Join(source, "through-nginx.bin");
            await File.WriteAllBytesAsync(file, data, cancellationToken);
            using var senderHandler = RelayTestKit.Handler(Second, _certificate);
            using var recipientHandler = RelayTestKit.Handler(Third, _certificate);
            var sender = Croc.New(o => o.WithRelay(_nginx.BaseAddress).UseHttpMessageHandler(senderHandler).WithRetries(2, TimeSpan.FromMilliseconds(20)));
            var recipient = Croc.New(o => o.WithRelay(_nginx.BaseAddress).UseHttpMessageHandler(recipientHandler).WithRetries(2, TimeSpan.FromMilliseconds(20)));

            await using var send = await sender.StartSendAsync(SendContent.FromPath(file), cancellationToken);
            var received = await recipient.ReceiveAsync(send.Code, new ReceiveOptions { OutputDirectory = target }, cancellationToken);
            var sent = await send.Completion.WaitAsync(cancellationToken);

            Assert.That(await File.ReadAllBytesAsync(Path.Join(target, "through-nginx.bin"), cancellationToken), Is.EqualTo(data));
            Assert.That(sent.Files.Single().Digest, Is.EqualTo(received.Files.Single().Digest));
            Assert.That(_relay.Ports, Has.Count.EqualTo(4), "the relay does offer TCP ports; they are just not reachable through the proxy");

            // The relay saw the two machines (from X-Forwarded-For), not nginx: a third machine is refused.
            using var third = ThroughNginx(IPAddress.Parse("127.0.0.4"));
            AssertError(await PostAsync(third, "join", new { role = "recipient", channel = received.Channel }, cancellationToken), HttpStatusCode.Forbidden, "ip_limit");

            // nginx appends to X-Forwarded-For and passes a client's own Forwarded header on untouched: claiming to be
            // the sender's machine in it changes nothing.
            third.DefaultRequestHeaders.Add("Forwarded", "for=127.0.0.2");
            AssertError(await PostAsync(third, "join", new { role = "recipient", channel = received.Channel }, cancellationToken), HttpStatusCode.Forbidden, "ip_limit");
        }
        finally
        {
            Directory.Delete(source, true);
            Directory.Delete(target, true);
        }
    }

    [Test]
    public async Task Transfer_ThroughNginxTls_ForcedWebSocketWithTrustedCertificate(CancellationToken cancellationToken)
    {
        // The library's own certificate trust (no handler of the caller's) over nginx's TLS, legs forced to WebSocket.
        var sender = Croc.New(o => o.WithRelay(_nginx.BaseAddress).TrustRelayCertificate(_certificate).WithTransport(CrocTransport.WebSocket));
        var recipient = Croc.New(o => o.WithRelay(_nginx.BaseAddress).TrustRelayCertificate(_certificate).WithTransport(CrocTransport.WebSocket));

        await using var send = await sender.StartSendAsync(SendContent.FromText("through nginx, over wss"), cancellationToken);
        var received = await recipient.ReceiveAsync(send.Code, new ReceiveOptions { OutputDirectory = Path.GetTempPath() }, cancellationToken);
        await send.Completion.WaitAsync(cancellationToken);

        Assert.That(received.Text, Is.EqualTo("through nginx, over wss"));
    }

    [Test]
    public async Task Transfer_ThroughNginxWithoutTrustingItsCertificate_TypedError(CancellationToken cancellationToken)
    {
        var sender = Croc.New(o => o.WithRelay(_nginx.BaseAddress).WithRetries(1, TimeSpan.FromMilliseconds(10)));

        var error = Assert.ThrowsAsync<CrocRelayException>(async () => await sender.StartSendAsync(SendContent.FromText("x"), cancellationToken));

        Assert.That(error!.Code, Is.EqualTo(CrocErrorCode.RelayUnreachable));
    }

    /// <summary>An HTTP client to nginx whose connections come from <paramref name="source"/> and that trusts exactly the test certificate.</summary>
    private HttpClient ThroughNginx(IPAddress source) => new(RelayTestKit.Handler(source, _certificate)) { BaseAddress = _nginx.BaseAddress };
}

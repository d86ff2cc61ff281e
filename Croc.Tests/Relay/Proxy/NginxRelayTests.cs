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
        _certificate = NginxProxy.CreateCertificate();
        _relay = await StartRelayAsync(CancellationToken.None, o =>
        {
            o.Relay.TrustedProxies = ["127.0.0.1"];
            o.Relay.MaxChannelsPerAddress = 1_000;
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

    /// <summary>An HTTP client to nginx whose connections come from <paramref name="source"/> and that trusts exactly the test certificate.</summary>
    private HttpClient ThroughNginx(IPAddress source) => new(Handler(source, _certificate)) { BaseAddress = _nginx.BaseAddress };

    internal static SocketsHttpHandler Handler(IPAddress source, X509Certificate2 trusted) => new()
    {
        ConnectCallback = async (context, token) =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                socket.Bind(new IPEndPoint(source, 0));
                await socket.ConnectAsync(context.DnsEndPoint, token);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
        SslOptions = new SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null && certificate.GetRawCertData().AsSpan().SequenceEqual(trusted.RawData),
        },
    };
}

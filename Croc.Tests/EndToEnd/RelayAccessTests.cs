using System.Net;
using System.Security.Cryptography.X509Certificates;
using CrocNet.Relay;
using CrocNet.Relay.Channels;
using CrocNet.Tests.Diagnostics;
using CrocNet.Tests.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrocNet.Tests.EndToEnd;

/// <summary>
/// Reaching relays the way deployments put them: a private relay (password), an IPv6 relay URL, an <c>https://</c> relay
/// with a self-signed certificate, and transports a relay does not offer. The real relay, real sockets, real TLS.
/// </summary>
public class RelayAccessTests
{
    private const string Password = "relay-pass-7Qx";

    [Test]
    [CancelAfter(60_000)]
    public async Task PrivateRelay_RightPassword_TransferCompletesOverTcpAndThePasswordIsNeverLogged(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.Password = Password);
        using var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));

        var text = await TransferTextAsync(relay.BaseAddress, "to the private relay", o => o.WithRelayPassword(Password).UseLoggerFactory(factory), cancellationToken);

        Assert.That(text, Is.EqualTo("to the private relay"));
        Assert.That(logs.Text, Does.Not.Contain(Password));
        Assert.That(logs.Lines, Has.Some.Contains("|TransportUsed|").And.Contains("uses 4 TCP and 0 WebSocket"));
    }

    [TestCase(null, "none was given")]
    [TestCase("relay-pass-7Qy", "wrong")]
    [CancelAfter(30_000)]
    public async Task PrivateRelay_MissingOrWrongPassword_AccessDeniedAndNothingCreated(string? password, string says, CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.Password = Password);
        var sender = NewCroc(relay.BaseAddress, o =>
        {
            if (password is not null)
            {
                o.WithRelayPassword(password);
            }
        });

        var ex = Assert.ThrowsAsync<CrocRelayException>(() => sender.StartSendAsync(SendContent.FromText("hi"), cancellationToken: cancellationToken));

        Assert.That((ex!.Code, ex.StatusCode, ex.RelayCode), Is.EqualTo((CrocErrorCode.RelayAccessDenied, (int?)401, "unauthorized")));
        Assert.That(ex.Message, Does.Contain("private").And.Contain(says).And.Not.Contain("relay-pass"));
        Assert.That(relay.Services.GetRequiredService<ChannelRegistry>().Count, Is.Zero);
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task PrivateRelay_RecipientWithoutPassword_AccessDenied(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.Password = Password);
        var sender = NewCroc(relay.BaseAddress, o => o.WithRelayPassword(Password));
        await using var operation = await sender.StartSendAsync(SendContent.FromText("hi"), cancellationToken: cancellationToken);

        var ex = Assert.ThrowsAsync<CrocRelayException>(() => NewCroc(relay.BaseAddress).ReceiveAsync(operation.Code, cancellationToken));

        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.RelayAccessDenied));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Ipv6RelayUrl_TransferCompletesOverTcp(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o =>
        {
            o.Url = "http://[::1]:0";
            o.Relay.ListenAddress = "::1";
        });

        var text = await TransferTextAsync(relay.BaseAddress, "over ::1", null, cancellationToken);

        Assert.That(relay.BaseAddress.Host, Is.EqualTo("[::1]"));
        Assert.That(text, Is.EqualTo("over ::1"));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task HttpsRelay_SelfSignedCertificate_UntrustedFailsTypedTrustedTransfers(CancellationToken cancellationToken)
    {
        using var certificate = TestCertificates.SelfSigned();
        await using var relay = await HttpsRelay.StartAsync(certificate, cancellationToken);

        var ex = Assert.ThrowsAsync<CrocRelayException>(() => NewCroc(relay.BaseAddress).StartSendAsync(SendContent.FromText("hi"), cancellationToken: cancellationToken));
        using var trusted = TestCertificates.PublicPart(certificate);
        var text = await TransferTextAsync(relay.BaseAddress, "over https", o => o.TrustRelayCertificate(trusted), cancellationToken);

        Assert.That(relay.BaseAddress.Scheme, Is.EqualTo("https"));
        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.RelayUnreachable));
        Assert.That(ex.Message, Does.Contain("certificate").And.Contain("TrustRelayCertificate"));
        Assert.That(text, Is.EqualTo("over https"));
    }

    [Test]
    public void TrustRelayCertificate_WithOwnHttpHandler_OptionsValidationSaysWhy()
    {
        using var certificate = TestCertificates.SelfSigned();
        using var handler = new SocketsHttpHandler();

        var ex = Assert.Throws<OptionsValidationException>(() => Croc.New(o => o.TrustRelayCertificate(certificate).UseHttpMessageHandler(handler)));

        Assert.That(ex!.Message, Does.Contain("TrustRelayCertificate").And.Contain("UseHttpMessageHandler"));
    }

    [Test]
    [CancelAfter(30_000)]
    public void AddCroc_TrustRelayCertificateWithOwnHttpHandler_ResolvingThrowsTheSameError()
    {
        using var certificate = TestCertificates.SelfSigned();
        using var handler = new SocketsHttpHandler();
        using var provider = new ServiceCollection().AddCroc(o => o.TrustRelayCertificate(certificate).UseHttpMessageHandler(handler)).BuildServiceProvider();

        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<Croc>());

        Assert.That(ex!.Message, Does.Contain("TrustRelayCertificate").And.Contain("UseHttpMessageHandler"));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task ForcedWebSocket_RelayWithoutWebSocketLegs_RefusedAtJoinAndTheChannelClosed(CancellationToken cancellationToken)
    {
        // WebSocket legs switched off: the state says "ws": false.
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.WebSockets = false);
        var sender = NewCroc(relay.BaseAddress, o => o.WithTransport(CrocTransport.WebSocket));
        var code = Croc.GenerateCode();

        var ex = Assert.ThrowsAsync<CrocRelayException>(() => sender.StartSendAsync(SendContent.FromText("hi"), new SendOptions { Code = code }, cancellationToken));

        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.RelayRefused));
        Assert.That(ex.Message, Does.Contain("does not take WebSocket legs"));
        var channel = await relay.Services.GetRequiredService<ChannelRegistry>().GetAsync(code[..code.IndexOf('-', StringComparison.Ordinal)], cancellationToken);
        Assert.That(channel?.Closed, Is.True, "the channel it joined is closed again");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task ForcedTcp_RelayWithoutTcpPorts_RefusedAtJoin(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.Ports = []);
        var sender = NewCroc(relay.BaseAddress, o => o.WithTransport(CrocTransport.Tcp));

        var ex = Assert.ThrowsAsync<CrocRelayException>(() => sender.StartSendAsync(SendContent.FromText("hi"), cancellationToken: cancellationToken));

        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.RelayRefused));
        Assert.That(ex.Message, Does.Contain("no TCP data ports"));
    }

    private static Task<CrocRelayServer> StartRelayAsync(CancellationToken cancellationToken, Action<CrocRelayServerOptions>? configure = null) =>
        Relay.RelayTestKit.StartRelayAsync(cancellationToken, configure);

    private static Croc NewCroc(Uri relay, Action<CrocOptionsBuilder>? configure = null) => Croc.New(o =>
    {
        o.WithRelay(relay).WithIdleTimeout(TimeSpan.FromSeconds(20)).WithRetries(2, TimeSpan.FromMilliseconds(20));
        configure?.Invoke(o);
    });

    private static async Task<string?> TransferTextAsync(Uri relay, string text, Action<CrocOptionsBuilder>? configure, CancellationToken cancellationToken)
    {
        await using var operation = await NewCroc(relay, configure).StartSendAsync(SendContent.FromText(text), cancellationToken: cancellationToken);
        var received = NewCroc(relay, configure).ReceiveAsync(operation.Code, cancellationToken);
        await Task.WhenAll(received, operation.Completion).WaitAsync(cancellationToken);
        return (await received).Text;
    }

    /// <summary>The relay embedded the way an ASP.NET Core app does it, on Kestrel with TLS (127.0.0.1, port 0).</summary>
    private sealed class HttpsRelay : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private HttpsRelay(WebApplication app, Uri baseAddress)
        {
            _app = app;
            BaseAddress = baseAddress;
        }

        public Uri BaseAddress { get; }

        public static async Task<HttpsRelay> StartAsync(X509Certificate2 certificate, CancellationToken cancellationToken)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(certificate)));
            builder.Services.AddCrocRelay(o =>
            {
                o.Ports = [0, 0];
                o.ListenAddress = "127.0.0.1";
            });
            var app = builder.Build();
            app.MapCrocRelay();
            await app.StartAsync(cancellationToken);
            var bound = new Uri(app.Urls.First());
            return new HttpsRelay(app, new UriBuilder("https", "127.0.0.1", bound.Port, "/").Uri);
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}

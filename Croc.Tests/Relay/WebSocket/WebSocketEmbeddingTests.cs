using System.Net;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using static CrocNet.Tests.Relay.RelayTestKit;
using static CrocNet.Tests.Relay.WebSocket.WebSocketTestKit;

namespace CrocNet.Tests.Relay.WebSocket;

/// <summary>WebSocket legs of a relay embedded in a host app with the two lines: no host middleware needed, host auth applies.</summary>
[CancelAfter(30_000)]
public class WebSocketEmbeddingTests
{
    private const string TestHeader = "X-Test-User";

    [TestCase(false, TestName = "MapCrocRelay_HostWithoutUseWebSockets_WebSocketLegsPair")]
    [TestCase(true, TestName = "MapCrocRelay_HostWithItsOwnUseWebSockets_WebSocketLegsPair")]
    public async Task MapCrocRelay_EitherHostPipeline_WebSocketLegsPairUnderThePrefix(bool hostUsesWebSockets, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddCrocRelay(o =>
        {
            o.Ports = [0];
            o.ListenAddress = "127.0.0.1";
        });
        await using var app = builder.Build();
        if (hostUsesWebSockets)
        {
            app.UseWebSockets();
        }

        app.MapCrocRelay("/croc");
        await app.StartAsync(cancellationToken);
        var relay = new Uri(app.Urls.First() + "/croc/");
        using var a = Client(relay);
        using var b = Client(relay, Second);
        var pair = await OpenAsync(a, b, cancellationToken);
        var (sender, sAnswer) = await LegAsync(relay, pair.Channel, pair.SenderUuid, 0, cancellationToken);
        var (recipient, rAnswer) = await LegAsync(relay, pair.Channel, pair.RecipientUuid, 0, cancellationToken, Second);
        using (sender)
        using (recipient)
        {
            Assert.That((sAnswer, rAnswer), Is.EqualTo(("ok", "ok")));
            await SendBytesAsync(sender, "hello"u8.ToArray(), cancellationToken);
            Assert.That(await ReadExactlyAsync(recipient, 5, cancellationToken), Is.EqualTo("hello"u8.ToArray()));
        }

        await app.StopAsync(cancellationToken);
    }

    [Test]
    public async Task MapCrocRelay_WebSocketsOverHttp2_ConnectRequestIsALeg(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2));
        builder.Services.AddCrocRelay(o =>
        {
            o.Ports = [0];
            o.ListenAddress = "127.0.0.1";
        });
        await using var app = builder.Build();
        app.MapCrocRelay("/croc");
        await app.StartAsync(cancellationToken);
        var relay = new Uri(app.Urls.First() + "/croc/");
        using var a = new HttpClient { BaseAddress = relay, DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var joined = await OkAsync(PostAsync(a, "join", new { role = "sender" }, cancellationToken));
        var (leg, answer) = await LegAsync(relay, joined.Str("channel"), joined.Str("uuid"), 0, cancellationToken, configure: o =>
        {
            o.HttpVersion = HttpVersion.Version20;
            o.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        });
        leg.Dispose();
        Assert.That(answer, Is.EqualTo("error not_ready"), "an HTTP/2 WebSocket (extended CONNECT) reaches the relay's hello");
        await app.StopAsync(cancellationToken);
    }

    [Test]
    public async Task MapCrocRelay_RequireAuthorization_AppliesToTheWebSocketRouteToo(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddAuthentication(TestAuthHandler.SchemeName).AddScheme<AuthenticationSchemeOptions, TestAuthHandler>(TestAuthHandler.SchemeName, null);
        builder.Services.AddAuthorization();
        builder.Services.AddCrocRelay(o =>
        {
            o.Ports = [0];
            o.ListenAddress = "127.0.0.1";
        });
        await using var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapCrocRelay("/croc").RequireAuthorization();
        await app.StartAsync(cancellationToken);
        var relay = new Uri(app.Urls.First() + "/croc/");

        using var anonymous = Client(relay);
        using var join = await anonymous.PostAsync("join", new StringContent("{\"role\":\"sender\"}", System.Text.Encoding.UTF8, "application/json"), cancellationToken);
        Assert.That(join.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized), "the HTTP routes");
        var (status, _) = await RefusedStatusAsync(relay, cancellationToken);
        Assert.That(status, Is.EqualTo(HttpStatusCode.Unauthorized), "the WebSocket route");

        using var a = Client(relay);
        using var b = Client(relay, Second);
        a.DefaultRequestHeaders.Add(TestHeader, "alice");
        b.DefaultRequestHeaders.Add(TestHeader, "bob");
        var pair = await OpenAsync(a, b, cancellationToken);
        var (leg, answer) = await LegAsync(relay, pair.Channel, pair.SenderUuid, 0, cancellationToken, configure: o => o.SetRequestHeader(TestHeader, "alice"));
        leg.Dispose();
        Assert.That(answer, Is.EqualTo("ok"), "an authenticated WebSocket leg");
        await app.StopAsync(cancellationToken);
    }

    /// <summary>Authenticates a request that carries <see cref="TestHeader"/>; challenges with 401 otherwise.</summary>
    private sealed class TestAuthHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        public const string SchemeName = "Test";

        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            if (Request.Headers[TestHeader] is not [{ Length: > 0 } user])
            {
                return Task.FromResult(AuthenticateResult.NoResult());
            }

            var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, user)], SchemeName);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
        }
    }
}

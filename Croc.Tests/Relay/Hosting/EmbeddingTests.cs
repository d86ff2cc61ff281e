using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using CrocNet.Relay;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using static CrocNet.Tests.Relay.RelayTestKit;

namespace CrocNet.Tests.Relay.Hosting;

/// <summary>The relay inside an existing ASP.NET Core app, and the standalone server.</summary>
[CancelAfter(20_000)]
public class EmbeddingTests
{
    private static WebApplication BuildHostApp(Dictionary<string, string?> settings)
    {
        // The sample's shape: an app with its own endpoints, plus the relay in two lines.
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddCrocRelay(builder.Configuration.GetSection(CrocRelayOptions.SectionName));

        var app = builder.Build();
        app.MapGet("/", () => "host app");
        app.MapGet("/health", () => Results.Ok("healthy"));
        app.MapCrocRelay("/croc");
        return app;
    }

    [Test]
    public async Task MapCrocRelay_UnderPrefixInHostApp_RelayAndHostEndpointsBothServe(CancellationToken cancellationToken)
    {
        await using var app = BuildHostApp(new()
        {
            ["CrocRelay:Ports:0"] = "0",
            ["CrocRelay:Ports:1"] = "0",
            ["CrocRelay:ListenAddress"] = "127.0.0.1",
            ["CrocRelay:AdvertisedHost"] = "relay.example.org",
        });
        Assert.That(app.Services.GetRequiredService<CrocRelayListeners>().Ports, Is.Empty, "nothing is bound before the host starts");
        await app.StartAsync(cancellationToken);
        try
        {
            using var client = Client(new Uri(app.Urls.First() + "/"));

            Assert.That(await client.GetStringAsync("health", cancellationToken), Does.Contain("healthy"));
            Assert.That(await client.GetStringAsync("", cancellationToken), Is.EqualTo("host app"));

            var joined = await OkAsync(PostAsync(client, "croc/join", new { role = "sender" }, cancellationToken));
            var ports = joined.Body["ports"]!.AsArray().Select(p => (int)p!).ToList();
            Assert.That(ports, Has.Count.EqualTo(2), "configured ports replace the defaults instead of adding to them");
            Assert.That(ports, Has.All.GreaterThan(0));
            Assert.That(app.Services.GetRequiredService<CrocRelayListeners>().Ports, Is.EqualTo(ports), "the host app can read the bound ports");
            Assert.That(joined.Str("host"), Is.EqualTo("relay.example.org"));

            using var unmapped = await client.PostAsync("join", new StringContent("{}"), cancellationToken);
            Assert.That(unmapped.StatusCode, Is.EqualTo(HttpStatusCode.NotFound), "the relay lives only under its prefix");

            // The relay's TCP side runs inside the host app too.
            var (socket, answer) = await HelloAsync(ports[0], joined.Str("channel"), joined.Str("uuid"), cancellationToken);
            socket.Dispose();
            Assert.That(answer, Is.EqualTo("error not_ready"));
        }
        finally
        {
            await app.StopAsync(cancellationToken);
        }
    }

    [Test]
    public async Task AddCrocRelay_InvalidConfiguration_StartFailsWithEveryProblem(CancellationToken cancellationToken)
    {
        await using var app = BuildHostApp(new()
        {
            ["CrocRelay:Ports:0"] = "70000",
            ["CrocRelay:ListenAddress"] = "not-an-ip",
            ["CrocRelay:MaxBodySize"] = "1",
        });

        var error = Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync(cancellationToken));

        Assert.That(error!.Failures, Has.Some.Contains("70000"));
        Assert.That(error.Failures, Has.Some.Contains("ListenAddress"));
        Assert.That(error.Failures, Has.Some.Contains("MaxBodySize"));
    }

    [Test]
    public void MapCrocRelay_WithoutAddCrocRelay_ExplainsWhatIsMissing()
    {
        var app = WebApplication.CreateSlimBuilder().Build();

        var error = Assert.Throws<InvalidOperationException>(() => app.MapCrocRelay());

        Assert.That(error!.Message, Does.Contain("AddCrocRelay"));
    }

    [Test]
    public void AddCrocRelay_TimeProviderRegistered_RelayRunsOnIt()
    {
        var time = new FakeTimeProvider();
        var services = new ServiceCollection().AddSingleton<TimeProvider>(time);
        services.AddCrocRelay(o => o.MaxChannels = 5);
        using var provider = services.BuildServiceProvider();

        var registry = provider.GetRequiredService<ChannelRegistry>();

        Assert.That(registry.TimeProvider, Is.SameAs(time));
        Assert.That(registry.Options.MaxChannels, Is.EqualTo(5));
    }

    [Test]
    public async Task CrocRelayServer_PortZero_ReportsBoundAddressAndPortsAndReleasesThemOnDispose(CancellationToken cancellationToken)
    {
        var relay = await StartRelayAsync(cancellationToken, o => o.PathBase = "/relay");
        var ports = relay.Ports.ToArray();

        Assert.That(relay.BaseAddress.Host, Is.EqualTo("127.0.0.1"));
        Assert.That(relay.BaseAddress.Port, Is.GreaterThan(0));
        Assert.That(relay.BaseAddress.AbsolutePath, Is.EqualTo("/relay/"));
        Assert.That(ports, Has.Length.EqualTo(4));
        Assert.That(ports, Has.All.GreaterThan(0));
        Assert.That(ports, Is.Unique);
        using (var client = Client(relay.BaseAddress))
        {
            var joined = await OkAsync(PostAsync(client, "join", new { role = "sender" }, cancellationToken));
            Assert.That(joined.Body["ports"]!.AsArray().Select(p => (int)p!), Is.EqualTo(ports));
        }

        await relay.StopAsync(cancellationToken);
        await relay.DisposeAsync();

        foreach (var port in ports)
        {
            var refused = Assert.ThrowsAsync<SocketException>(async () => (await ConnectAsync(port, cancellationToken)).Dispose());
            Assert.That(refused!.SocketErrorCode, Is.EqualTo(SocketError.ConnectionRefused));
        }
    }

    [Test]
    public async Task CrocRelayServer_TcpPortInUse_StartFailsAndReleasesEverything(CancellationToken cancellationToken)
    {
        using var blocker = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        blocker.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        blocker.Listen();
        var taken = ((IPEndPoint)blocker.LocalEndPoint!).Port;

        var error = Assert.ThrowsAsync<SocketException>(() => StartRelayAsync(cancellationToken, o => o.Relay.Ports = [0, taken]));

        Assert.That(error!.SocketErrorCode, Is.EqualTo(SocketError.AddressAlreadyInUse));
        await using var relay = await StartRelayAsync(cancellationToken);
        Assert.That(relay.Ports, Has.Count.EqualTo(4));
    }

    [Test]
    public void CrocRelayServer_InvalidRelayOptions_ThrowsBeforeBinding()
    {
        var error = Assert.ThrowsAsync<OptionsValidationException>(() => StartRelayAsync(CancellationToken.None, o => o.Relay.Ports = [9500, 9500]));

        Assert.That(error!.Message, Does.Contain("9500"));
    }

    [Test]
    public async Task Metrics_RefusalsAndPipedBytes_Counted(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken);
        var meter = relay.Services.GetRequiredService<RelayMetrics>().Meter;
        var seen = new System.Collections.Concurrent.ConcurrentBag<(string Name, long Value, string? Code)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, meter))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string? code = null;
            foreach (var tag in tags)
            {
                code = tag.Key == "code" ? (string?)tag.Value : code;
            }

            seen.Add((instrument.Name, value, code));
        });
        listener.Start();

        using var a = Client(relay.BaseAddress);
        using var b = Client(relay.BaseAddress, Second);
        AssertError(await PostAsync(a, "join", new { role = "recipient", channel = "nothere" }, cancellationToken), HttpStatusCode.NotFound, "no_channel");
        var pair = await OpenAsync(a, b, cancellationToken);
        var (s, _) = await HelloAsync(relay.Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        var (r, _) = await HelloAsync(relay.Ports[0], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        using (s)
        using (r)
        {
            await SendAsync(s, "12345\n", cancellationToken);
            Assert.That(await ReadLineAsync(r, cancellationToken), Is.EqualTo("12345"));
        }

        Assert.That(seen, Has.Some.EqualTo(("croc.relay.refusals", 1L, (string?)"no_channel")));
        Assert.That(seen.Where(m => m.Name == "croc.relay.channels.opened").Sum(m => m.Value), Is.EqualTo(1));
        Assert.That(seen.Where(m => m.Name == "croc.relay.connections.stapled").Sum(m => m.Value), Is.EqualTo(1));
        Assert.That(seen.Where(m => m.Name == "croc.relay.bytes.piped").Sum(m => m.Value), Is.EqualTo(6));
    }
}

/// <summary>The options' validation rules.</summary>
public class CrocRelayOptionsTests
{
    [Test]
    [CancelAfter(20_000)]
    public async Task StartAsync_EverySettingChanged_ServerRunsWithEveryOne(CancellationToken cancellationToken)
    {
        var wanted = new CrocRelayOptions
        {
            Ports = [0, 0],
            ListenAddress = "127.0.0.1",
            AdvertisedHost = "relay.example",
            ChannelExpiry = TimeSpan.FromHours(2),
            HandshakeExpiry = TimeSpan.FromMinutes(9),
            ClosedRetention = TimeSpan.FromSeconds(50),
            HelloTimeout = TimeSpan.FromSeconds(4),
            MaxPendingHellos = 900,
            MaxPendingHellosPerAddress = 30,
            WaitingTimeout = TimeSpan.FromMinutes(4),
            MaxChannels = 9_000,
            MaxChannelsPerAddress = 15,
            MaxBodySize = 15_000,
            MaxWaitingConnections = 800,
            MaxWait = TimeSpan.FromSeconds(25),
            PipeBufferSize = 100_000,
            PipeIdleTimeout = TimeSpan.FromMinutes(20),
            MaxWaitingConnectionsPerAddress = 12,
            MaxConnections = 3_000,
            MaxConnectionsPerAddress = 200,
            IPv6PrefixLength = 56,
            MaxJoinsPerMinute = 100,
            MaxFailedLookupsPerMinute = 90,
            Lanes = 2,
            WebSockets = false,
            WebSocketKeepAliveInterval = TimeSpan.FromSeconds(20),
            TrustedProxies = ["10.0.0.0/8"],
            Password = "relay password",
            ForwardedHeader = "Forwarded",
            ProxyProtocol = true,
            ReconnectWindow = TimeSpan.FromSeconds(45),
            MaxReattachments = 3,
        };
        var properties = typeof(CrocRelayOptions).GetProperties().Where(p => p.CanWrite).ToList();
        var defaults = new CrocRelayOptions();
        foreach (var property in properties)
        {
            Assert.That(Render(property.GetValue(wanted)), Is.Not.EqualTo(Render(property.GetValue(defaults))), $"the test must change {property.Name}");
        }

        await using var relay = await CrocRelayServer.StartAsync(o => { o.Url = "http://127.0.0.1:0"; o.Relay = wanted; }, cancellationToken);
        var running = relay.Services.GetRequiredService<IOptions<CrocRelayOptions>>().Value;

        foreach (var property in properties)
        {
            Assert.That(Render(property.GetValue(running)), Is.EqualTo(Render(property.GetValue(wanted))), property.Name);
        }

        static string Render(object? value) => value switch { IEnumerable<int> list => string.Join(",", list), IEnumerable<string> texts => string.Join(",", texts), _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "" };
    }

    [Test]
    public void Validate_Defaults_Valid()
    {
        var options = new CrocRelayOptions();

        Assert.That(new CrocRelayOptionsValidator().Validate(null, options).Succeeded, Is.True);
        Assert.That(options.Ports, Is.EqualTo(new[] { 9010, 9011, 9012, 9013 }));
        Assert.That(options.ChannelExpiry, Is.EqualTo(TimeSpan.FromHours(3)));
        Assert.That((options.ReconnectWindow, options.MaxReattachments), Is.EqualTo((TimeSpan.FromSeconds(60), 16)));
    }

    [TestCase("ports-empty-no-websockets", "Ports is empty and WebSockets is off")]
    [TestCase("ports-too-many", "Ports must list at most 64")]
    [TestCase("ports-negative", "is not a TCP port")]
    [TestCase("ports-duplicate", "listed more than once")]
    [TestCase("listen", "ListenAddress")]
    [TestCase("host", "AdvertisedHost")]
    [TestCase("expiry", "ChannelExpiry must be between")]
    [TestCase("hello-vs-expiry", "HelloTimeout must be shorter than ChannelExpiry")]
    [TestCase("max-wait", "MaxWait must be between")]
    [TestCase("handshake-expiry", "HandshakeExpiry must be between")]
    [TestCase("closed-retention", "ClosedRetention must be between")]
    [TestCase("hello-timeout", "HelloTimeout must be between")]
    [TestCase("waiting-timeout", "WaitingTimeout must be between")]
    [TestCase("pipe-idle-short", "PipeIdleTimeout must be between")]
    [TestCase("pipe-idle-long", "PipeIdleTimeout must be between")]
    [TestCase("buffer", "PipeBufferSize")]
    [TestCase("max-channels", "MaxChannels")]
    [TestCase("waiting-below-ports", "MaxWaitingConnections and MaxWaitingConnectionsPerAddress must be at least the number of ports (4)")]
    [TestCase("connections-below-ports", "MaxConnections and MaxConnectionsPerAddress must be at least twice the number of ports (8)")]
    [TestCase("connections-range", "MaxConnections must be between 1 and 1000000, or unset")]
    [TestCase("lanes-vs-ports", "Lanes (3) must equal the number of ports (4)")]
    [TestCase("lanes-range", "Lanes must be between 1 and 64")]
    [TestCase("waiting-below-default-lanes", "MaxWaitingConnections and MaxWaitingConnectionsPerAddress must be at least the number of ports (4)")]
    [TestCase("keepalive", "WebSocketKeepAliveInterval must be between")]
    [TestCase("proxy", "TrustedProxies: '10.0.0.0/33'")]
    [TestCase("forwarded-header", "ForwardedHeader must be X-Forwarded-For or Forwarded")]
    [TestCase("password", "Password must be 1-256 printable ASCII characters")]
    [TestCase("password-outer-space", "Password must be 1-256 printable ASCII characters")]
    [TestCase("password-non-ascii", "Password must be 1-256 printable ASCII characters")]
    [TestCase("reconnect-window-zero", "ReconnectWindow must be longer than zero and at most ChannelExpiry")]
    [TestCase("reconnect-window-vs-expiry", "ReconnectWindow must be longer than zero and at most ChannelExpiry")]
    [TestCase("max-reattachments", "MaxReattachments")]
    public void Validate_BadSetting_FailsNamingIt(string which, string expected)
    {
        var options = new CrocRelayOptions();
        switch (which)
        {
            case "ports-empty-no-websockets": options.Ports = []; options.WebSockets = false; break;
            case "ports-too-many": options.Ports = [.. Enumerable.Repeat(0, 65)]; break;
            case "ports-negative": options.Ports = [-1]; break;
            case "ports-duplicate": options.Ports = [0, 0, 9100, 9100]; break;
            case "listen": options.ListenAddress = "localhost"; break;
            case "host": options.AdvertisedHost = "bad host/name"; break;
            case "expiry": options.ChannelExpiry = TimeSpan.FromMilliseconds(999); options.HelloTimeout = TimeSpan.FromMilliseconds(100); break;
            case "hello-vs-expiry": options.ChannelExpiry = TimeSpan.FromSeconds(5); break;
            case "max-wait": options.MaxWait = TimeSpan.FromHours(1); break;
            case "handshake-expiry": options.HandshakeExpiry = TimeSpan.FromDays(31); break;
            case "closed-retention": options.ClosedRetention = TimeSpan.FromSeconds(-1); break;
            case "hello-timeout": options.HelloTimeout = TimeSpan.FromMilliseconds(1); break;
            case "waiting-timeout": options.WaitingTimeout = TimeSpan.FromDays(2); break;
            case "pipe-idle-short": options.PipeIdleTimeout = TimeSpan.FromMilliseconds(999); break;
            case "pipe-idle-long": options.PipeIdleTimeout = TimeSpan.FromDays(1.5); break;
            case "buffer": options.PipeBufferSize = 4096; break;
            case "max-channels": options.MaxChannels = 0; break;
            case "waiting-below-ports": options.MaxWaitingConnectionsPerAddress = 3; break;
            case "connections-below-ports": options.MaxConnectionsPerAddress = 7; break;
            case "connections-range": options.MaxConnections = 2_000_000; break;
            case "lanes-vs-ports": options.Lanes = 3; break;
            case "lanes-range": options.Ports = []; options.Lanes = 0; break;
            case "waiting-below-default-lanes": options.Ports = []; options.MaxWaitingConnectionsPerAddress = 3; break;
            case "keepalive": options.WebSocketKeepAliveInterval = TimeSpan.Zero; break;
            case "proxy": options.TrustedProxies = ["127.0.0.1", "10.0.0.0/33"]; break;
            case "forwarded-header": options.ForwardedHeader = "X-Real-IP"; break;
            case "password": options.Password = "line\nbreak"; break;
            case "password-outer-space": options.Password = "secret "; break;
            case "password-non-ascii": options.Password = "pässword"; break;
            case "reconnect-window-zero": options.ReconnectWindow = TimeSpan.Zero; break;
            case "reconnect-window-vs-expiry": options.ChannelExpiry = TimeSpan.FromSeconds(30); break;
            case "max-reattachments": options.MaxReattachments = -1; break;
        }

        var result = new CrocRelayOptionsValidator().Validate(null, options);

        Assert.That(result.Failed, Is.True);
        Assert.That(result.Failures, Has.Exactly(1).Contains(expected), string.Join(" | ", result.Failures ?? []));
    }

    [Test]
    public void Validate_SeveralZeroPorts_Valid()
        => Assert.That(new CrocRelayOptionsValidator().Validate(null, new CrocRelayOptions { Ports = [0, 0, 0] }).Succeeded, Is.True);
}

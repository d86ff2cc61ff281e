using System.Net;
using CrocNet.Relay;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Diagnostics;
using CrocNet.Relay.Staple;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using static CrocNet.Tests.Relay.RelayTestKit;

namespace CrocNet.Tests.Relay.Hosting;

/// <summary>The relay's health check, through <c>MapHealthChecks("/health")</c> in a real host.</summary>
[CancelAfter(20_000)]
public class RelayHealthCheckTests
{
    private static async Task<WebApplication> StartHostAsync(CancellationToken cancellationToken, Action<CrocRelayOptions>? configure = null, Action<IServiceCollection>? before = null, bool ownWay = false)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        before?.Invoke(builder.Services);
        var relay = builder.Services.AddCrocRelay(o =>
        {
            o.Ports = [0, 0];
            o.ListenAddress = "127.0.0.1";
            configure?.Invoke(o);
        });
        if (ownWay)
        {
            builder.Services.AddHealthChecks().AddCheck<CrocRelayHealthCheck>("relay-mine");
        }
        else
        {
            relay.AddHealthChecks();
        }

        var app = builder.Build();
        app.MapCrocRelay();
        app.MapHealthChecks("/health");
        await app.StartAsync(cancellationToken);
        return app;
    }

    private static async Task<(HttpStatusCode Status, string Text)> GetHealthAsync(WebApplication app, CancellationToken cancellationToken)
    {
        using var client = Client(new Uri(app.Urls.First() + "/"));
        using var response = await client.GetAsync("health", cancellationToken);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(cancellationToken));
    }

    private static async Task<HealthReportEntry> EntryAsync(WebApplication app, CancellationToken cancellationToken, string name = CrocRelayHealthCheck.DefaultName)
        => (await app.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync(cancellationToken)).Entries[name];

    [Test]
    public async Task Health_RunningRelay_IsHealthyWithCounts(CancellationToken cancellationToken)
    {
        await using var app = await StartHostAsync(cancellationToken);
        Assert.That(await GetHealthAsync(app, cancellationToken), Is.EqualTo((HttpStatusCode.OK, "Healthy")));

        using var a = Client(new Uri(app.Urls.First() + "/"));
        using var b = Client(new Uri(app.Urls.First() + "/"), Second);
        var pair = await OpenAsync(a, b, cancellationToken);
        var ports = app.Services.GetRequiredService<CrocRelayListeners>().Ports;
        var (s, _) = await HelloAsync(ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        using (s)
        {
            Assert.That(await EventuallyAsync(() => app.Services.GetRequiredService<ChannelRegistry>().WaitingConnections == 1, TimeSpan.FromSeconds(5), cancellationToken), Is.True);
            var entry = await EntryAsync(app, cancellationToken);
            Assert.That(entry.Status, Is.EqualTo(HealthStatus.Healthy));
            Assert.That(entry.Data["channels"], Is.EqualTo(1));
            Assert.That(entry.Data["waitingLegs"], Is.EqualTo(1));
            Assert.That(entry.Data["pipedPairs"], Is.EqualTo(0));
            Assert.That(entry.Data["stapleConnections"], Is.EqualTo(1));
        }
    }

    [Test]
    public async Task Health_AddedTheHostsOwnWay_Works(CancellationToken cancellationToken)
    {
        await using var app = await StartHostAsync(cancellationToken, ownWay: true);
        Assert.That(await GetHealthAsync(app, cancellationToken), Is.EqualTo((HttpStatusCode.OK, "Healthy")));
        Assert.That((await EntryAsync(app, cancellationToken, "relay-mine")).Status, Is.EqualTo(HealthStatus.Healthy));
    }

    [Test]
    public async Task Health_ListenersStopped_IsUnhealthy(CancellationToken cancellationToken)
    {
        await using var app = await StartHostAsync(cancellationToken);
        await app.Services.GetRequiredService<StapleListenerService>().StopAsync(cancellationToken);
        Assert.That(await GetHealthAsync(app, cancellationToken), Is.EqualTo((HttpStatusCode.ServiceUnavailable, "Unhealthy")));
        Assert.That((await EntryAsync(app, cancellationToken)).Description, Does.Contain("not running"));
    }

    [Test]
    public async Task Health_NotStarted_IsUnhealthy(CancellationToken cancellationToken)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddCrocRelay(o => o.Ports = [0]).AddHealthChecks();
        await using var provider = services.BuildServiceProvider();
        var report = await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync(cancellationToken);
        Assert.That(report.Status, Is.EqualTo(HealthStatus.Unhealthy));
        Assert.That(report.Entries[CrocRelayHealthCheck.DefaultName].Description, Does.Contain("not running"));
    }

    [Test]
    public async Task Health_WebSocketOnlyRelay_HealthyWhileRunningUnhealthyWhenStoppedOrNotStarted(CancellationToken cancellationToken)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddCrocRelay(o => o.Ports = []).AddHealthChecks();
        await using var provider = services.BuildServiceProvider();
        var health = provider.GetRequiredService<HealthCheckService>();
        var legs = provider.GetRequiredService<StapleListenerService>();

        Assert.That((await health.CheckHealthAsync(cancellationToken)).Status, Is.EqualTo(HealthStatus.Unhealthy), "not started");
        await legs.StartAsync(cancellationToken);
        Assert.That((await health.CheckHealthAsync(cancellationToken)).Status, Is.EqualTo(HealthStatus.Healthy), "running, no TCP listener to watch");
        await legs.StopAsync(cancellationToken);
        var stopped = await health.CheckHealthAsync(cancellationToken);
        Assert.That(stopped.Status, Is.EqualTo(HealthStatus.Unhealthy), "stopped");
        Assert.That(stopped.Entries[CrocRelayHealthCheck.DefaultName].Description, Does.Contain("not running"));
    }

    [Test]
    public async Task Health_StoreUnreachable_IsUnhealthy(CancellationToken cancellationToken)
    {
        var store = new FailingStore();
        await using var app = await StartHostAsync(cancellationToken, before: s => s.AddSingleton<IChannelStore>(store));
        Assert.That(await GetHealthAsync(app, cancellationToken), Is.EqualTo((HttpStatusCode.OK, "Healthy")));

        store.Failing = true;
        Assert.That(await GetHealthAsync(app, cancellationToken), Is.EqualTo((HttpStatusCode.ServiceUnavailable, "Unhealthy")));
        var entry = await EntryAsync(app, cancellationToken);
        Assert.That(entry.Description, Does.Contain("channel store").And.Not.Contain(FailingStore.Secret), "the store's message may name credentials: it is not passed on");
        Assert.That(entry.Exception, Is.Null);

        store.Failing = false;
        Assert.That(await GetHealthAsync(app, cancellationToken), Is.EqualTo((HttpStatusCode.OK, "Healthy")));
    }

    [Test]
    public async Task Health_NearChannelCapacity_IsDegraded(CancellationToken cancellationToken)
    {
        await using var app = await StartHostAsync(cancellationToken, o => o.MaxChannels = 10);
        using var client = Client(new Uri(app.Urls.First() + "/"));
        for (var i = 0; i < 8; i++)
        {
            await OkAsync(PostAsync(client, "join", new { role = "sender" }, cancellationToken));
        }

        Assert.That(await GetHealthAsync(app, cancellationToken), Is.EqualTo((HttpStatusCode.OK, "Healthy")), "8 of 10 is not near");
        await OkAsync(PostAsync(client, "join", new { role = "sender" }, cancellationToken));
        Assert.That(await GetHealthAsync(app, cancellationToken), Is.EqualTo((HttpStatusCode.OK, "Degraded")));
        Assert.That((await EntryAsync(app, cancellationToken)).Description, Does.Contain("channels 9/10"));
    }

    [Test]
    public async Task Health_AcceptFailures_DegradedThenUnhealthy(CancellationToken cancellationToken)
    {
        await using var app = await StartHostAsync(cancellationToken);
        var metrics = app.Services.GetRequiredService<RelayMetrics>();
        var time = app.Services.GetRequiredService<ChannelRegistry>().TimeProvider;
        metrics.AcceptFailed(time);
        Assert.That(await GetHealthAsync(app, cancellationToken), Is.EqualTo((HttpStatusCode.OK, "Degraded")));
        for (var i = 1; i < CrocRelayHealthCheck.UnhealthyAcceptFailures; i++)
        {
            metrics.AcceptFailed(time);
        }

        Assert.That(await GetHealthAsync(app, cancellationToken), Is.EqualTo((HttpStatusCode.ServiceUnavailable, "Unhealthy")));
    }

    [Test]
    public void Constructor_WithoutTheRelay_SaysWhatToAdd()
    {
        using var provider = new ServiceCollection().BuildServiceProvider();
        Assert.That(() => new CrocRelayHealthCheck(provider), Throws.InvalidOperationException.With.Message.Contain("AddCrocRelay"));
    }

    /// <summary>An in-memory store whose probe can be made to fail, like a shared store that lost its server.</summary>
    private sealed class FailingStore : IChannelStore
    {
        public const string Secret = "password=hunter2";

        private readonly InMemoryChannelStore _inner = new();

        public volatile bool Failing;

        public ValueTask<ChannelState?> GetAsync(string name, CancellationToken cancellationToken = default) => _inner.GetAsync(name, cancellationToken);

        public ValueTask<bool> TryAddAsync(ChannelState state, CancellationToken cancellationToken = default) => _inner.TryAddAsync(state, cancellationToken);

        public ValueTask<Transition?> UpdateAsync(string name, long id, Func<ChannelState, Transition> transition, CancellationToken cancellationToken = default)
            => _inner.UpdateAsync(name, id, transition, cancellationToken);

        public ValueTask<ChannelState?> WaitAsync(string name, long id, long since, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken)
            => _inner.WaitAsync(name, id, since, timeout, timeProvider, cancellationToken);

        public ValueTask<bool> RemoveAsync(string name, long id, CancellationToken cancellationToken = default) => _inner.RemoveAsync(name, id, cancellationToken);

        public IAsyncEnumerable<ChannelState> AllAsync(CancellationToken cancellationToken = default) => _inner.AllAsync(cancellationToken);

        public ValueTask ProbeAsync(CancellationToken cancellationToken = default)
            => Failing ? ValueTask.FromException(new IOException("cannot reach store at redis:6379," + Secret)) : ValueTask.CompletedTask;
    }
}

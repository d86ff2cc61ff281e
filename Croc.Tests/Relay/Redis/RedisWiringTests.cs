using System.Net;
using System.Net.Sockets;
using CrocNet.Relay;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Net;
using CrocNet.Relay.Redis;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using static CrocNet.Tests.Relay.RelayTestKit;

namespace CrocNet.Tests.Relay.Redis;

/// <summary>How the Redis store is registered and validated, and a relay whose Redis is not there at all.</summary>
public class RedisWiringTests
{
    [Test]
    public void AddRedisChannelStore_ReplacesTheInMemoryStoreAndLimits()
    {
        var services = new ServiceCollection();
        services.AddCrocRelay().AddRedisChannelStore("127.0.0.1:1,abortConnect=false");

        Assert.That(services.Where(d => d.ServiceType == typeof(IChannelStore)), Has.Exactly(1).Items);
        Assert.That(services.Where(d => d.ServiceType == typeof(IRelayLimits)), Has.Exactly(1).Items);
        Assert.That(services.Single(d => d.ServiceType == typeof(IRelayLimits)).ImplementationType, Is.EqualTo(typeof(RedisRelayLimits)));
    }

    [TestCase("", "KeyPrefix")]
    [TestCase("has{brace}:", "KeyPrefix")]
    [TestCase("glob*:", "KeyPrefix")]
    [TestCase("has space", "KeyPrefix")]
    public void StartAsync_BadKeyPrefix_FailsNamingIt(string prefix, string setting)
    {
        var error = Assert.ThrowsAsync<OptionsValidationException>(() => StartAsync(r => r.KeyPrefix = prefix));
        Assert.That(error!.Message, Does.Contain(setting));
    }

    [Test]
    public void StartAsync_BadNodeIdAndTimeouts_EveryFailureNamed()
    {
        var error = Assert.ThrowsAsync<OptionsValidationException>(() => StartAsync(r =>
        {
            r.NodeId = "no/slashes";
            r.CommandTimeout = TimeSpan.FromMilliseconds(1);
            r.KeyTtlMargin = TimeSpan.Zero;
        }));
        Assert.That(error!.Failures, Has.Exactly(3).Items);
        Assert.That(error.Message, Does.Contain("NodeId").And.Contain("CommandTimeout").And.Contain("KeyTtlMargin"));
    }

    [Test]
    public void AddRedisChannelStore_MalformedConfiguration_FailsAtRegistration()
    {
        var builder = new ServiceCollection().AddCrocRelay();
        Assert.Throws<ArgumentException>(() => builder.AddRedisChannelStore("127.0.0.1:1,notAnOption=1"));
    }

    [Test]
    public void Options_Defaults_AreDocumented()
    {
        var first = new CrocRelayRedisOptions();
        var second = new CrocRelayRedisOptions();
        Assert.Multiple(() =>
        {
            Assert.That(first.KeyPrefix, Is.EqualTo("croc:"));
            Assert.That(first.NodeId, Does.Match("^node-[0-9a-f]{16}$"));
            Assert.That(second.NodeId, Is.Not.EqualTo(first.NodeId), "a random id per process");
            Assert.That(first.CommandTimeout, Is.EqualTo(TimeSpan.FromSeconds(2)));
            Assert.That(first.KeyTtlMargin, Is.EqualTo(TimeSpan.FromMinutes(5)));
        });
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task StartAsync_RedisNeverThere_StartsAnswers503QuicklyAndIsUnhealthy(CancellationToken cancellationToken)
    {
        // A port nothing listens on.
        int port;
        using (var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            port = ((IPEndPoint)socket.LocalEndPoint!).Port;
        }

        await using var relay = await StartRelayAsync(cancellationToken, o => o.ConfigureRelay = b => b.AddRedisChannelStore($"127.0.0.1:{port},password=secret-pw", r => r.CommandTimeout = TimeSpan.FromMilliseconds(500)));
        using var client = Client(relay.BaseAddress);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 3; i++)
        {
            var reply = await PostAsync(client, "join", new { role = "sender" }, cancellationToken);
            AssertError(reply, HttpStatusCode.ServiceUnavailable, "unavailable");
            Assert.That(reply.Body.ToJsonString(), Does.Not.Contain("secret-pw").And.Not.Contain(port.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)), "three refusals, each bounded by the command timeout");
        var health = await new CrocRelayHealthCheck(relay.Services).CheckHealthAsync(new HealthCheckContext(), cancellationToken);
        Assert.That(health.Status, Is.EqualTo(HealthStatus.Unhealthy));
        Assert.That(health.Description, Does.Not.Contain("secret-pw"));
    }

    private static Task<CrocRelayServer> StartAsync(Action<CrocRelayRedisOptions> configure)
        => StartRelayAsync(CancellationToken.None, o => o.ConfigureRelay = b => b.AddRedisChannelStore("127.0.0.1:1,abortConnect=false", configure));
}

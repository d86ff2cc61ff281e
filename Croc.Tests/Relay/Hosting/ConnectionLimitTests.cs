using System.Net;
using System.Net.Sockets;
using CrocNet.Relay.Hosting;
using CrocNet.Relay.Net;
using CrocNet.Relay.Staple;
using Microsoft.Extensions.DependencyInjection;
using static CrocNet.Tests.Relay.RelayTestKit;

namespace CrocNet.Tests.Relay.Hosting;

/// <summary>Floods a real relay with idle connections far above its limits, from many loopback addresses.</summary>
public class ConnectionLimitTests
{
    private const int Limit = 64;
    private const int PerAddress = 8;

    [Test]
    [CancelAfter(90_000)]
    public async Task StartAsync_FloodFarAboveTheLimits_HoldsOnlyItsLimitsAndStillServesTransfers(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o =>
        {
            o.MaxConnections = Limit;
            o.MaxConnectionsPerAddress = PerAddress;
            o.KeepAliveTimeout = TimeSpan.FromMinutes(5); // the flood must not simply time out during the test
            o.Relay.MaxConnections = Limit;
            o.Relay.MaxConnectionsPerAddress = PerAddress;
            o.Relay.HelloTimeout = TimeSpan.FromMinutes(5); // only the limits may close the silent ones
        });
        var http = relay.Services.GetRequiredService<HttpConnectionLimit>();
        var staple = relay.Services.GetRequiredService<StapleListenerService>();
        var httpPort = relay.BaseAddress.Port;
        var flood = new List<Flooder>();
        try
        {
            // Six addresses, 170 idle connections each to HTTP and to a stapling port: 1,020 of each kind. Their
            // per-address share (6 x 8 = 48) stays below the relay-wide limit, so others are still served.
            for (var a = 1; a <= 6; a++)
            {
                await FloodAsync(flood, IPAddress.Parse($"127.0.1.{a}"), httpPort, relay.Ports[0], 170, cancellationToken);
            }

            Assert.That(await EventuallyAsync(() => Open(flood, http: true) <= 6 * PerAddress, TimeSpan.FromSeconds(15), cancellationToken), Is.True, $"HTTP: {Open(flood, http: true)} of {flood.Count / 2} flood connections still open");
            Assert.That(await EventuallyAsync(() => Open(flood, http: false) <= 6 * PerAddress, TimeSpan.FromSeconds(15), cancellationToken), Is.True, $"TCP: {Open(flood, http: false)} still open");
            Assert.That(http.Open, Is.LessThanOrEqualTo(6 * PerAddress));
            Assert.That(staple.OpenConnections, Is.LessThanOrEqualTo(6 * PerAddress));

            Assert.That(await TransferTextAsync(relay.BaseAddress, "during the flood", cancellationToken), Is.EqualTo("during the flood"));

            // Forty more addresses: now the relay-wide limits bind too.
            for (var a = 1; a <= 40; a++)
            {
                await FloodAsync(flood, IPAddress.Parse($"127.0.2.{a}"), httpPort, relay.Ports[1], 12, cancellationToken);
            }

            Assert.That(await EventuallyAsync(() => Open(flood, http: true) <= Limit && Open(flood, http: false) <= Limit, TimeSpan.FromSeconds(15), cancellationToken), Is.True, $"{Open(flood, http: true)} HTTP and {Open(flood, http: false)} TCP flood connections still open");
            Assert.That(http.Open, Is.LessThanOrEqualTo(Limit));
            Assert.That(staple.OpenConnections, Is.LessThanOrEqualTo(Limit));
            Assert.That(http.Refused, Is.GreaterThan(0), "the per-address limit closed connections");
        }
        finally
        {
            foreach (var f in flood)
            {
                f.Socket.Dispose();
            }
        }

        // What is left open is the first transfer's clients' pooled HTTP connections (127.0.0.1).
        Assert.That(await EventuallyAsync(() => http.Open <= PerAddress && staple.OpenConnections == 0, TimeSpan.FromSeconds(15), cancellationToken), Is.True, $"the flood's slots are freed: {http.Open} HTTP, {staple.OpenConnections} TCP still open");
        Assert.That(await TransferTextAsync(relay.BaseAddress, "after the flood", cancellationToken), Is.EqualTo("after the flood"));
    }

    [Test]
    public void StartAsync_BadConnectionSettings_OneAggregatedError()
    {
        var error = Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => CrocNet.Relay.CrocRelayServer.StartAsync(o =>
        {
            o.Url = "http://127.0.0.1:0";
            o.MaxConnections = 0;
            o.MaxConnectionsPerAddress = 0;
            o.KeepAliveTimeout = TimeSpan.Zero;
        }));

        Assert.That(error!.Failures, Has.Exactly(3).Items);
        Assert.That(error.Message, Does.Contain("MaxConnections must be between 1 and 1000000, or unset; 0 is not.")
            .And.Contain("MaxConnectionsPerAddress must be between 1 and 1000000; 0 is not.")
            .And.Contain("KeepAliveTimeout must be between 00:00:01 and 00:10:00; 00:00:00 is not."));
    }

    [Test]
    public void Budget_DerivedDefaults_StayBelowTheDescriptorLimitWithAReserve()
    {
        foreach (var limit in new[] { 256, 1_024, 2_000, 20_000, 1_048_576 })
        {
            var http = FileDescriptorBudget.DefaultConnections(limit, CrocNet.Relay.CrocRelayServer.MaxDefaultConnections);
            var tcp = FileDescriptorBudget.DefaultConnections(limit, StapleListenerService.MaxDefaultConnections);
            Assert.That(http + tcp + FileDescriptorBudget.Reserve(limit), Is.LessThanOrEqualTo(limit), $"limit {limit}");
            Assert.That(FileDescriptorBudget.Reserve(limit), Is.GreaterThanOrEqualTo(Math.Min(128, limit / 2)));
        }

        Assert.That(FileDescriptorBudget.DefaultConnections(2_000, 10_000), Is.EqualTo(836));
        Assert.That(FileDescriptorBudget.ParseLimits("Max cpu time              unlimited            unlimited            seconds\nMax open files            2000                 4096                 files\n"), Is.EqualTo(2_000));
        Assert.That(FileDescriptorBudget.ParseLimits("Max open files            unlimited            unlimited            files\n"), Is.EqualTo(int.MaxValue));
        Assert.That(FileDescriptorBudget.ParseLimits("nothing here"), Is.Null);
    }

    [TestCase("2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::")]
    [TestCase("2001:db8:1:2:ffff:4:5:6", 56, "2001:db8:1::")]
    [TestCase("2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6")]
    [TestCase("2001:db8:1:2:3:4:5:6", 1, "::")]
    [TestCase("::ffff:10.1.2.3", 64, "10.1.2.3")]
    [TestCase("10.1.2.3", 8, "10.1.2.3")]
    public void LimitKey_Address_AggregatesIPv6ByPrefixOnly(string address, int prefix, string expected)
        => Assert.That(RelayAddress.LimitKey(IPAddress.Parse(address), prefix), Is.EqualTo(IPAddress.Parse(expected)));

    private static int Open(List<Flooder> flood, bool http) => flood.Count(f => f.Http == http && !f.Closed.IsCompleted);

    private static async Task FloodAsync(List<Flooder> flood, IPAddress source, int httpPort, int tcpPort, int count, CancellationToken cancellationToken)
    {
        for (var i = 0; i < count; i++)
        {
            flood.Add(await IdleAsync(source, httpPort, http: true, cancellationToken));
            flood.Add(await IdleAsync(source, tcpPort, http: false, cancellationToken));
        }
    }

    private static async Task<Flooder> IdleAsync(IPAddress source, int port, bool http, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(source, 0));
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken);
        }
        catch (SocketException)
        {
            // Refused or reset at once by the relay: closed.
            return new Flooder(socket, http, Task.CompletedTask);
        }

        // Never sends a byte; the read ends when the relay closes the connection (end of stream or reset).
        var closed = socket.ReceiveAsync(new byte[1], SocketFlags.None).ContinueWith(static _ => { }, TaskScheduler.Default);
        return new Flooder(socket, http, closed);
    }

    private sealed record Flooder(Socket Socket, bool Http, Task Closed);
}

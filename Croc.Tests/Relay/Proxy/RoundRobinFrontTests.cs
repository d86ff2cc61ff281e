using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CrocNet.Relay;
using CrocNet.Relay.Mesh;
using CrocNet.Relay.Redis;
using CrocNet.Tests.Relay.Redis;
using Microsoft.Extensions.DependencyInjection;
using static CrocNet.Tests.Relay.RelayTestKit;

namespace CrocNet.Tests.Relay.Proxy;

/// <summary>
/// Three relay nodes on one real Redis behind the kind of front a deployment puts before replicas: a real nginx that
/// terminates TLS and balances every request and WebSocket upgrade round-robin over the nodes (with
/// <c>X-Forwarded-For</c>), and a layer-4 round-robin for the TCP ports that speaks the PROXY protocol. Clients know
/// only the front; the nodes advertise the front's address for their ports, which they bind on their own loopback
/// addresses under the same numbers. Whatever node each request and each leg reaches, the transfer completes and the
/// protocol's rules hold.
/// </summary>
[CancelAfter(90_000)]
[NonParallelizable]
public sealed class RoundRobinFrontTests
{
    private static readonly IPAddress Front = IPAddress.Parse("127.0.1.100");
    private static readonly IPAddress[] NodeAddresses = [IPAddress.Parse("127.0.1.1"), IPAddress.Parse("127.0.1.2"), IPAddress.Parse("127.0.1.3")];

    private readonly TempFolders _folders = new("croc-front-");
    private X509Certificate2 _certificate = null!;
    private RedisServer _redis = null!;
    private List<CrocRelayServer> _nodes = [];
    private NginxProxy _nginx = null!;
    private TcpRoundRobin _tcp = null!;
    private readonly string _prefix = "f" + Guid.NewGuid().ToString("N")[..8] + ":";

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        Assert.That(NginxProxy.Executable, Is.Not.Null, "nginx must be installed for these tests (.ci/run installs it)");
        _certificate = Transport.TestCertificates.SelfSigned();
        _redis = await RedisServer.StartAsync(CancellationToken.None);
        var ports = TcpRoundRobin.FreePorts(4, [Front, .. NodeAddresses]);
        var prefix = _prefix;
        for (var i = 0; i < NodeAddresses.Length; i++)
        {
            var node = i;
            _nodes.Add(await StartRelayAsync(CancellationToken.None, o =>
            {
                o.Relay.ListenAddress = NodeAddresses[node].ToString();
                o.Relay.Ports = [.. ports];
                o.Relay.AdvertisedHost = Front.ToString();
                // nginx (from 127.0.0.1) and the TCP front report the client; the TCP front with a PROXY header.
                o.Relay.TrustedProxies = ["127.0.0.1"];
                o.Relay.ProxyProtocol = true;
                o.Relay.MaxChannelsPerAddress = 10_000;
                o.Relay.MaxJoinsPerMinute = 100_000;
                o.Relay.MaxFailedLookupsPerMinute = 100_000;
                o.MaxConnectionsPerAddress = 10_000;
                o.Relay.MaxConnectionsPerAddress = 10_000;
                o.Relay.MaxPendingHellosPerAddress = 10_000;
                o.Relay.MaxWaitingConnectionsPerAddress = 10_000;
                // Closed channels are forgotten at once, so the load test can see that none is left behind.
                o.Relay.ClosedRetention = TimeSpan.Zero;
                o.ConfigureRelay = relay => relay.AddRedisChannelStore(_redis.Configuration, r =>
                {
                    r.KeyPrefix = prefix;
                    r.NodeId = "node-" + (char)('a' + node);
                    r.CommandTimeout = TimeSpan.FromSeconds(1);
                    r.MeshSecret = RelayCluster.MeshSecret;
                    r.MeshPort = 0;
                });
            }));
        }

        _nginx = await NginxProxy.StartAsync([.. _nodes.Select(n => n.BaseAddress)], _certificate, CancellationToken.None);
        _tcp = TcpRoundRobin.Start(Front, ports, NodeAddresses);
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        if (_tcp is not null)
        {
            await _tcp.DisposeAsync();
        }

        if (_nginx is not null)
        {
            await _nginx.DisposeAsync();
        }

        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }

        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }

        _certificate?.Dispose();
    }

    [TearDown]
    public void DeleteFolders() => _folders.DeleteAll();

    [Test]
    public async Task Transfer_TcpLegsThroughTheRoundRobinFront_ByteExactLegsForwardedToTheOwner(CancellationToken cancellationToken)
    {
        var (forwardedBefore, acceptedBefore) = MeshTotals();
        var legsBefore = _tcp.PerBackend.ToArray();

        var (data, output) = await TransferAsync(CrocTransport.Tcp, null, null, cancellationToken);

        Assert.That((await File.ReadAllBytesAsync(output, cancellationToken)).AsSpan().SequenceEqual(data), Is.True, "byte-exact");
        var legs = _tcp.PerBackend.Select((n, i) => n - legsBefore[i]).ToArray();
        Assert.That(legs.Sum(), Is.GreaterThanOrEqualTo(8), "both sides' four TCP legs came through the front");
        Assert.That(legs, Is.All.GreaterThan(0), "the front spread the legs over every node");
        var (forwarded, accepted) = MeshTotals();
        Assert.That(forwarded - forwardedBefore, Is.GreaterThanOrEqualTo(legs.Sum() - legs.Max()), "every leg that reached another node than the owner was forwarded");
        Assert.That(accepted - acceptedBefore, Is.EqualTo(forwarded - forwardedBefore), "and the owner took each one");
    }

    [Test]
    public async Task Transfer_WebSocketLegsThroughNginx_TwoMachinesAndAThirdIsRefusedOnEveryNode(CancellationToken cancellationToken)
    {
        var (forwardedBefore, _) = MeshTotals();

        var (data, output) = await TransferAsync(CrocTransport.WebSocket, Second, Third, cancellationToken, checkThird: true);

        Assert.That((await File.ReadAllBytesAsync(output, cancellationToken)).AsSpan().SequenceEqual(data), Is.True, "byte-exact");
        Assert.That(MeshTotals().Forwarded - forwardedBefore, Is.GreaterThan(0), "nginx sent some upgrades to nodes that do not own the channel");
    }

    [Test]
    [CancelAfter(300_000)]
    public async Task Load_AThousandSmallTransfersAcrossTheNodes_NoFailureAndNoChannelLeftInRedis(CancellationToken cancellationToken)
    {
        const int Transfers = 1_000;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        using var gate = new SemaphoreSlim(16);
        using var handler = Handler(null, _certificate);
        var croc = Croc.New(o => o.WithRelay(_nginx.BaseAddress).WithTransport(CrocTransport.Tcp).UseHttpMessageHandler(handler).WithRetries(2, TimeSpan.FromMilliseconds(20)));
        var target = _folders.New();
        var transfers = Enumerable.Range(0, Transfers).Select(async i =>
        {
            await gate.WaitAsync(cancellationToken);
            try
            {
                var text = "load " + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
                await using var send = await croc.StartSendAsync(SendContent.FromText(text), cancellationToken);
                var received = await croc.ReceiveAsync(send.Code, new ReceiveOptions { OutputDirectory = target }, cancellationToken);
                await send.Completion.WaitAsync(cancellationToken);
                if (received.Text != text)
                {
                    failures.Add($"{i}: received '{received.Text}'");
                }
            }
            catch (CrocException e)
            {
                failures.Add($"{i}: {e.Code} {e.Message}");
            }
            finally
            {
                gate.Release();
            }
        });
        await Task.WhenAll(transfers);
        var elapsed = clock.Elapsed;

        Assert.That(failures, Is.Empty, "every transfer completes");
        Assert.That(elapsed, Is.LessThan(TimeSpan.FromMinutes(4)), "bounded in time (about 90 s on two shared cores)");
        TestContext.Out.WriteLine(FormattableString.Invariant($"{Transfers} transfers through nginx and the TCP front over three nodes in {elapsed.TotalSeconds:0.0} s ({Transfers / elapsed.TotalSeconds:0} per second), legs per node {string.Join("/", _tcp.PerBackend)}"));

        // Every channel was closed by its participants and, ClosedRetention being zero here, forgotten: no channel key
        // is left in Redis, and no channel slot in the relay-wide limit.
        using var redis = await _redis.ConnectAsync();
        var server = redis.GetServer(redis.GetEndPoints()[0]);
        var left = -1;
        for (var wait = System.Diagnostics.Stopwatch.StartNew(); wait.Elapsed < TimeSpan.FromSeconds(30); await Task.Delay(100, cancellationToken))
        {
            left = 0;
            await foreach (var _ in server.KeysAsync(pattern: _prefix + "ch:{*}"))
            {
                left++;
            }

            if (left == 0)
            {
                break;
            }
        }

        Assert.That(left, Is.Zero, "no channel key leaked");
        Assert.That(await redis.GetDatabase().SortedSetLengthAsync(_prefix + "lim:{l}:channels"), Is.Zero, "no channel slot leaked");
    }

    /// <summary>
    /// One transfer through the front (the sender from <paramref name="senderAddress"/>, the recipient from
    /// <paramref name="recipientAddress"/>; the machine's own address when null); with <paramref name="checkThird"/>,
    /// a third address tries to join the channel three times (one per node, round-robin) while the offer waits, and must
    /// be refused each time.
    /// </summary>
    private async Task<(byte[] Data, string Output)> TransferAsync(
        CrocTransport transport, IPAddress? senderAddress, IPAddress? recipientAddress, CancellationToken cancellationToken, bool checkThird = false)
    {
        var data = RandomNumberGenerator.GetBytes((6 * 1024 * 1024) + 5);
        var source = Path.Join(_folders.New(), "front.bin");
        await File.WriteAllBytesAsync(source, data, cancellationToken);
        var target = _folders.New();
        using var senderHandler = Handler(senderAddress, _certificate);
        using var recipientHandler = Handler(recipientAddress, _certificate);
        var sender = Croc.New(o => o.WithRelay(_nginx.BaseAddress).WithTransport(transport).UseHttpMessageHandler(senderHandler).WithRetries(2, TimeSpan.FromMilliseconds(20)));
        var recipient = Croc.New(o => o.WithRelay(_nginx.BaseAddress).WithTransport(transport).UseHttpMessageHandler(recipientHandler).WithRetries(2, TimeSpan.FromMilliseconds(20)));

        await using var send = await sender.StartSendAsync(SendContent.FromPath(source), cancellationToken);
        var channel = CrocNet.Codes.CodePhrase.Parse(send.Code).Channel;
        var options = new ReceiveOptions
        {
            OutputDirectory = target,
            // While the offer waits for its answer both machines are on the channel (closed ones are forgotten at once
            // here): the nodes saw them from X-Forwarded-For, not nginx, so a third is refused, on each node in turn.
            ConfirmOffer = checkThird ? async (_, token) => await RefuseThirdAsync(channel, token) : null,
        };
        await recipient.ReceiveAsync(send.Code, options, cancellationToken);
        await send.Completion.WaitAsync(cancellationToken);
        return (data, Path.Join(target, "front.bin"));
    }

    private async Task<bool> RefuseThirdAsync(string channel, CancellationToken cancellationToken)
    {
        using var third = new HttpClient(Handler(IPAddress.Parse("127.0.0.4"), _certificate)) { BaseAddress = _nginx.BaseAddress };
        for (var i = 0; i < _nodes.Count; i++)
        {
            AssertError(await PostAsync(third, "join", new { role = "recipient", channel }, cancellationToken), HttpStatusCode.Forbidden, "ip_limit");
        }

        return true;
    }

    private (long Forwarded, long Accepted) MeshTotals()
    {
        var routers = _nodes.Select(n => n.Services.GetRequiredService<MeshRouter>()).ToList();
        return (routers.Sum(r => r.ForwardedLegs), routers.Sum(r => r.AcceptedLegs));
    }
}

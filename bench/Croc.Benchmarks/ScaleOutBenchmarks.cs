using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using CrocNet.Relay;
using CrocNet.Relay.Redis;
using Microsoft.Extensions.DependencyInjection;
using CrocNet.Tests.Relay.Redis;
using StackExchange.Redis;

namespace CrocNet.Benchmarks;

/// <summary>
/// Relays for the scale-out benchmarks, all in this process on loopback: one node with the in-memory store, and three
/// nodes sharing one real redis-server (started here, in memory only) through the Redis store and the mesh. The sender
/// always talks to node a, which so owns its channels; the recipient talks to node a (its legs are local) or to node b
/// (its legs land there and are forwarded one hop to a).
/// </summary>
public abstract class ScaleOutBenchmarkBase
{
    private RedisServer _redis = null!;

    protected CrocRelayServer OneNode { get; private set; } = null!;

    protected CrocRelayServer[] Nodes { get; private set; } = [];

    private protected RedisServer Redis => _redis;

    protected string Root { get; private set; } = null!;

    [GlobalSetup]
    public void StartRelays()
    {
        Root = Path.Combine(Path.GetTempPath(), "croc-bench-scale-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Root);
        _redis = RedisServer.StartAsync(CancellationToken.None).GetAwaiter().GetResult();
        OneNode = CrocRelayServer.StartAsync(o => Configure(o)).GetAwaiter().GetResult();
        var secret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var prefix = "bench" + Guid.NewGuid().ToString("N")[..6] + ":";
        Nodes = [.. Enumerable.Range(0, 3).Select(i => CrocRelayServer.StartAsync(o =>
        {
            Configure(o);
            o.ConfigureRelay = relay => relay.AddRedisChannelStore(_redis.Configuration, r =>
            {
                r.KeyPrefix = prefix;
                r.NodeId = "node-" + (char)('a' + i);
                r.MeshSecret = secret;
                r.MeshPort = 0;
            });
        }).GetAwaiter().GetResult())];
        Prepare();
    }

    [GlobalCleanup]
    public void StopRelays()
    {
        foreach (var node in Nodes.Append(OneNode))
        {
            node.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }

        _redis.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(Root, recursive: true);
    }

    /// <summary>Files and the like, once the relays run.</summary>
    protected virtual void Prepare()
    {
    }

    protected static void Configure(CrocRelayServerOptions o)
    {
        o.Url = "http://127.0.0.1:0";
        o.Relay.Ports = [0, 0, 0, 0];
        o.Relay.ListenAddress = "127.0.0.1";
        // Every client here comes from 127.0.0.1: lift the per-address limits (the relay tests check them).
        o.MaxConnectionsPerAddress = 100_000;
        o.Relay.MaxChannels = 20_000;
        o.Relay.MaxChannelsPerAddress = 20_000;
        o.Relay.MaxJoinsPerMinute = 1_000_000;
        o.Relay.MaxFailedLookupsPerMinute = 1_000_000;
        o.Relay.MaxConnectionsPerAddress = 100_000;
        o.Relay.MaxWaitingConnectionsPerAddress = 100_000;
        o.Relay.MaxPendingHellosPerAddress = 100_000;
    }

    /// <summary>One transfer: the sender through <paramref name="senderRelay"/>, the recipient through <paramref name="recipientRelay"/>.</summary>
    protected static async Task<TransferResult> TransferAsync(Uri senderRelay, Uri recipientRelay, SendContent content, string destination)
    {
        using var senderHandler = new SocketsHttpHandler();
        using var recipientHandler = new SocketsHttpHandler();
        var sender = Croc.New(o => o.WithRelay(senderRelay).UseHttpMessageHandler(senderHandler));
        var recipient = Croc.New(o => o.WithRelay(recipientRelay).UseHttpMessageHandler(recipientHandler));
        await using var operation = await sender.StartSendAsync(content, cancellationToken: CancellationToken.None).ConfigureAwait(false);
        var received = recipient.ReceiveAsync(operation.Code, new ReceiveOptions { OutputDirectory = destination, Overwrite = CrocOverwritePolicy.Overwrite }, CancellationToken.None);
        await Task.WhenAll(received, operation.Completion).ConfigureAwait(false);
        return await received.ConfigureAwait(false);
    }
}

/// <summary>
/// Handshake latency: a one-line text transfer (join, PAKE, key confirmation, four legs stapled, one frame, verdict) on
/// one in-memory node against three Redis nodes, with the recipient on the owner node or on another (legs forwarded).
/// The PAKE's Argon2id is the same in every case; the difference is the relay's.
/// </summary>
[Config(typeof(PercentileConfig))]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 3, iterationCount: 40)]
public class HandshakeBenchmarks : ScaleOutBenchmarkBase
{
    [Benchmark(Baseline = true)]
    public Task<TransferResult> OneNodeInMemory() => TransferAsync(OneNode.BaseAddress, OneNode.BaseAddress, SendContent.FromText("hello"), Root);

    [Benchmark]
    public Task<TransferResult> ThreeNodesRedisSameNode() => TransferAsync(Nodes[0].BaseAddress, Nodes[0].BaseAddress, SendContent.FromText("hello"), Root);

    [Benchmark]
    public Task<TransferResult> ThreeNodesRedisOtherNode() => TransferAsync(Nodes[0].BaseAddress, Nodes[1].BaseAddress, SendContent.FromText("hello"), Root);
}

/// <summary>1 GiB to disk through three Redis nodes: the recipient's legs local to the owner node, or forwarded one hop.</summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 3)]
public class ForwardedLegBenchmarks : ScaleOutBenchmarkBase
{
    private const long FileSize = 1L << 30;
    private string _source = null!;
    private string _destination = null!;

    protected override void Prepare()
    {
        _source = Path.Combine(Root, "big.bin");
        _destination = Path.Combine(Root, "out");
        Directory.CreateDirectory(_destination);
        var block = new byte[4 << 20];
        using var file = File.Create(_source);
        for (long written = 0; written < FileSize; written += block.Length)
        {
            RandomNumberGenerator.Fill(block);
            file.Write(block);
        }
    }

    [Benchmark(Baseline = true)]
    public Task<TransferResult> OneGiBLocalLegs() => TransferAsync(Nodes[0].BaseAddress, Nodes[0].BaseAddress, SendContent.FromPath(_source), _destination);

    [Benchmark]
    public Task<TransferResult> OneGiBForwardedLegs() => TransferAsync(Nodes[0].BaseAddress, Nodes[1].BaseAddress, SendContent.FromPath(_source), _destination);
}

/// <summary>
/// What 10,000 channels waiting for their recipient cost: each iteration joins that many sender channels on one node
/// (in memory, or on Redis) and reports the node process's managed heap and working set growth and, on Redis, the
/// server's <c>used_memory</c> growth; the channels are closed again afterwards. Also counts the Redis commands of one
/// small transfer (from <c>INFO commandstats</c>).
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 0, iterationCount: 1)]
public class WaitingChannelsBenchmarks : ScaleOutBenchmarkBase
{
    private const int Channels = 10_000;

    [Params(false, true)]
    public bool OnRedis { get; set; }

    [Benchmark]
    public async Task TenThousandWaitingChannels()
    {
        var node = OnRedis ? Nodes[0] : OneNode;
        using var http = new HttpClient { BaseAddress = node.BaseAddress };
        using var admin = await Redis.ConnectAsync().ConfigureAwait(false);
        var server = admin.GetServer(admin.GetEndPoints()[0]);
        var redisBefore = UsedMemory(server);
        var (heapBefore, setBefore) = Footprint();
        var joined = new List<(string Channel, string Uuid)>(Channels);
        using var gate = new SemaphoreSlim(32);
        var joins = Enumerable.Range(0, Channels).Select(async i =>
        {
            await gate.WaitAsync().ConfigureAwait(false);
            try
            {
                var channel = "w" + i.ToString("x7", CultureInfo.InvariantCulture);
                using var response = await http.PostAsJsonAsync("join", new JoinBody(channel, "p256", "sender")).ConfigureAwait(false);
                response.EnsureSuccessStatusCode();
                var state = await response.Content.ReadFromJsonAsync<JoinReply>().ConfigureAwait(false);
                lock (joined)
                {
                    joined.Add((channel, state!.Uuid));
                }
            }
            finally
            {
                gate.Release();
            }
        });
        await Task.WhenAll(joins).ConfigureAwait(false);
        var (heapAfter, setAfter) = Footprint();
        var redisAfter = UsedMemory(server);
        Console.WriteLine(FormattableString.Invariant(
            $"// waiting: redis={OnRedis} channels={joined.Count} heap_growth_mib={(heapAfter - heapBefore) / 1048576.0:0.0} working_set_growth_mib={(setAfter - setBefore) / 1048576.0:0.0} working_set_mib={setAfter / 1048576.0:0.0} redis_used_memory_growth_mib={(redisAfter - redisBefore) / 1048576.0:0.0}"));

        foreach (var (channel, uuid) in joined)
        {
            using var response = await http.PostAsJsonAsync("channel", new CloseBody(channel, uuid, true)).ConfigureAwait(false);
        }

        if (OnRedis)
        {
            await server.ExecuteAsync("CONFIG", "RESETSTAT").ConfigureAwait(false);
            await TransferAsync(Nodes[0].BaseAddress, Nodes[1].BaseAddress, SendContent.FromText("hello"), Root).ConfigureAwait(false);
            var calls = server.Info("commandstats").SelectMany(g => g).Sum(p => Calls(p.Value));
            Console.WriteLine(FormattableString.Invariant($"// redis commands for one small transfer across two nodes: {calls}"));
        }
    }

    private static (long Heap, long WorkingSet) Footprint()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var self = Process.GetCurrentProcess();
        return (GC.GetTotalMemory(forceFullCollection: true), self.WorkingSet64);
    }

    private static long UsedMemory(IServer server) =>
        long.Parse(server.Info("memory").SelectMany(g => g).First(p => p.Key == "used_memory").Value, CultureInfo.InvariantCulture);

    private static long Calls(string stats) =>
        stats.Split(',').Where(s => s.StartsWith("calls=", StringComparison.Ordinal)).Sum(s => long.Parse(s["calls=".Length..], CultureInfo.InvariantCulture));

    private sealed record JoinBody(string Channel, string Curve, string Role);

    private sealed record JoinReply(string Uuid);

    private sealed record CloseBody(string Channel, string Uuid, bool Close);
}

/// <summary>Adds the 50th and 99th percentiles of the iterations to the summary.</summary>
public sealed class PercentileConfig : ManualConfig
{
    public PercentileConfig() => AddColumn(StatisticColumn.P50, new P99Column());

    private sealed class P99Column : IColumn
    {
        public string Id => "P99";

        public string ColumnName => "P99";

        public bool AlwaysShow => true;

        public ColumnCategory Category => ColumnCategory.Statistics;

        public int PriorityInCategory => 10;

        public bool IsNumeric => true;

        public UnitType UnitType => UnitType.Time;

        public string Legend => "99th percentile of the iterations";

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var statistics = summary[benchmarkCase]?.ResultStatistics;
            return statistics is null ? "-" : (statistics.Percentiles.Percentile(99) / 1e6).ToString("0.0", CultureInfo.InvariantCulture) + " ms";
        }

        public bool IsAvailable(Summary summary) => true;

        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    }
}

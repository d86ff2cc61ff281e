using System.Net;
using CrocNet.Relay;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Mesh;
using CrocNet.Relay.Redis;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace CrocNet.Tests.Relay.Redis;

/// <summary>
/// Several real relay nodes (each its own <see cref="CrocRelayServer"/> on loopback port 0, with its own TCP ports)
/// sharing one real Redis under a key prefix of their own, so tests on one Redis server never see each other's keys.
/// </summary>
internal sealed class RelayCluster : IAsyncDisposable
{
    private readonly List<HttpClient> _clients = [];

    private RelayCluster(RedisServer redis, string prefix, IReadOnlyList<CrocRelayServer> nodes)
    {
        Redis = redis;
        Prefix = prefix;
        Nodes = nodes;
    }

    /// <summary>The mesh secret every node of a cluster shares unless a test changes it.</summary>
    public const string MeshSecret = "test-mesh-secret-0123456789";

    public RedisServer Redis { get; }

    public string Prefix { get; }

    public IReadOnlyList<CrocRelayServer> Nodes { get; }

    public static async Task<RelayCluster> StartAsync(RedisServer redis, CancellationToken cancellationToken, Action<CrocRelayServerOptions>? configure = null, Action<CrocRelayRedisOptions>? redisOptions = null, int nodes = 3, Action<CrocRelayRedisOptions, int>? perNode = null)
    {
        var prefix = "t" + Guid.NewGuid().ToString("N")[..8] + ":";
        var started = new List<CrocRelayServer>();
        try
        {
            for (var i = 0; i < nodes; i++)
            {
                var node = i;
                started.Add(await RelayTestKit.StartRelayAsync(cancellationToken, o =>
                {
                    o.Relay.MaxChannelsPerAddress = 10_000;
                    o.Relay.MaxJoinsPerMinute = 100_000;
                    o.Relay.MaxFailedLookupsPerMinute = 100_000;
                    configure?.Invoke(o);
                    o.ConfigureRelay = relay => relay.AddRedisChannelStore(redis.Configuration, r =>
                    {
                        r.KeyPrefix = prefix;
                        r.NodeId = "node-" + (char)('a' + node);
                        r.CommandTimeout = TimeSpan.FromSeconds(1);
                        r.MeshSecret = MeshSecret;
                        r.MeshPort = 0;
                        redisOptions?.Invoke(r);
                        perNode?.Invoke(r, node);
                    });
                }));
            }
        }
        catch
        {
            foreach (var node in started)
            {
                await node.DisposeAsync();
            }

            throw;
        }

        return new RelayCluster(redis, prefix, started);
    }

    /// <summary>An HTTP client to node <paramref name="node"/> whose connections come from <paramref name="source"/>.</summary>
    public HttpClient Client(int node, IPAddress? source = null)
    {
        var client = RelayTestKit.Client(Nodes[node].BaseAddress, source);
        _clients.Add(client);
        return client;
    }

    /// <summary>Node <paramref name="node"/>'s mesh router (its forwarding counters).</summary>
    public MeshRouter Mesh(int node) => Nodes[node].Services.GetRequiredService<MeshRouter>();

    /// <summary>Node <paramref name="node"/>'s channel registry.</summary>
    public ChannelRegistry Registry(int node) => Nodes[node].Services.GetRequiredService<ChannelRegistry>();

    /// <summary>The keys under this cluster's prefix, as Redis holds them now.</summary>
    public async Task<List<string>> KeysAsync()
    {
        await using var connection = await Redis.ConnectAsync();
        var server = connection.GetServers().Single();
        var keys = new List<string>();
        await foreach (var key in server.KeysAsync(pattern: Prefix + "*"))
        {
            keys.Add(key.ToString());
        }

        return keys;
    }

    /// <summary>The raw stored record of channel <paramref name="name"/>: its version and JSON.</summary>
    public async Task<(string? Version, string? Json, TimeSpan? Ttl)> RecordAsync(string name)
    {
        await using var connection = await Redis.ConnectAsync();
        var db = connection.GetDatabase();
        var key = (RedisKey)(Prefix + "ch:{" + name + "}");
        var values = await db.HashGetAsync(key, ["v", "s"]);
        return (values[0].HasValue ? values[0].ToString() : null, values[1].HasValue ? values[1].ToString() : null, await db.KeyTimeToLiveAsync(key));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        foreach (var node in Nodes)
        {
            await node.DisposeAsync();
        }
    }
}

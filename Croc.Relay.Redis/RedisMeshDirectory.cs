using CrocNet.Relay.Channels;
using CrocNet.Relay.Mesh;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace CrocNet.Relay.Redis;

/// <summary>
/// The node directory and channel owners in Redis. Each node announces itself as <c>{prefix}node:{id}</c> = its link
/// endpoint (empty without a mesh secret), with a time to live of three heartbeats, refreshed every beat and deleted on
/// a clean stop. A channel's owner is the <c>Owner</c> of its record: the node that created it, or the one that took
/// it over after its owner left the directory.
/// </summary>
internal sealed class RedisMeshDirectory : IMeshDirectory
{
    /// <summary>How many heartbeats a node's entry outlives its last one.</summary>
    internal const int BeatsToLive = 3;

    /// <summary>How often a route re-reads an owner that changed under it before it gives up and attaches locally.</summary>
    private const int MaxAttempts = 4;

    private readonly RedisConnection _redis;
    private readonly RedisChannelStore _store;
    private readonly MeshSettings _settings;
    private readonly ILogger _logger;
    private readonly string _nodes;

    public RedisMeshDirectory(RedisConnection redis, RedisChannelStore store, MeshSettings settings, ILogger<RedisMeshDirectory>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(redis);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(settings);
        _redis = redis;
        _store = store;
        _settings = settings;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _nodes = redis.Options.KeyPrefix + "node:";
    }

    /// <summary>The directory key of node <paramref name="id"/>.</summary>
    internal RedisKey NodeKey(string id) => _nodes + id;

    public async ValueTask<MeshRoute> RouteAsync(string channel, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < MaxAttempts; attempt++)
        {
            if (await _store.OwnerAsync(channel, cancellationToken).ConfigureAwait(false) is not { } owner
                || string.Equals(owner, _settings.NodeId, StringComparison.Ordinal))
            {
                return MeshRoute.Local;
            }

            var endpoint = await _redis.RunAsync(db => db.StringGetAsync(NodeKey(owner)), cancellationToken).ConfigureAwait(false);
            if (endpoint.HasValue)
            {
                // An owner without a mesh cannot take forwarded legs (its start refused to share the store with others).
                var text = endpoint.ToString();
                return text.Length == 0 ? MeshRoute.Local : new MeshRoute(owner, text);
            }

            // The owner left the directory (stopped, or missed its heartbeats): take the channel over.
            switch (await _store.TakeOverAsync(channel, owner, cancellationToken).ConfigureAwait(false))
            {
                case true:
                    RedisLog.TakenOver(_logger, _settings.NodeId, channel, owner);
                    return MeshRoute.Local;
                case null:
                    return MeshRoute.Local;
                default:
                    continue;
            }
        }

        return MeshRoute.Local;
    }

    public async ValueTask BeatAsync(string endpoint, CancellationToken cancellationToken)
    {
        var ttl = _settings.Heartbeat * BeatsToLive;
        await _redis.RunAsync(db => db.StringSetAsync(NodeKey(_settings.NodeId), endpoint, ttl), cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask LeaveAsync(CancellationToken cancellationToken)
        => await _redis.RunAsync(db => db.KeyDeleteAsync(NodeKey(_settings.NodeId)), cancellationToken).ConfigureAwait(false);

    public async ValueTask<IReadOnlyList<string>> OtherNodesAsync(CancellationToken cancellationToken)
    {
        var found = new List<string>();
        try
        {
            var multiplexer = await _redis.GetAsync(cancellationToken).ConfigureAwait(false);
            foreach (var server in multiplexer.GetServers().Where(static s => !s.IsReplica && s.IsConnected))
            {
                await foreach (var key in server.KeysAsync(pattern: _nodes + "*", pageSize: 256).WithCancellation(cancellationToken).ConfigureAwait(false))
                {
                    var id = key.ToString()[_nodes.Length..];
                    if (!string.Equals(id, _settings.NodeId, StringComparison.Ordinal))
                    {
                        found.Add(id);
                    }
                }
            }
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw new ChannelStoreUnavailableException($"Redis did not answer ({e.GetType().Name}).", e);
        }

        return found;
    }
}

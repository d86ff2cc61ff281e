using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using CrocNet.Relay.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace CrocNet.Relay.Redis;

/// <summary>
/// Channel states in Redis, shared by every relay node. One hash per channel, <c>{prefix}ch:{name}</c> (the name is the
/// hash tag, so a channel's key stays on one cluster slot), with a version <c>v</c> (<c>id:n</c>, grown by every write)
/// and the state <c>s</c> as compact JSON. A change reads the state, runs the pure transition here and writes it back
/// with a Lua compare-and-set on the version, retrying a bounded number of times on a conflict, so every transition is
/// atomic across nodes. A write whose <c>rev</c> grew publishes the channel's name on <c>{prefix}changes</c>; long-polls
/// wake on it and always re-read the state (a message may be lost). Keys expire as a backstop only: at the channel's
/// latest end plus <see cref="CrocRelayRedisOptions.KeyTtlMargin"/>, refreshed on every write and, while this node pipes
/// the channel's data, on a timer.
/// </summary>
internal sealed class RedisChannelStore : IChannelStore, IAsyncDisposable
{
    /// <summary>How many compare-and-set conflicts in a row a change survives before it is answered 503.</summary>
    internal const int MaxAttempts = 32;

    /// <summary>How often a long-poll re-reads the state even without a notification.</summary>
    internal static readonly TimeSpan Resync = TimeSpan.FromSeconds(5);

    private const string AddScript = """
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        redis.call('HSET', KEYS[1], 'v', ARGV[1], 's', ARGV[2])
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        return 1
        """;

    private const string SetScript = """
        if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
        redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3])
        redis.call('PEXPIRE', KEYS[1], ARGV[4])
        if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
        return 1
        """;

    private const string RemoveScript = """
        local v = redis.call('HGET', KEYS[1], 'v')
        if not v or string.sub(v, 1, string.len(ARGV[1])) ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1])
        redis.call('PUBLISH', ARGV[2], ARGV[3])
        return 1
        """;

    private const string TouchScript = """
        local v = redis.call('HGET', KEYS[1], 'v')
        if not v or string.sub(v, 1, string.len(ARGV[1])) ~= ARGV[1] then return 0 end
        if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
        return 1
        """;

    // The owner changes with the version, so it races every other write of the channel: exactly one taker wins. The
    // expiry is left as it is.
    private const string TakeOverScript = """
        if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
        redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3])
        return 1
        """;

    // A new sequence (a first start, or a Redis that lost its data) starts at a random point, so the ids of channels
    // from before the loss that nodes still remember are not handed out again.
    private const string IdScript = """
        local id = redis.call('INCR', KEYS[1])
        if id == 1 then id = redis.call('INCRBY', KEYS[1], ARGV[1]) end
        return id
        """;

    private static readonly RedisValue[] Fields = ["v", "s"];

    private readonly RedisConnection _redis;
    private readonly CrocRelayOptions _relay;
    private readonly CrocRelayRedisOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly RedisChannel _changes;
    private readonly RedisKey _ids;
    private readonly ConcurrentDictionary<string, Signal> _signals = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _piped = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _subscribing = new(1, 1);
    private readonly ITimer _refresh;
    private volatile bool _subscribed;
    private readonly Lock _refreshGate = new();
    private Task _refreshing = Task.CompletedTask;

    public RedisChannelStore(RedisConnection redis, IOptions<CrocRelayOptions> relay, RelayClock clock, ILogger<RedisChannelStore>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(redis);
        ArgumentNullException.ThrowIfNull(relay);
        ArgumentNullException.ThrowIfNull(clock);
        _redis = redis;
        _relay = relay.Value;
        _options = redis.Options;
        _time = clock.TimeProvider;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _changes = RedisChannel.Literal(_options.KeyPrefix + "changes");
        _ids = _options.KeyPrefix + "ids";
        var every = _options.KeyTtlMargin / 3;
        _refresh = _time.CreateTimer(static s => ((RedisChannelStore)s!).StartRefresh(), this, every, every);
    }

    public string NodeId => _options.NodeId;

    public bool IsShared => true;

    /// <summary>The key of channel <paramref name="name"/>.</summary>
    internal RedisKey KeyOf(string name) => _options.KeyPrefix + "ch:{" + name + "}";

    public async ValueTask<long> NewIdAsync(CancellationToken cancellationToken = default)
        => (long)await _redis.RunAsync(
            db => db.ScriptEvaluateAsync(IdScript, [_ids], [System.Security.Cryptography.RandomNumberGenerator.GetInt32(1, int.MaxValue) * 1024L]),
            cancellationToken).ConfigureAwait(false);

    public async ValueTask<ChannelState?> GetAsync(string name, CancellationToken cancellationToken = default)
        => (await ReadAsync(name, cancellationToken).ConfigureAwait(false))?.State;

    public async ValueTask<bool> TryAddAsync(ChannelState state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        var json = StoredChannel.Serialize(state, _options.NodeId);
        var added = await _redis.RunAsync(
            db => db.ScriptEvaluateAsync(AddScript, [KeyOf(state.Name)], [Version(state.Id, 1), json, TtlMilliseconds(state)]),
            cancellationToken).ConfigureAwait(false);
        return (int)added == 1;
    }

    public async ValueTask<Transition?> UpdateAsync(string name, long id, Func<ChannelState, Transition> transition, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transition);
        for (var attempt = 1; attempt <= MaxAttempts; attempt++)
        {
            if (await ReadAsync(name, cancellationToken).ConfigureAwait(false) is not { } current || current.State.Id != id)
            {
                return null;
            }

            var result = transition(current.State);
            if (result.Refused || ReferenceEquals(result.State, current.State))
            {
                return result;
            }

            var next = result.State;
            var rose = next.Rev != current.State.Rev;
            var json = StoredChannel.Serialize(next, current.Owner);
            var written = await _redis.RunAsync(
                db => db.ScriptEvaluateAsync(
                    SetScript,
                    [KeyOf(name)],
                    [current.Version, Version(id, current.Serial + 1), json, TtlMilliseconds(next), rose ? _changes.ToString() : string.Empty, name]),
                cancellationToken).ConfigureAwait(false);
            if ((int)written == 1)
            {
                TrackPiped(next);
                if (rose)
                {
                    // This node's own waiters need no round trip through Redis.
                    Wake(name);
                }

                return result;
            }
        }

        RedisLog.ConflictsExhausted(_logger, name, MaxAttempts);
        throw new ChannelStoreUnavailableException("Too many concurrent changes of one channel.");
    }

    public async ValueTask<ChannelState?> WaitAsync(string name, long id, long since, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        await SubscribeAsync(cancellationToken).ConfigureAwait(false);
        var started = timeProvider.GetTimestamp();
        var signal = Enter(name);
        try
        {
            ChannelState? state = null;
            while (true)
            {
                // Take the wake-up before reading: a change after the read then still wakes this wait.
                var changed = signal.Next;
                state = await GetAsync(name, cancellationToken).ConfigureAwait(false);
                if (state is null || state.Id != id)
                {
                    return null;
                }

                var left = timeout - timeProvider.GetElapsedTime(started);
                if (state.Rev > since || state.Closed || left <= TimeSpan.Zero)
                {
                    return state;
                }

                using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var pause = Task.Delay(left < Resync ? left : Resync, timeProvider, stop.Token);
                await Task.WhenAny(changed, pause).ConfigureAwait(false);
                await stop.CancelAsync().ConfigureAwait(false);
                if (cancellationToken.IsCancellationRequested)
                {
                    return state;
                }
            }
        }
        finally
        {
            Leave(name, signal);
        }
    }

    public async ValueTask<bool> RemoveAsync(string name, long id, CancellationToken cancellationToken = default)
    {
        _piped.TryRemove(new KeyValuePair<string, long>(name, id));
        var removed = await _redis.RunAsync(
            db => db.ScriptEvaluateAsync(RemoveScript, [KeyOf(name)], [IdPrefix(id), _changes.ToString(), name]),
            cancellationToken).ConfigureAwait(false);
        if ((int)removed == 1)
        {
            Wake(name);
            return true;
        }

        return false;
    }

    /// <summary>Every channel of every node: a SCAN of each primary over the channel keys.</summary>
    public async IAsyncEnumerable<ChannelState> AllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var multiplexer = await _redis.GetAsync(cancellationToken).ConfigureAwait(false);
        var pattern = _options.KeyPrefix + "ch:{*}";
        foreach (var server in multiplexer.GetServers().Where(static s => !s.IsReplica && s.IsConnected))
        {
            var keys = new List<string>();
            try
            {
                await foreach (var key in server.KeysAsync(pattern: pattern, pageSize: 256).WithCancellation(cancellationToken).ConfigureAwait(false))
                {
                    keys.Add(key.ToString());
                }
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                throw new ChannelStoreUnavailableException($"Redis did not answer ({e.GetType().Name}).", e);
            }

            var prefix = _options.KeyPrefix + "ch:{";
            foreach (var key in keys)
            {
                if (key.StartsWith(prefix, StringComparison.Ordinal) && key.EndsWith('}')
                    && await GetAsync(key[prefix.Length..^1], cancellationToken).ConfigureAwait(false) is { } state)
                {
                    yield return state;
                }
            }
        }
    }

    /// <summary>The owner node of channel <paramref name="name"/>, or <see langword="null"/> when no such channel is stored.</summary>
    internal async ValueTask<string?> OwnerAsync(string name, CancellationToken cancellationToken)
        => (await ReadAsync(name, cancellationToken).ConfigureAwait(false))?.Owner;

    /// <summary>
    /// Makes this node the owner of channel <paramref name="name"/> if its owner is still <paramref name="formerOwner"/>
    /// (one compare-and-set on the version: of several nodes taking it at once, exactly one wins). Returns
    /// <see langword="true"/> when this node took it, <see langword="false"/> when the channel changed meanwhile (read
    /// its owner again), <see langword="null"/> when it is not stored.
    /// </summary>
    internal async ValueTask<bool?> TakeOverAsync(string name, string formerOwner, CancellationToken cancellationToken)
    {
        if (await ReadAsync(name, cancellationToken).ConfigureAwait(false) is not { } current)
        {
            return null;
        }

        if (!string.Equals(current.Owner, formerOwner, StringComparison.Ordinal))
        {
            return false;
        }

        var json = StoredChannel.Serialize(current.State, _options.NodeId);
        var written = await _redis.RunAsync(
            db => db.ScriptEvaluateAsync(TakeOverScript, [KeyOf(name)], [current.Version, Version(current.State.Id, current.Serial + 1), json]),
            cancellationToken).ConfigureAwait(false);
        return (int)written == 1;
    }

    public async ValueTask ProbeAsync(CancellationToken cancellationToken = default)
        => await _redis.RunAsync(static db => db.PingAsync(), cancellationToken).ConfigureAwait(false);

    public async ValueTask DisposeAsync()
    {
        await _refresh.DisposeAsync().ConfigureAwait(false);
        await Volatile.Read(ref _refreshing).ConfigureAwait(false);
        _subscribing.Dispose();
    }

    /// <summary>The version token of write <paramref name="serial"/> of channel <paramref name="id"/>: unique across incarnations of a name.</summary>
    private static string Version(long id, long serial) => FormattableString.Invariant($"{id}:{serial}");

    private static string IdPrefix(long id) => FormattableString.Invariant($"{id}:");

    /// <summary>The backstop: the channel's latest possible end (its lifetime, or its closed retention) plus the margin.</summary>
    private long TtlMilliseconds(ChannelState state)
    {
        var left = state.Closed
            ? _relay.ClosedRetention
            : ChannelMachine.Lifetime(state, _relay) - (_time.GetUtcNow() - state.Created);
        var ttl = (left > TimeSpan.Zero ? left : TimeSpan.Zero) + _options.KeyTtlMargin;
        return (long)Math.Ceiling(ttl.TotalMilliseconds);
    }

    private async ValueTask<Stored?> ReadAsync(string name, CancellationToken cancellationToken)
    {
        var values = await _redis.RunAsync(db => db.HashGetAsync(KeyOf(name), Fields), cancellationToken).ConfigureAwait(false);
        if (values is not [{ HasValue: true } version, { HasValue: true } json])
        {
            return null;
        }

        var (state, owner) = StoredChannel.Deserialize(json.ToString());
        var text = version.ToString();
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        var serial = long.Parse(text.AsSpan(colon + 1), System.Globalization.CultureInfo.InvariantCulture);
        return new Stored(state, owner, text, serial);
    }

    /// <summary>A stapled, open channel whose state this node wrote is piped here: keep its key alive while it is.</summary>
    private void TrackPiped(ChannelState state)
    {
        if (state.Stapled && !state.Closed)
        {
            _piped[state.Name] = state.Id;
        }
        else if (state.Closed)
        {
            _piped.TryRemove(new KeyValuePair<string, long>(state.Name, state.Id));
        }
    }

    /// <summary>One refresh round at a time; the round is kept so disposal waits for it (never fire-and-forget).</summary>
    private void StartRefresh()
    {
        lock (_refreshGate)
        {
            if (_refreshing.IsCompleted)
            {
                _refreshing = RefreshPipedAsync();
            }
        }
    }

    private async Task RefreshPipedAsync()
    {
        var ttl = (long)Math.Ceiling((_options.KeyTtlMargin + _options.KeyTtlMargin).TotalMilliseconds);
        foreach (var (name, id) in _piped)
        {
            try
            {
                var alive = await _redis.RunAsync(db => db.ScriptEvaluateAsync(TouchScript, [KeyOf(name)], [IdPrefix(id), ttl]), CancellationToken.None).ConfigureAwait(false);
                if ((int)alive == 0)
                {
                    _piped.TryRemove(new KeyValuePair<string, long>(name, id));
                }
            }
#pragma warning disable CA1031 // A timer's round: any failure is logged and the next round tries again.
            catch (Exception e)
#pragma warning restore CA1031
            {
                var failure = (e.InnerException ?? e).GetType().Name;
                RedisLog.RefreshFailed(_logger, _options.NodeId, failure);
                return;
            }
        }
    }

    private async ValueTask SubscribeAsync(CancellationToken cancellationToken)
    {
        if (_subscribed)
        {
            return;
        }

        await _subscribing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_subscribed)
            {
                return;
            }

            var multiplexer = await _redis.GetAsync(cancellationToken).ConfigureAwait(false);
            await multiplexer.GetSubscriber().SubscribeAsync(_changes, (_, message) => Wake(message.ToString())).WaitAsync(cancellationToken).ConfigureAwait(false);
            _subscribed = true;
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // Not fatal: the wait re-reads the store every Resync; the next wait tries again.
            var failure = e.GetType().Name;
            RedisLog.SubscribeFailed(_logger, _options.NodeId, failure);
        }
        finally
        {
            _subscribing.Release();
        }
    }

    private Signal Enter(string name)
    {
        while (true)
        {
            var signal = _signals.GetOrAdd(name, static _ => new Signal());
            lock (signal.Gate)
            {
                if (!signal.Retired)
                {
                    signal.Waiters++;
                    return signal;
                }
            }
        }
    }

    private void Leave(string name, Signal signal)
    {
        lock (signal.Gate)
        {
            if (--signal.Waiters > 0)
            {
                return;
            }

            signal.Retired = true;
        }

        _signals.TryRemove(new KeyValuePair<string, Signal>(name, signal));
    }

    private void Wake(string name)
    {
        if (_signals.TryGetValue(name, out var signal))
        {
            signal.Fire();
        }
    }

    private sealed record Stored(ChannelState State, string Owner, string Version, long Serial);

    /// <summary>The waiters of one channel name on this node; <see cref="Next"/> completes on the next change.</summary>
    private sealed class Signal
    {
        private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Lock Gate { get; } = new();

        public int Waiters { get; set; }

        public bool Retired { get; set; }

        public Task Next
        {
            get
            {
                lock (Gate)
                {
                    return _next.Task;
                }
            }
        }

        public void Fire()
        {
            TaskCompletionSource fired;
            lock (Gate)
            {
                fired = _next;
                _next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            fired.TrySetResult();
        }
    }
}

using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Net;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace CrocNet.Relay.Redis;

/// <summary>
/// The relay's limits in Redis, so they hold across every node. Channel slots are sorted sets of channel ids scored by
/// the time each channel is forgotten at the latest (relay-wide, and per creator address): a slot a node never gave
/// back (it died) stops counting then. The rate limits are token buckets (a hash of tokens and stamp per address key,
/// expiring once refilled). Every change is one Lua script, atomic across nodes; all keys share the hash tag
/// <c>{l}</c>, so a script's keys are on one cluster slot.
/// </summary>
internal sealed class RedisRelayLimits : IRelayLimits
{
    private const string AcquireScript = """
        local now = tonumber(ARGV[1])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
        local total = redis.call('ZCARD', KEYS[1])
        local mine = redis.call('ZCARD', KEYS[2])
        if mine >= tonumber(ARGV[2]) then return {-1, total, mine} end
        if total >= tonumber(ARGV[3]) then return {-2, total, mine} end
        local forget = tonumber(ARGV[5])
        redis.call('ZADD', KEYS[1], forget, ARGV[4])
        redis.call('ZADD', KEYS[2], forget, ARGV[4])
        for i = 1, 2 do
            if redis.call('PTTL', KEYS[i]) < forget - now then redis.call('PEXPIREAT', KEYS[i], forget) end
        end
        return {1, total + 1, mine + 1}
        """;

    private const string ReleaseScript = """
        redis.call('ZREM', KEYS[1], ARGV[1])
        redis.call('ZREM', KEYS[2], ARGV[1])
        return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])}
        """;

    // ARGV: capacity, tokens per millisecond, now (ms), operation (has, try, take, refund).
    private const string BucketScript = """
        local capacity = tonumber(ARGV[1])
        local rate = tonumber(ARGV[2])
        local now = tonumber(ARGV[3])
        local op = ARGV[4]
        local tokens = capacity
        local stored = redis.call('HMGET', KEYS[1], 't', 's')
        if stored[1] then
            tokens = math.min(capacity, tonumber(stored[1]) + math.max(0, now - tonumber(stored[2])) * rate)
        end
        if op == 'has' then return tokens >= 1 and 1 or 0 end
        local ok = 1
        if op == 'try' then
            if tokens < 1 then return 0 end
            tokens = tokens - 1
        elseif op == 'take' then
            tokens = math.max(0, tokens - 1)
        else
            tokens = math.min(capacity, tokens + 1)
        end
        if tokens >= capacity then
            redis.call('DEL', KEYS[1])
        else
            redis.call('HSET', KEYS[1], 't', tostring(tokens), 's', tostring(now))
            redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate) + 1000)
        end
        return ok
        """;

    private readonly RedisConnection _redis;
    private readonly CrocRelayOptions _relay;
    private readonly TimeProvider _time;
    private readonly string _prefix;
    private readonly ConcurrentDictionary<IPAddress, int> _seenByAddress = new();
    private int _seenCount;

    public RedisRelayLimits(RedisConnection redis, IOptions<CrocRelayOptions> relay, RelayClock clock)
    {
        ArgumentNullException.ThrowIfNull(redis);
        ArgumentNullException.ThrowIfNull(relay);
        ArgumentNullException.ThrowIfNull(clock);
        _redis = redis;
        _relay = relay.Value;
        _time = clock.TimeProvider;
        _prefix = redis.Options.KeyPrefix + "lim:{l}:";
    }

    public int Count => Volatile.Read(ref _seenCount);

    public int ChannelsOf(IPAddress key) => _seenByAddress.GetValueOrDefault(key);

    /// <summary>The relay-wide slot set.</summary>
    internal RedisKey ChannelsKey => _prefix + "channels";

    internal RedisKey AddressKey(IPAddress key) => _prefix + "addr:" + key;

    internal RedisKey BucketKey(RateLimit limit, IPAddress key) => _prefix + (limit == RateLimit.Joins ? "joins:" : "failures:") + key;

    public async ValueTask<ChannelSlot> TryAcquireChannelAsync(IPAddress key, long id, DateTimeOffset forgetBy, CancellationToken cancellationToken = default)
    {
        var result = (RedisResult[])(await _redis.RunAsync(
            db => db.ScriptEvaluateAsync(
                AcquireScript,
                [ChannelsKey, AddressKey(key)],
                [Now(), _relay.MaxChannelsPerAddress, _relay.MaxChannels, id, forgetBy.ToUnixTimeMilliseconds()]),
            cancellationToken).ConfigureAwait(false))!;
        Seen(key, (int)result[1], (int)result[2]);
        return (int)result[0] switch
        {
            1 => ChannelSlot.Acquired,
            -1 => ChannelSlot.AddressFull,
            _ => ChannelSlot.RelayFull,
        };
    }

    public async ValueTask ReleaseChannelAsync(IPAddress key, long id, CancellationToken cancellationToken = default)
    {
        var result = (RedisResult[])(await _redis.RunAsync(
            db => db.ScriptEvaluateAsync(ReleaseScript, [ChannelsKey, AddressKey(key)], [id]),
            cancellationToken).ConfigureAwait(false))!;
        Seen(key, (int)result[0], (int)result[1]);
    }

    public async ValueTask<bool> HasTokenAsync(RateLimit limit, IPAddress key, CancellationToken cancellationToken = default)
        => await BucketAsync(limit, key, "has", cancellationToken).ConfigureAwait(false);

    public async ValueTask<bool> TryTakeAsync(RateLimit limit, IPAddress key, CancellationToken cancellationToken = default)
        => await BucketAsync(limit, key, "try", cancellationToken).ConfigureAwait(false);

    public async ValueTask TakeAsync(RateLimit limit, IPAddress key, CancellationToken cancellationToken = default)
        => await BucketAsync(limit, key, "take", cancellationToken).ConfigureAwait(false);

    public async ValueTask RefundAsync(RateLimit limit, IPAddress key, CancellationToken cancellationToken = default)
        => await BucketAsync(limit, key, "refund", cancellationToken).ConfigureAwait(false);

    private async ValueTask<bool> BucketAsync(RateLimit limit, IPAddress key, string operation, CancellationToken cancellationToken)
    {
        var perMinute = limit == RateLimit.Joins ? _relay.MaxJoinsPerMinute : _relay.MaxFailedLookupsPerMinute;
        var perMillisecond = (perMinute / 60_000.0).ToString("R", CultureInfo.InvariantCulture);
        var result = await _redis.RunAsync(
            db => db.ScriptEvaluateAsync(BucketScript, [BucketKey(limit, key)], [perMinute, perMillisecond, Now(), operation]),
            cancellationToken).ConfigureAwait(false);
        return (int)result == 1;
    }

    private long Now() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private void Seen(IPAddress key, int total, int mine)
    {
        Volatile.Write(ref _seenCount, total);
        if (mine > 0)
        {
            _seenByAddress[key] = mine;
        }
        else
        {
            _seenByAddress.TryRemove(key, out _);
        }
    }
}

using System.Net;

namespace CrocNet.Relay.Net;

/// <summary>The per-address rate limits (token buckets refilled over a minute).</summary>
internal enum RateLimit
{
    /// <summary>Channel joins (<c>MaxJoinsPerMinute</c>).</summary>
    Joins,

    /// <summary>Failed lookups and wrong passwords (<c>MaxFailedLookupsPerMinute</c>).</summary>
    FailedLookups,
}

/// <summary>Whether a new channel may be stored.</summary>
internal enum ChannelSlot
{
    Acquired,

    /// <summary>The creator's address holds <c>MaxChannelsPerAddress</c>.</summary>
    AddressFull,

    /// <summary>The relay holds <c>MaxChannels</c>.</summary>
    RelayFull,
}

/// <summary>
/// The relay's global limits: channel counts (relay-wide and per creator address) and the per-address rate limits. In
/// memory by default (one node); a shared implementation (Redis) makes them hold across every node. Channel slots are
/// named by the channel's id, so a shared implementation can forget slots of a node that died.
/// </summary>
internal interface IRelayLimits
{
    /// <summary>How many channels are stored: exact in memory; for a shared implementation the count this node last saw.</summary>
    int Count { get; }

    /// <summary>How many stored channels <paramref name="key"/> created (as <see cref="Count"/>, for this node's view).</summary>
    int ChannelsOf(IPAddress key);

    /// <summary>
    /// Takes a slot for channel <paramref name="id"/> created by <paramref name="key"/>, unless the address or the relay
    /// is full. <paramref name="forgetBy"/> is when the channel is forgotten at the latest (a shared implementation
    /// stops counting the slot then even when no node releases it).
    /// </summary>
    ValueTask<ChannelSlot> TryAcquireChannelAsync(IPAddress key, long id, DateTimeOffset forgetBy, CancellationToken cancellationToken = default);

    /// <summary>Gives back the slot of channel <paramref name="id"/> (it was forgotten, or never stored).</summary>
    ValueTask ReleaseChannelAsync(IPAddress key, long id, CancellationToken cancellationToken = default);

    /// <summary>Whether <paramref name="key"/> has a whole token of <paramref name="limit"/> left (nothing is taken).</summary>
    ValueTask<bool> HasTokenAsync(RateLimit limit, IPAddress key, CancellationToken cancellationToken = default);

    /// <summary>Takes a token when one is left.</summary>
    ValueTask<bool> TryTakeAsync(RateLimit limit, IPAddress key, CancellationToken cancellationToken = default);

    /// <summary>Takes a token, or what is left of one (a failure counts even when the bucket is empty).</summary>
    ValueTask TakeAsync(RateLimit limit, IPAddress key, CancellationToken cancellationToken = default);

    /// <summary>Gives back a token taken for something that did not happen.</summary>
    ValueTask RefundAsync(RateLimit limit, IPAddress key, CancellationToken cancellationToken = default);
}

/// <summary>The default limits: counters and token buckets in this process. Every call completes synchronously.</summary>
internal sealed class InMemoryRelayLimits : IRelayLimits
{
    private readonly CrocRelayOptions _options;
    private readonly AddressCounter _channels = new();
    private readonly AddressRateLimit _joins;
    private readonly AddressRateLimit _failures;

    public InMemoryRelayLimits(CrocRelayOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _joins = new AddressRateLimit(options.MaxJoinsPerMinute, time);
        _failures = new AddressRateLimit(options.MaxFailedLookupsPerMinute, time);
    }

    public int Count => _channels.Total;

    public int ChannelsOf(IPAddress key) => _channels.Of(key);

    public ValueTask<ChannelSlot> TryAcquireChannelAsync(IPAddress key, long id, DateTimeOffset forgetBy, CancellationToken cancellationToken = default)
    {
        if (_channels.TryAcquire(key, _options.MaxChannelsPerAddress, _options.MaxChannels))
        {
            return ValueTask.FromResult(ChannelSlot.Acquired);
        }

        return ValueTask.FromResult(_channels.Of(key) >= _options.MaxChannelsPerAddress ? ChannelSlot.AddressFull : ChannelSlot.RelayFull);
    }

    public ValueTask ReleaseChannelAsync(IPAddress key, long id, CancellationToken cancellationToken = default)
    {
        _channels.Release(key);
        return ValueTask.CompletedTask;
    }

    public ValueTask<bool> HasTokenAsync(RateLimit limit, IPAddress key, CancellationToken cancellationToken = default)
        => ValueTask.FromResult(Bucket(limit).HasToken(key));

    public ValueTask<bool> TryTakeAsync(RateLimit limit, IPAddress key, CancellationToken cancellationToken = default)
        => ValueTask.FromResult(Bucket(limit).TryTake(key));

    public ValueTask TakeAsync(RateLimit limit, IPAddress key, CancellationToken cancellationToken = default)
    {
        Bucket(limit).Take(key);
        return ValueTask.CompletedTask;
    }

    public ValueTask RefundAsync(RateLimit limit, IPAddress key, CancellationToken cancellationToken = default)
    {
        Bucket(limit).Refund(key);
        return ValueTask.CompletedTask;
    }

    private AddressRateLimit Bucket(RateLimit limit) => limit == RateLimit.Joins ? _joins : _failures;
}

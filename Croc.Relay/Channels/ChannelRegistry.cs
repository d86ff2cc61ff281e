using System.Collections.Concurrent;
using System.Net;
using CrocNet.Relay.Diagnostics;
using CrocNet.Relay.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CrocNet.Relay.Channels;

/// <summary>
/// All channels of one relay: creation, lookup, capacity and forgetting. Thread-safe; knows nothing of HTTP or
/// sockets, so it is tested directly with a fake clock.
/// </summary>
internal sealed class ChannelRegistry : IDisposable
{
    private readonly ConcurrentDictionary<string, Channel> _channels = new(StringComparer.Ordinal);
    private readonly AddressCounter _channelsByAddress = new();
    private readonly AddressCounter _waiting = new();
    private readonly AddressRateLimit _joins;
    private readonly AddressRateLimit _failures;
    private int _channelCount;
    // Read-only: CrocRelayListeners hands this list to host apps, and the relay's checks rely on it.
    private volatile System.Collections.ObjectModel.ReadOnlyCollection<int> _ports = System.Collections.ObjectModel.ReadOnlyCollection<int>.Empty;
    private bool _disposed;

    public ChannelRegistry(IOptions<CrocRelayOptions> options, RelayClock clock, RelayMetrics metrics, ILogger<ChannelRegistry>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(clock);
        Options = options.Value;
        TimeProvider = clock.TimeProvider;
        Metrics = metrics;
        Log = new RelayLog(logger ?? (ILogger)NullLogger.Instance);
        _joins = new AddressRateLimit(Options.MaxJoinsPerMinute, TimeProvider);
        _failures = new AddressRateLimit(Options.MaxFailedLookupsPerMinute, TimeProvider);
    }

    public CrocRelayOptions Options { get; }

    public TimeProvider TimeProvider { get; }

    internal RelayMetrics Metrics { get; }

    internal RelayLog Log { get; }

    /// <summary>The TCP ports actually bound, in the configured order; empty until the listeners start.</summary>
    public IReadOnlyList<int> Ports => _ports;

    /// <summary>How many channels are stored, closed ones still remembered included.</summary>
    public int Count => Volatile.Read(ref _channelCount);

    /// <summary>How many accepted TCP connections are waiting for their peer.</summary>
    public int WaitingConnections => _waiting.Total;

    internal void SetPorts(IReadOnlyList<int> ports) => _ports = Array.AsReadOnly(ports.ToArray());

    public Channel? Find(string name) => _channels.GetValueOrDefault(name);

    /// <summary>The key the per-address limits count <paramref name="address"/> under.</summary>
    public IPAddress LimitKey(IPAddress address) => RelayAddress.LimitKey(address, Options.IPv6PrefixLength);

    public Outcome<JoinResult> Join(JoinCommand command, IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(command);
        var key = LimitKey(address);
        if (command.Role == ParticipantRole.Recipient)
        {
            if (command.Channel is null)
            {
                return RelayErrors.BadRequest("A recipient must name the channel to join.");
            }

            // Past its budget of failed lookups, an address is told "no channel" without a look: it cannot enumerate.
            if (!_failures.HasToken(key) || Find(command.Channel) is not { } existing)
            {
                _failures.Take(key);
                return RelayErrors.NoChannel;
            }

            if (!_joins.TryTake(key))
            {
                return RelayErrors.JoinRate;
            }

            var joined = existing.JoinRecipient(address);
            if (!joined.IsSuccess)
            {
                _joins.Refund(key);
                _failures.Take(key);
            }

            return joined;
        }

        if (command.Channel is { } wanted)
        {
            if (!_failures.HasToken(key))
            {
                _failures.Take(key);
                return RelayErrors.Occupied;
            }

            if (Find(wanted) is { } taken)
            {
                _failures.Take(key);
                return taken.RefuseSenderJoin(address);
            }
        }

        if (!_joins.TryTake(key))
        {
            return RelayErrors.JoinRate;
        }

        if (!_channelsByAddress.TryAcquire(key, Options.MaxChannelsPerAddress))
        {
            _joins.Refund(key);
            return new RelayError(RelayErrorCode.Capacity, "This address has too many channels (closed ones count until forgotten); finish one and try again later.");
        }

        if (!TryReserveChannel())
        {
            _joins.Refund(key);
            _channelsByAddress.Release(key);
            return RelayErrors.Capacity;
        }

        var uuid = ChannelNames.NewUuid();
        var curve = command.Curve ?? ChannelNames.DefaultCurve;
        for (var attempt = 0; ; attempt++)
        {
            var name = command.Channel ?? ChannelNames.NewChannelName();
            var channel = new Channel(this, name, curve, uuid, address, key);
            if (_channels.TryAdd(name, channel))
            {
                channel.StartTimer(TimeProvider);
                Metrics.ChannelOpened();
                Log.ChannelOpened(name);
                return new JoinResult(channel.Snapshot(), uuid, ParticipantRole.Sender);
            }

            // Lost a race for a requested name, or (astronomically rarely) generated a taken one.
            if (command.Channel is not null || attempt >= 8)
            {
                Interlocked.Decrement(ref _channelCount);
                _channelsByAddress.Release(key);
                _joins.Refund(key);
                return command.Channel is not null && Find(command.Channel) is { } raced
                    ? raced.RefuseSenderJoin(address)
                    : RelayErrors.Occupied;
            }
        }
    }

    /// <summary>
    /// Runs a <c>POST /channel</c> command. An unknown channel and a uuid that is not a participant's get the same
    /// answer (<c>bad_uuid</c>), before any other check, so a caller without a valid uuid learns nothing about the
    /// channel; such failures are rate-limited per address. <paramref name="channel"/> is the instance acted on (a name
    /// can be forgotten and taken again, so a long-poll must wait on this one).
    /// </summary>
    public Outcome<ChannelSnapshot> Execute(ChannelCommand command, IPAddress address, out Channel? channel)
    {
        ArgumentNullException.ThrowIfNull(command);
        var key = LimitKey(address);
        channel = _failures.HasToken(key) ? Find(command.Channel) : null;
        var outcome = channel is null ? RelayErrors.BadUuid : channel.Execute(command, address);
        if (outcome.Error.Code == RelayErrorCode.BadUuid && !outcome.IsSuccess)
        {
            _failures.Take(key);
        }

        return outcome;
    }

    /// <summary>Attaches a TCP connection after its hello; unknown channel and bad uuid answer alike, as for <see cref="Execute"/>.</summary>
    public Outcome<StapleAttachment> Attach(string channelName, string uuid, IPAddress address, int port, IStapleLink link)
    {
        var key = LimitKey(address);
        var channel = _failures.HasToken(key) ? Find(channelName) : null;
        var outcome = channel is null ? RelayErrors.BadUuid : channel.Attach(uuid, address, key, port, link);
        if (outcome.Error.Code == RelayErrorCode.BadUuid && !outcome.IsSuccess)
        {
            _failures.Take(key);
        }

        return outcome;
    }

    /// <summary>Closes every channel and cuts every connection (the relay is stopping).</summary>
    public void CloseAll()
    {
        foreach (var channel in _channels.Values)
        {
            channel.Shutdown();
        }
    }

    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            CloseAll();
        }
    }

    internal bool TryReserveWaiting(IPAddress key) => _waiting.TryAcquire(key, Options.MaxWaitingConnectionsPerAddress, Options.MaxWaitingConnections);

    internal void ReleaseWaiting(IPAddress key) => _waiting.Release(key);

    /// <summary>Forgets a closed channel after its retention: only now does it stop counting against its creator.</summary>
    internal void Forget(Channel channel)
    {
        if (_channels.TryRemove(new KeyValuePair<string, Channel>(channel.Name, channel)))
        {
            Interlocked.Decrement(ref _channelCount);
            _channelsByAddress.Release(channel.CreatorKey);
            Log.ChannelForgotten(channel.Name);
        }
    }

    /// <summary>How many stored channels (open, or closed and not yet forgotten) <paramref name="address"/> has created.</summary>
    internal int ChannelsOf(IPAddress address) => _channelsByAddress.Of(LimitKey(address));

    /// <summary>How many connections waiting for their peer come from <paramref name="address"/>'s key.</summary>
    internal int WaitingOf(IPAddress address) => _waiting.Of(LimitKey(address));

    private bool TryReserveChannel() => TryIncrementBelow(ref _channelCount, Options.MaxChannels);

    private static bool TryIncrementBelow(ref int counter, int limit)
    {
        var current = Volatile.Read(ref counter);
        while (current < limit)
        {
            var seen = Interlocked.CompareExchange(ref counter, current + 1, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }

        return false;
    }
}

/// <summary>The clock the relay runs on (expiry, hello and long-poll timeouts): the host's <see cref="TimeProvider"/> if registered.</summary>
internal sealed record RelayClock(TimeProvider TimeProvider);

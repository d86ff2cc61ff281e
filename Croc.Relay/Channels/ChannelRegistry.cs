using System.Collections.Concurrent;
using System.Net;
using CrocNet.Relay.Diagnostics;
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
    private readonly Dictionary<IPAddress, int> _openByAddress = [];
    private readonly Lock _addressLock = new();
    private int _channelCount;
    private int _waiting;
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
    public int WaitingConnections => Volatile.Read(ref _waiting);

    internal void SetPorts(IReadOnlyList<int> ports) => _ports = Array.AsReadOnly(ports.ToArray());

    public Channel? Find(string name) => _channels.GetValueOrDefault(name);

    public Outcome<JoinResult> Join(JoinCommand command, IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (command.Role == ParticipantRole.Recipient)
        {
            if (command.Channel is null)
            {
                return RelayErrors.BadRequest("A recipient must name the channel to join.");
            }

            return Find(command.Channel) is { } existing ? existing.JoinRecipient(address) : RelayErrors.NoChannel;
        }

        if (command.Channel is { } wanted && Find(wanted) is { } taken)
        {
            return taken.RefuseSenderJoin(address);
        }

        if (!TryReserveAddress(address))
        {
            return new RelayError(RelayErrorCode.Capacity, "This address has too many open channels; close or finish one first.");
        }

        if (!TryReserveChannel())
        {
            ReleaseAddress(address);
            return RelayErrors.Capacity;
        }

        var uuid = ChannelNames.NewUuid();
        var curve = command.Curve ?? ChannelNames.DefaultCurve;
        for (var attempt = 0; ; attempt++)
        {
            var name = command.Channel ?? ChannelNames.NewChannelName();
            var channel = new Channel(this, name, curve, uuid, address);
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
                ReleaseAddress(address);
                return command.Channel is not null && Find(command.Channel) is { } raced
                    ? raced.RefuseSenderJoin(address)
                    : new RelayError(RelayErrorCode.Occupied, "This channel already has a sender; choose another channel name.");
            }
        }
    }

    public Outcome<ChannelSnapshot> Execute(ChannelCommand command, IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(command);
        return Find(command.Channel) is { } channel ? channel.Execute(command, address) : RelayErrors.NoChannel;
    }

    public Outcome<StapleAttachment> Attach(string channelName, string uuid, IPAddress address, int port, IStapleLink link)
        => Find(channelName) is { } channel ? channel.Attach(uuid, address, port, link) : RelayErrors.NoChannel;

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

    internal bool TryReserveWaiting() => TryIncrementBelow(ref _waiting, Options.MaxWaitingConnections);

    internal void ReleaseWaiting() => Interlocked.Decrement(ref _waiting);

    internal void Forget(Channel channel)
    {
        if (_channels.TryRemove(new KeyValuePair<string, Channel>(channel.Name, channel)))
        {
            Interlocked.Decrement(ref _channelCount);
            Log.ChannelForgotten(channel.Name);
        }
    }

    /// <summary>How many open channels <paramref name="address"/> has created (for tests and diagnostics).</summary>
    internal int OpenChannelsOf(IPAddress address)
    {
        lock (_addressLock)
        {
            return _openByAddress.GetValueOrDefault(address);
        }
    }

    /// <summary>Called once per channel when it closes (or expires): its creator may open another.</summary>
    internal void ReleaseAddress(IPAddress address)
    {
        lock (_addressLock)
        {
            if (_openByAddress.TryGetValue(address, out var count))
            {
                if (count <= 1)
                {
                    _openByAddress.Remove(address);
                }
                else
                {
                    _openByAddress[address] = count - 1;
                }
            }
        }
    }

    private bool TryReserveAddress(IPAddress address)
    {
        lock (_addressLock)
        {
            var count = _openByAddress.GetValueOrDefault(address);
            if (count >= Options.MaxChannelsPerAddress)
            {
                return false;
            }

            _openByAddress[address] = count + 1;
            return true;
        }
    }

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

using System.Net;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace CrocNet.Relay.Channels;

/// <summary>
/// One channel's state machine. Every transition happens under one lock and bumps <c>rev</c>; a refused request
/// changes nothing (not even the recorded IP addresses). Waiters are woken through a completion source that is
/// swapped on each change, so long-polls cost nothing while idle.
/// </summary>
internal sealed class Channel
{
    private const int MaxAddresses = 2;

    private readonly Lock _lock = new();
    private readonly ChannelRegistry _registry;
    private readonly List<IPAddress> _addresses = new(MaxAddresses);
    private readonly Dictionary<int, PortSlot> _slots = [];
    private TaskCompletionSource _changed = NewSignal();
    private ITimer? _timer;
    private TimeProvider _timeProvider = TimeProvider.System;
    private long _created;

    private string _curve;
    private long _rev = 1;
    private string? _recipientUuid;
    private string? _x;
    private string? _y;
    private string? _hhK;
    private string? _hK;
    private bool _stapled;
    private bool _expiryDeferred;
    private bool _closed;
    private bool _tcpEnded;

    public Channel(ChannelRegistry registry, string name, string curve, string senderUuid, IPAddress creator, IPAddress creatorKey)
    {
        CreatorKey = creatorKey;
        _registry = registry;
        Name = name;
        _curve = curve;
        SenderUuid = senderUuid;
        _addresses.Add(creator);
    }

    /// <summary>The per-address key of the address that created the channel; its count is released when the channel is forgotten.</summary>
    internal IPAddress CreatorKey { get; }

    public string Name { get; }

    private string SenderUuid { get; }

    /// <summary>Whether the channel is closed or expired (kept only so requests get <c>410 closed</c>).</summary>
    public bool IsClosed
    {
        get
        {
            lock (_lock)
            {
                return _closed;
            }
        }
    }

    /// <summary>Starts the expiry clock: <c>HandshakeExpiry</c> until <c>h_k</c> is set, then <c>ChannelExpiry</c>, both from now.</summary>
    internal void StartTimer(TimeProvider timeProvider)
    {
        lock (_lock)
        {
            _timeProvider = timeProvider;
            _created = timeProvider.GetTimestamp();
            _timer = timeProvider.CreateTimer(static state => ((Channel)state!).OnTimer(), this, ExpiryLocked(), Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>How long this channel may live in total, from creation, given how far its handshake got.</summary>
    private TimeSpan ExpiryLocked()
    {
        var options = _registry.Options;
        return _hK is null && options.HandshakeExpiry < options.ChannelExpiry ? options.HandshakeExpiry : options.ChannelExpiry;
    }

    public ChannelSnapshot Snapshot()
    {
        lock (_lock)
        {
            return SnapshotLocked();
        }
    }

    public Outcome<JoinResult> JoinRecipient(IPAddress address)
    {
        JoinResult result;
        lock (_lock)
        {
            if (Refuse(address) is { } refusal)
            {
                return refusal;
            }

            if (_recipientUuid is not null)
            {
                return new RelayError(RelayErrorCode.Occupied, "This channel already has a recipient.");
            }

            _recipientUuid = ChannelNames.NewUuid();
            Record(address);
            Bump();
            result = new JoinResult(SnapshotLocked(), _recipientUuid, ParticipantRole.Recipient);
        }

        _registry.Log.RecipientJoined(Name);
        return result;
    }

    /// <summary>Refusal of a sender join naming this existing channel (it always has a sender).</summary>
    public RelayError RefuseSenderJoin(IPAddress address)
    {
        lock (_lock)
        {
            return Refuse(address) ?? new RelayError(RelayErrorCode.Occupied, "This channel already has a sender; choose another channel name.");
        }
    }

    public Outcome<ChannelSnapshot> Execute(ChannelCommand command, IPAddress address)
    {
        List<IStapleLink>? cut = null;
        ChannelSnapshot state;
        lock (_lock)
        {
            // The uuid first: a caller without one learns nothing (not the IP rule, not whether it is closed).
            if (RoleOf(command.Uuid) is not { } role)
            {
                return RelayErrors.BadUuid;
            }

            // Closing twice is not a refusal: both participants close when they are done, and the second one's
            // close (after the first) is a normal end, not a failed request.
            if (_closed && command.Action == ChannelAction.Close && (_addresses.Contains(address) || _addresses.Count < MaxAddresses))
            {
                return SnapshotLocked();
            }

            if (Refuse(address) is { } refusal)
            {
                return refusal;
            }

            switch (command.Action)
            {
                case ChannelAction.Read:
                    break;

                case ChannelAction.SetX:
                    if (role != ParticipantRole.Sender)
                    {
                        return RelayErrors.BadRequest("Only the sender posts x.");
                    }

                    if (_x is not null)
                    {
                        return new RelayError(RelayErrorCode.AlreadySet, "x is already set; it can be posted once.");
                    }

                    _x = command.Value;
                    _curve = command.Curve ?? _curve;
                    break;

                case ChannelAction.SetY:
                    if (role != ParticipantRole.Recipient)
                    {
                        return RelayErrors.BadRequest("Only the recipient posts y and hh_k.");
                    }

                    if (_y is not null)
                    {
                        return new RelayError(RelayErrorCode.AlreadySet, "y is already set; it can be posted once.");
                    }

                    if (_x is null)
                    {
                        return new RelayError(RelayErrorCode.NotReady, "y can be posted only after the sender's x; wait for x.");
                    }

                    _y = command.Value;
                    _hhK = command.Confirmation;
                    break;

                case ChannelAction.SetHK:
                    if (role != ParticipantRole.Sender)
                    {
                        return RelayErrors.BadRequest("Only the sender posts h_k.");
                    }

                    if (_hK is not null)
                    {
                        return new RelayError(RelayErrorCode.AlreadySet, "h_k is already set; it can be posted once.");
                    }

                    if (_y is null)
                    {
                        return new RelayError(RelayErrorCode.NotReady, "h_k can be posted only after the recipient's y; wait for y.");
                    }

                    _hK = command.Value;

                    // Key confirmation is complete: the full ChannelExpiry (from creation) applies from now on.
                    var left = ExpiryLocked() - _timeProvider.GetElapsedTime(_created);
                    _timer?.Change(left > TimeSpan.Zero ? left : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
                    break;

                case ChannelAction.Close:
                    cut = CloseLocked();
                    break;

                default:
                    return RelayErrors.BadRequest("Unknown action.");
            }

            Record(address);
            if (command.Action != ChannelAction.Read && command.Action != ChannelAction.Close)
            {
                Bump();
            }

            state = SnapshotLocked();
        }

        if (cut is not null)
        {
            AfterClose(cut, "closed by a participant");
            _registry.Metrics.ChannelClosed();
        }

        return state;
    }

    /// <summary>
    /// Holds until <c>rev &gt; since</c>, the channel closes, <paramref name="timeout"/> passes on the relay's clock or
    /// <paramref name="cancellationToken"/> fires; then returns the current state. Never throws on timeout or cancel.
    /// </summary>
    public async ValueTask<ChannelSnapshot> WaitAsync(long since, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        Task changed;
        lock (_lock)
        {
            if (_rev > since || _closed)
            {
                return SnapshotLocked();
            }

            changed = _changed.Task;
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var expired = Task.Delay(timeout, timeProvider, stop.Token);
        try
        {
            while (true)
            {
                if (await Task.WhenAny(changed, expired).ConfigureAwait(false) == expired)
                {
                    return Snapshot();
                }

                lock (_lock)
                {
                    if (_rev > since || _closed)
                    {
                        return SnapshotLocked();
                    }

                    changed = _changed.Task;
                }
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Validates a TCP hello and attaches the connection: it waits, or it completes a pair to be piped.</summary>
    /// <remarks><paramref name="key"/> is <paramref name="address"/>'s per-address key, charged while the connection waits.</remarks>
    public Outcome<StapleAttachment> Attach(string uuid, IPAddress address, IPAddress key, int port, IStapleLink link)
    {
        ParticipantRole role;
        IStapleLink? peer;
        var nowStapled = false;
        lock (_lock)
        {
            if (RoleOf(uuid) is not { } r)
            {
                return RelayErrors.BadUuid;
            }

            if (Refuse(address) is { } refusal)
            {
                return refusal;
            }

            // Past its expiry, a channel only lets the transfer in flight finish: no new connections.
            if (_tcpEnded || _expiryDeferred)
            {
                return RelayErrors.Closed;
            }

            role = r;
            if (_hK is null)
            {
                return new RelayError(RelayErrorCode.NotReady, "Connect only after key confirmation (h_k is set).");
            }

            if (!_registry.Ports.Contains(port))
            {
                return RelayErrors.BadRequest("This port is not offered.");
            }

            ref var slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_slots, port, out _);
            if ((role == ParticipantRole.Sender ? slot.Sender : slot.Recipient) is not null)
            {
                return new RelayError(RelayErrorCode.Duplicate, "This participant is already connected on this port.");
            }

            peer = role == ParticipantRole.Sender ? slot.Recipient : slot.Sender;
            if (peer is null && !_registry.TryReserveWaiting(key))
            {
                return RelayErrors.Capacity;
            }

            if (role == ParticipantRole.Sender)
            {
                slot.Sender = link;
            }
            else
            {
                slot.Recipient = link;
            }

            Record(address);
            if (peer is null)
            {
                slot.WaitingKey = key;
            }
            else
            {
                _registry.ReleaseWaiting(slot.WaitingKey!);
                slot.WaitingKey = null;
                slot.Piped = true;
                if (!_stapled && _registry.Ports.All(p => _slots.TryGetValue(p, out var s) && s.Piped))
                {
                    _stapled = true;
                    nowStapled = true;
                    Bump();
                }
            }
        }

        if (peer is not null)
        {
            _registry.Metrics.ConnectionsStapled();
            _registry.Log.PairPiped(Name, port);
        }

        if (nowStapled)
        {
            _registry.Log.ChannelStapled(Name);
        }

        return new StapleAttachment(this, role, peer);
    }

    /// <summary>
    /// Takes a waiting (not yet piped) connection out of its slot because its client left or it waited too long: the
    /// slot and the relay-wide waiting reservation are freed, so the participant can connect again. Returns
    /// <see langword="false"/> (and changes nothing) when the connection is no longer waiting.
    /// </summary>
    public bool Detach(int port, IStapleLink link)
    {
        lock (_lock)
        {
            if (_tcpEnded || !_slots.TryGetValue(port, out var slot) || slot.Piped)
            {
                return false;
            }

            if (ReferenceEquals(slot.Sender, link))
            {
                slot.Sender = null;
            }
            else if (ReferenceEquals(slot.Recipient, link))
            {
                slot.Recipient = null;
            }
            else
            {
                return false;
            }

            _slots.Remove(port);
            _registry.ReleaseWaiting(slot.WaitingKey!);
            return true;
        }
    }

    /// <summary>
    /// Records that the pair on <paramref name="port"/> finished cleanly (both directions reached end of stream; the
    /// caller closed it). Other pairs may still be moving data, so nothing else is cut until the channel is stapled
    /// and every port's pair has finished; then the TCP session ends.
    /// </summary>
    public void PairFinished(int port)
    {
        List<IStapleLink> cut;
        string reason;
        lock (_lock)
        {
            if (_tcpEnded || !_slots.TryGetValue(port, out var slot))
            {
                return;
            }

            slot.Finished = true;
            _slots[port] = slot;
            var everyPairFinished = _stapled && _registry.Ports.All(p => _slots.TryGetValue(p, out var s) && s.Finished);

            // An expiry that waited for the transfer ends the session once nothing is piping, stapled or not.
            if (!everyPairFinished && !(_expiryDeferred && !PipingLocked()))
            {
                return;
            }

            reason = everyPairFinished ? "every pair finished" : "the last piped pair finished after the channel's expiry";
            _tcpEnded = true;
            cut = TakeLinksLocked();
        }

        _registry.Log.ConnectionsEnded(Name, reason);
        Abort(cut);
        ExpireIfDeferred();
    }

    /// <summary>Cuts every TCP connection of the channel; later hellos get <c>closed</c>. The channel itself stays open.</summary>
    public void EndConnections(string reason)
    {
        List<IStapleLink> cut;
        lock (_lock)
        {
            if (_tcpEnded)
            {
                return;
            }

            _tcpEnded = true;
            cut = TakeLinksLocked();
        }

        _registry.Log.ConnectionsEnded(Name, reason);
        Abort(cut);
        ExpireIfDeferred();
    }

    /// <summary>Closes the channel (relay shutdown), cutting its connections.</summary>
    internal void Shutdown()
    {
        List<IStapleLink>? cut = null;
        lock (_lock)
        {
            if (!_closed)
            {
                cut = CloseLocked();
            }
        }

        if (cut is not null)
        {
            Abort(cut);
        }

        _timer?.Dispose();
    }

    private void OnTimer()
    {
        List<IStapleLink>? cut = null;
        lock (_lock)
        {
            if (!_closed)
            {
                // A timer that fired just as h_k extended the deadline: re-arm instead of expiring early.
                var left = ExpiryLocked() - _timeProvider.GetElapsedTime(_created);
                if (left > TimeSpan.Zero)
                {
                    _timer?.Change(left, Timeout.InfiniteTimeSpan);
                    return;
                }

                if (PipingLocked())
                {
                    // A transfer in flight is not cut by the clock: expire when its TCP session ends
                    // (PipeIdleTimeout ends a stalled one).
                    _expiryDeferred = true;
                    return;
                }

                cut = CloseLocked();
            }
        }

        if (cut is null)
        {
            // Closed and retained long enough: forget it.
            _timer?.Dispose();
            _registry.Forget(this);
            return;
        }

        _registry.Metrics.ChannelExpired();
        AfterClose(cut, "expired");
    }

    /// <summary>Whether a pair is piped and still running (the TCP session has not ended).</summary>
    private bool PipingLocked()
    {
        if (_tcpEnded)
        {
            return false;
        }

        foreach (var slot in _slots.Values)
        {
            if (slot.Piped && !slot.Finished)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>After the TCP session ended: an expiry that waited for it closes the channel now.</summary>
    private void ExpireIfDeferred()
    {
        List<IStapleLink> cut;
        lock (_lock)
        {
            if (!_expiryDeferred || _closed)
            {
                return;
            }

            cut = CloseLocked();
        }

        _registry.Metrics.ChannelExpired();
        AfterClose(cut, "expired");
    }

    private void AfterClose(List<IStapleLink> cut, string reason)
    {
        _registry.Log.ChannelClosed(Name, reason);
        Abort(cut);
        _timer?.Change(_registry.Options.ClosedRetention, Timeout.InfiniteTimeSpan);
    }

    private List<IStapleLink> CloseLocked()
    {
        _closed = true;
        _tcpEnded = true;
        Bump();
        return TakeLinksLocked();
    }

    private List<IStapleLink> TakeLinksLocked()
    {
        var links = new List<IStapleLink>();
        foreach (var slot in _slots.Values)
        {
            if (!slot.Piped && slot.WaitingKey is { } waiting)
            {
                _registry.ReleaseWaiting(waiting);
            }

            if (slot.Sender is { } s)
            {
                links.Add(s);
            }

            if (slot.Recipient is { } r)
            {
                links.Add(r);
            }
        }

        _slots.Clear();
        return links;
    }

    private static void Abort(List<IStapleLink> links)
    {
        foreach (var link in links)
        {
            link.Abort();
        }
    }

    /// <summary>The checks every request naming this channel passes first: the IP rule, then closed.</summary>
    private RelayError? Refuse(IPAddress address)
    {
        if (_addresses.Count >= MaxAddresses && !_addresses.Contains(address))
        {
            return RelayErrors.IpLimit;
        }

        return _closed ? RelayErrors.Closed : null;
    }

    private void Record(IPAddress address)
    {
        if (!_addresses.Contains(address))
        {
            _addresses.Add(address);
        }
    }

    private ParticipantRole? RoleOf(string uuid)
    {
        if (FixedTimeEquals(uuid, SenderUuid))
        {
            return ParticipantRole.Sender;
        }

        return _recipientUuid is not null && FixedTimeEquals(uuid, _recipientUuid) ? ParticipantRole.Recipient : null;
    }

    private static bool FixedTimeEquals(string a, string b)
        => CryptographicOperations.FixedTimeEquals(MemoryMarshal.AsBytes(a.AsSpan()), MemoryMarshal.AsBytes(b.AsSpan()));

    private void Bump()
    {
        _rev++;
        var previous = _changed;
        _changed = NewSignal();
        previous.TrySetResult();
    }

    private ChannelSnapshot SnapshotLocked() => new(Name, _curve, _rev, _x, _y, _hhK, _hK, _stapled, _closed);

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private struct PortSlot
    {
        public IStapleLink? Sender;
        public IStapleLink? Recipient;
        public IPAddress? WaitingKey;
        public bool Piped;
        public bool Finished;
    }
}

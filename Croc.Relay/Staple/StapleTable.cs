using System.Collections.Concurrent;
using System.Net;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Net;

namespace CrocNet.Relay.Staple;

/// <summary>
/// This node's data connections ("legs"), per channel and <b>lane</b> (lane <c>i</c> is served over TCP by
/// <c>ports[i]</c>; other transports name lanes directly). Node-local by nature — a socket cannot be shared — so it is
/// not part of the channel store. Also counts the legs waiting for their peer, relay-wide and per address.
/// </summary>
internal sealed class StapleTable
{
    private readonly ConcurrentDictionary<long, Session> _sessions = new();
    private readonly AddressCounter _waiting = new();
    private readonly CrocRelayOptions _options;

    public StapleTable(CrocRelayOptions options) => _options = options;

    /// <summary>How many legs wait for their peer, on this node.</summary>
    public int Waiting => _waiting.Total;

    /// <summary>How many waiting legs come from the address key <paramref name="key"/>.</summary>
    public int WaitingOf(IPAddress key) => _waiting.Of(key);

    /// <summary>
    /// Puts a leg into its lane: it waits (reserving a waiting slot for <paramref name="key"/>), or it completes the
    /// lane's pair (<paramref name="peer"/> is then the other participant's leg). <paramref name="nowStapled"/> is true
    /// for the one attach that pipes the last of <paramref name="lanes"/> lanes.
    /// </summary>
    public RelayError? TryAttach(long channel, int lane, int lanes, ParticipantRole role, IStapleLink link, IPAddress key, out IStapleLink? peer, out bool nowStapled)
    {
        peer = null;
        nowStapled = false;
        var session = _sessions.GetOrAdd(channel, static _ => new Session());
        lock (session.Lock)
        {
            // Past its end (or its expiry), a session only lets the transfer in flight finish: no new legs.
            if (session.Ended || session.ExpiryDeferred)
            {
                return RelayErrors.Closed;
            }

            session.Lanes.TryGetValue(lane, out var slot);
            if ((role == ParticipantRole.Sender ? slot.Sender : slot.Recipient) is not null)
            {
                return new RelayError(RelayErrorCode.Duplicate, "This participant is already connected on this lane.");
            }

            peer = role == ParticipantRole.Sender ? slot.Recipient : slot.Sender;
            if (peer is null && !_waiting.TryAcquire(key, _options.MaxWaitingConnectionsPerAddress, _options.MaxWaitingConnections))
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

            if (peer is null)
            {
                slot.WaitingKey = key;
            }
            else
            {
                _waiting.Release(slot.WaitingKey!);
                slot.WaitingKey = null;
                slot.Piped = true;
            }

            session.Lanes[lane] = slot;
            if (peer is not null && !session.Stapled && AllLocked(session, lanes, static s => s.Piped))
            {
                session.Stapled = true;
                nowStapled = true;
            }

            return null;
        }
    }

    /// <summary>
    /// Takes a waiting (not yet piped) leg out of its lane (its client left, or it waited too long): the lane and the
    /// waiting slot are freed. <see langword="false"/>, changing nothing, when the leg no longer waits.
    /// </summary>
    public bool Detach(long channel, int lane, IStapleLink link)
    {
        if (!_sessions.TryGetValue(channel, out var session))
        {
            return false;
        }

        lock (session.Lock)
        {
            if (session.Ended || !session.Lanes.TryGetValue(lane, out var slot) || slot.Piped)
            {
                return false;
            }

            if (!ReferenceEquals(slot.Sender, link) && !ReferenceEquals(slot.Recipient, link))
            {
                return false;
            }

            session.Lanes.Remove(lane);
            _waiting.Release(slot.WaitingKey!);
            return true;
        }
    }

    /// <summary>
    /// Records that a lane's pair finished cleanly. When the channel is stapled and every lane has finished — or an
    /// expiry waits and nothing pipes any more — the session ends: returns the legs to cut, else <see langword="null"/>.
    /// </summary>
    public List<IStapleLink>? PairFinished(long channel, int lane, int lanes, out string reason)
    {
        reason = string.Empty;
        if (!_sessions.TryGetValue(channel, out var session))
        {
            return null;
        }

        lock (session.Lock)
        {
            if (session.Ended || !session.Lanes.TryGetValue(lane, out var slot))
            {
                return null;
            }

            slot.Finished = true;
            session.Lanes[lane] = slot;
            var everyPairFinished = session.Stapled && AllLocked(session, lanes, static s => s.Finished);
            if (!everyPairFinished && !(session.ExpiryDeferred && !PipingLocked(session)))
            {
                return null;
            }

            reason = everyPairFinished ? "every pair finished" : "the last piped pair finished after the channel's expiry";
            return EndLocked(session);
        }
    }

    /// <summary>Ends the channel's session on this node: later legs get <c>closed</c>. Returns the legs to cut, or <see langword="null"/> when it had ended already.</summary>
    public List<IStapleLink>? End(long channel)
    {
        var session = _sessions.GetOrAdd(channel, static _ => new Session());
        lock (session.Lock)
        {
            return session.Ended ? null : EndLocked(session);
        }
    }

    /// <summary>An expiry came: when a pair is piping, the expiry waits for it (returns true); else nothing changes.</summary>
    public bool TryDeferExpiry(long channel)
    {
        if (!_sessions.TryGetValue(channel, out var session))
        {
            return false;
        }

        lock (session.Lock)
        {
            if (!PipingLocked(session))
            {
                return false;
            }

            session.ExpiryDeferred = true;
            return true;
        }
    }

    /// <summary>Whether an expiry waits for this session to end.</summary>
    public bool IsExpiryDeferred(long channel)
    {
        if (!_sessions.TryGetValue(channel, out var session))
        {
            return false;
        }

        lock (session.Lock)
        {
            return session.ExpiryDeferred;
        }
    }

    /// <summary>Forgets the channel (it was forgotten by the relay); its legs were cut when it closed.</summary>
    public void Forget(long channel)
    {
        if (_sessions.TryRemove(channel, out var session))
        {
            List<IStapleLink>? cut;
            lock (session.Lock)
            {
                cut = session.Ended ? null : EndLocked(session);
            }

            Abort(cut);
        }
    }

    /// <summary>Cuts every leg of every channel (the relay is stopping).</summary>
    public void EndAll()
    {
        foreach (var channel in _sessions.Keys)
        {
            Abort(End(channel));
        }
    }

    public static void Abort(List<IStapleLink>? links)
    {
        if (links is null)
        {
            return;
        }

        foreach (var link in links)
        {
            link.Abort();
        }
    }

    private List<IStapleLink> EndLocked(Session session)
    {
        session.Ended = true;
        var links = new List<IStapleLink>();
        foreach (var slot in session.Lanes.Values)
        {
            if (!slot.Piped && slot.WaitingKey is { } waiting)
            {
                _waiting.Release(waiting);
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

        session.Lanes.Clear();
        return links;
    }

    private static bool PipingLocked(Session session)
    {
        if (session.Ended)
        {
            return false;
        }

        foreach (var slot in session.Lanes.Values)
        {
            if (slot.Piped && !slot.Finished)
            {
                return true;
            }
        }

        return false;
    }

    private static bool AllLocked(Session session, int lanes, Func<Lane, bool> predicate)
    {
        for (var lane = 0; lane < lanes; lane++)
        {
            if (!session.Lanes.TryGetValue(lane, out var slot) || !predicate(slot))
            {
                return false;
            }
        }

        return true;
    }

    private sealed class Session
    {
        public Lock Lock { get; } = new();

        public Dictionary<int, Lane> Lanes { get; } = [];

        public bool Stapled { get; set; }

        public bool Ended { get; set; }

        public bool ExpiryDeferred { get; set; }
    }

    private struct Lane
    {
        public IStapleLink? Sender;
        public IStapleLink? Recipient;
        public IPAddress? WaitingKey;
        public bool Piped;
        public bool Finished;
    }
}

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
/// <remarks>
/// With reconnection on (<see cref="CrocRelayOptions.MaxReattachments"/> &gt; 0), a lane whose pair ended — broken or
/// finished — takes a new leg from either participant for <see cref="CrocRelayOptions.ReconnectWindow"/> from that
/// moment; each such new pair is a re-attachment, counted (against the channel's budget) when its first leg attaches.
/// A lane that broke (or took a re-attached leg that now waits) and has no pair when its window passes has the channel
/// reset; a lane that finished cleanly and took nobody is sealed, and when every lane is sealed the session ends. With
/// reconnection off, a lane pairs once, and a break ends the whole session.
/// </remarks>
internal sealed class StapleTable
{
    private readonly ConcurrentDictionary<long, Session> _sessions = new();
    private readonly AddressCounter _waiting = new();
    private readonly CrocRelayOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly Action<ChannelRef, int, int> _windowPassed;

    /// <param name="options">The relay's settings.</param>
    /// <param name="timeProvider">The clock of the reconnect windows.</param>
    /// <param name="windowPassed">
    /// Runs (on a timer) when a lane's reconnect window passes: channel, lane and the generation it was armed for; the
    /// callee asks <see cref="WindowPassed"/> what follows.
    /// </param>
    public StapleTable(CrocRelayOptions options, TimeProvider? timeProvider = null, Action<ChannelRef, int, int>? windowPassed = null)
    {
        _options = options;
        _timeProvider = timeProvider ?? TimeProvider.System;
        _windowPassed = windowPassed ?? ((_, _, _) => { });
    }

    /// <summary>How many legs wait for their peer, on this node.</summary>
    public int Waiting => _waiting.Total;

    /// <summary>Whether a lane whose pair ended may pair again.</summary>
    private bool Reconnects => _options.MaxReattachments > 0;

    /// <summary>How many waiting legs come from the address key <paramref name="key"/>.</summary>
    public int WaitingOf(IPAddress key) => _waiting.Of(key);

    /// <summary>
    /// Puts a leg into its lane: it waits (reserving a waiting slot for <paramref name="key"/>), or it completes the
    /// lane's pair (<paramref name="peer"/> is then the other participant's leg). <paramref name="generation"/> numbers
    /// the lane's pair the leg belongs to (1 for its first). <paramref name="stapledChanged"/> is true when the
    /// channel's "every lane piped" or "a lane waits for a reconnect" changed (see <see cref="Status"/>); <paramref name="reattached"/> when this leg
    /// opened a re-attachment. <paramref name="again"/> is the leg's own word that it replaces one that broke: on a lane
    /// this node never saw paired (the pair was piped by a node that stopped, or before a restart) it counts as a
    /// re-attachment all the same, so both legs of the new pair are told to greet; a plain first leg already waiting
    /// there was told plain <c>ok</c> and would not understand the greeting, so it is taken out
    /// (<paramref name="displaced"/>, for the caller to cut: its client dials again).
    /// </summary>
    public RelayError? TryAttach(
        ChannelRef channel,
        int lane,
        int lanes,
        ParticipantRole role,
        IStapleLink link,
        IPAddress key,
        bool again,
        out IStapleLink? peer,
        out int generation,
        out bool stapledChanged,
        out bool reattached,
        out IStapleLink? displaced)
    {
        peer = null;
        generation = 0;
        stapledChanged = false;
        reattached = false;
        displaced = null;
        var session = _sessions.GetOrAdd(channel.Id, static (_, c) => new Session(c), channel);
        lock (session.Lock)
        {
            // Past its end (or its expiry), a session only lets the transfer in flight finish: no new legs.
            if (session.Ended || session.ExpiryDeferred)
            {
                return RelayErrors.Closed;
            }

            if (!session.Lanes.TryGetValue(lane, out var slot))
            {
                slot = new Lane();
            }

            if (slot.Sealed)
            {
                return new RelayError(RelayErrorCode.Closed, "This lane's pair finished and its reconnect window has passed.");
            }

            if ((role == ParticipantRole.Sender ? slot.Sender : slot.Recipient) is not null)
            {
                return new RelayError(RelayErrorCode.Duplicate, "This participant is already connected on this lane.");
            }

            peer = role == ParticipantRole.Sender ? slot.Recipient : slot.Sender;
            // A re-dialed leg on a lane with no pair here: the pair it replaces was piped elsewhere.
            var unseen = again && Reconnects && slot.Generation == 0;
            var displacing = unseen && peer is not null;
            var reattaching = (peer is null || displacing) && (slot.Generation > 0 || unseen);
            if (reattaching && session.Reattachments >= _options.MaxReattachments)
            {
                peer = null;
                return new RelayError(RelayErrorCode.ReconnectLimit, "This channel has reconnected its lanes as often as the relay allows; start a new transfer.");
            }

            if (peer is null && !_waiting.TryAcquire(key, _options.MaxWaitingConnectionsPerAddress, _options.MaxWaitingConnections))
            {
                return RelayErrors.Capacity;
            }

            if (displacing)
            {
                // The new leg takes the displaced one's waiting slot: released first, so a full relay still has room.
                var previous = slot.WaitingKey!;
                _waiting.Release(previous);
                if (!_waiting.TryAcquire(key, _options.MaxWaitingConnectionsPerAddress, _options.MaxWaitingConnections))
                {
                    _waiting.TryAcquire(previous, int.MaxValue, int.MaxValue);
                    peer = null;
                    return RelayErrors.Capacity;
                }

                displaced = peer;
                slot.WaitingKey = null;
                if (role == ParticipantRole.Sender)
                {
                    slot.Recipient = null;
                }
                else
                {
                    slot.Sender = null;
                }

                peer = null;
            }

            if (unseen)
            {
                // Counted as the lane's first pair, ended by a break (whether or not this leg stays): its window runs from now.
                slot.Generation = 1;
                slot.Ended = true;
                slot.Broken = true;
                ArmWindowLocked(session, lane, slot);
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
                generation = slot.Generation + 1;
                if (reattaching)
                {
                    session.Reattachments++;
                    slot.Reattaching = true;
                    slot.BrokenBefore = slot.Broken;
                    reattached = true;

                    // A participant reconnects this lane: until it pairs again, not every lane is piped.
                    slot.Broken = true;
                }
            }
            else
            {
                _waiting.Release(slot.WaitingKey!);
                slot.WaitingKey = null;
                slot.Piped = true;
                slot.Ended = false;
                slot.Broken = false;
                slot.Reattaching = false;
                slot.DisposeWindow();
                generation = ++slot.Generation;
            }

            session.Lanes[lane] = slot;
            stapledChanged = UpdateStapledLocked(session, lanes);
            return null;
        }
    }

    /// <summary>
    /// Takes a waiting (not yet piped) leg out of its lane (its client left, or it waited too long): the lane and the
    /// waiting slot are freed (a re-attachment that never paired is given back). <see langword="false"/>, changing
    /// nothing, when the leg no longer waits. <paramref name="stapledChanged"/>: whether "a lane waits for a reconnect"
    /// changed (a re-attachment that never paired leaves the lane as it was).
    /// </summary>
    public bool Detach(long channel, int lane, int lanes, IStapleLink link, out bool stapledChanged)
    {
        stapledChanged = false;
        if (!_sessions.TryGetValue(channel, out var session))
        {
            return false;
        }

        lock (session.Lock)
        {
            if (session.Ended || !session.Lanes.TryGetValue(lane, out var slot) || slot.Piped || slot.Finished)
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

            _waiting.Release(slot.WaitingKey!);
            slot.WaitingKey = null;
            if (slot.Reattaching)
            {
                // Counted when it attached, as a new pair; it never became one. The lane is as it was before: a lane
                // that finished cleanly is not waiting for a reconnect because a re-dialed leg came and went.
                slot.Reattaching = false;
                session.Reattachments--;
                slot.Broken = slot.BrokenBefore;
            }

            if (slot.Generation == 0)
            {
                session.Lanes.Remove(lane);
            }

            stapledChanged = UpdateStapledLocked(session, lanes);
            return true;
        }
    }

    /// <summary>
    /// Records that pair <paramref name="generation"/> of a lane finished cleanly (the caller closed its legs
    /// gracefully). Returns the legs to cut when the session ends with it, else <see langword="null"/>: without
    /// reconnection, once the channel is stapled and every lane's pair has finished; with it, only when an expiry waits
    /// and nothing pipes any more (otherwise the lane's reconnect window starts).
    /// </summary>
    public List<IStapleLink>? PairFinished(long channel, int lane, int generation, int lanes, out string reason)
    {
        reason = string.Empty;
        if (!_sessions.TryGetValue(channel, out var session))
        {
            return null;
        }

        lock (session.Lock)
        {
            if (session.Ended || !session.Lanes.TryGetValue(lane, out var slot) || !slot.Piped || slot.Finished || slot.Generation != generation)
            {
                return null;
            }

            if (Reconnects)
            {
                EndPairLocked(session, lane, slot, broken: false);
            }
            else
            {
                slot.Finished = true;
            }

            var everyPairFinished = !Reconnects && session.Stapled && AllLocked(session, lanes, static s => s.Finished);
            if (!everyPairFinished && !(session.ExpiryDeferred && !PipingLocked(session)))
            {
                return null;
            }

            reason = everyPairFinished ? "every pair finished" : "the last piped pair finished after the channel's expiry";
            return EndLocked(session);
        }
    }

    /// <summary>
    /// Pair <paramref name="generation"/> of a lane broke (a leg failed, or the pair went idle). Without reconnection,
    /// or when an expiry waits and nothing pipes any more, the whole session ends (<paramref name="sessionEnded"/>);
    /// otherwise only the pair's legs are cut and the lane's reconnect window starts. Returns the legs to cut, or
    /// <see langword="null"/> when that pair is no longer piped (someone else ended it).
    /// </summary>
    public List<IStapleLink>? PairBroken(long channel, int lane, int generation, int lanes, out bool sessionEnded, out bool stapledChanged)
    {
        sessionEnded = false;
        stapledChanged = false;
        if (!_sessions.TryGetValue(channel, out var session))
        {
            return null;
        }

        lock (session.Lock)
        {
            if (session.Ended || !session.Lanes.TryGetValue(lane, out var slot) || !slot.Piped || slot.Finished || slot.Generation != generation)
            {
                return null;
            }

            if (!Reconnects)
            {
                sessionEnded = true;
                return EndLocked(session);
            }

            var cut = EndPairLocked(session, lane, slot, broken: true);
            if (session.ExpiryDeferred && !PipingLocked(session))
            {
                // Past the expiry nothing may reconnect: with nothing left piping, the session is over.
                sessionEnded = true;
                cut.AddRange(EndLocked(session));
                return cut;
            }

            stapledChanged = UpdateStapledLocked(session, lanes);
            return cut;
        }
    }

    /// <summary>
    /// A lane's reconnect window (armed when its pair <paramref name="generation"/> ended) passed. <paramref name="reset"/>
    /// is true when the lane is still unpaired after a break or with a re-attached leg waiting: the caller resets the
    /// channel. Otherwise the lane is sealed, and when every lane is, the session ends: returns the legs to cut then.
    /// </summary>
    public List<IStapleLink>? WindowPassed(long channel, int lane, int generation, int lanes, out bool reset)
    {
        reset = false;
        if (!_sessions.TryGetValue(channel, out var session))
        {
            return null;
        }

        lock (session.Lock)
        {
            if (session.Ended || !session.Lanes.TryGetValue(lane, out var slot) || !slot.Ended || slot.Generation != generation)
            {
                return null;
            }

            slot.DisposeWindow();
            if (slot.Broken)
            {
                reset = true;
                return null;
            }

            slot.Sealed = true;
            return AllLocked(session, lanes, static s => s.Sealed) ? EndLocked(session) : null;
        }
    }

    /// <summary>
    /// Whether every lane of the channel has its pair piped (or finished cleanly with no reconnect pending), and whether
    /// a lane waits for a reconnect (its pair broke, or a re-dialed leg waits for its peer).
    /// </summary>
    public (bool Stapled, bool Reconnecting) Status(long channel)
    {
        if (!_sessions.TryGetValue(channel, out var session))
        {
            return (false, false);
        }

        lock (session.Lock)
        {
            return (session.Stapled && !session.Ended, session.Reconnecting && !session.Ended);
        }
    }

    /// <summary>For diagnostics and tests: whether the channel's session ended, and how many reconnect windows are open.</summary>
    public (bool Ended, int Windows) Inspect(long channel)
    {
        if (!_sessions.TryGetValue(channel, out var session))
        {
            return (false, 0);
        }

        lock (session.Lock)
        {
            return (session.Ended, session.Lanes.Values.Count(static l => l.Window is not null));
        }
    }

    /// <summary>Ends the channel's session on this node: later legs get <c>closed</c>. Returns the legs to cut, or <see langword="null"/> when it had ended already.</summary>
    public List<IStapleLink>? End(long channel)
    {
        var session = _sessions.GetOrAdd(channel, static id => new Session(new ChannelRef(string.Empty, id)));
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

    /// <summary>Ends a lane's piped pair (reconnection on): frees the lane for new legs and arms its reconnect window.</summary>
    private List<IStapleLink> EndPairLocked(Session session, int lane, Lane slot, bool broken)
    {
        var cut = new List<IStapleLink>(2);
        if (slot.Sender is { } s)
        {
            cut.Add(s);
        }

        if (slot.Recipient is { } r)
        {
            cut.Add(r);
        }

        slot.Sender = null;
        slot.Recipient = null;
        slot.Piped = false;
        slot.Ended = true;
        slot.Broken = broken;
        ArmWindowLocked(session, lane, slot);
        return cut;
    }

    /// <summary>(Re)starts the lane's reconnect window for its current pair number.</summary>
    private void ArmWindowLocked(Session session, int lane, Lane slot)
    {
        slot.DisposeWindow();
        var armed = new WindowState(this, session.Channel, lane, slot.Generation);
        slot.Window = _timeProvider.CreateTimer(static s => ((WindowState)s!).Fire(), armed, _options.ReconnectWindow, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Recomputes whether every lane is piped and whether one waits for a reconnect; returns whether either changed.</summary>
    private static bool UpdateStapledLocked(Session session, int lanes)
    {
        var stapled = AllLocked(session, lanes, static s => s.Piped || (s.Ended && !s.Broken));
        var reconnecting = false;
        for (var lane = 0; lane < lanes && !reconnecting; lane++)
        {
            reconnecting = session.Lanes.TryGetValue(lane, out var slot) && slot.Broken;
        }

        if (stapled == session.Stapled && reconnecting == session.Reconnecting)
        {
            return false;
        }

        session.Stapled = stapled;
        session.Reconnecting = reconnecting;
        return true;
    }

    private List<IStapleLink> EndLocked(Session session)
    {
        session.Ended = true;
        var links = new List<IStapleLink>();
        foreach (var slot in session.Lanes.Values)
        {
            slot.DisposeWindow();
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

    private sealed class Session(ChannelRef channel)
    {
        public Lock Lock { get; } = new();

        public ChannelRef Channel { get; } = channel;

        public Dictionary<int, Lane> Lanes { get; } = [];

        /// <summary>Every lane is piped (or finished cleanly with no reconnect pending) right now.</summary>
        public bool Stapled { get; set; }

        /// <summary>A lane waits for a reconnect right now (see <see cref="Lane.Broken"/>).</summary>
        public bool Reconnecting { get; set; }

        public bool Ended { get; set; }

        public bool ExpiryDeferred { get; set; }

        /// <summary>Re-attachments counted so far (a re-attachment's first leg that left unpaired is given back).</summary>
        public int Reattachments { get; set; }
    }

    /// <summary>One lane of a session; only touched under its session's lock.</summary>
    private sealed class Lane
    {
        public IStapleLink? Sender;
        public IStapleLink? Recipient;
        public IPAddress? WaitingKey;

        /// <summary>How many pairs the lane has had; the current (or last) pair's number.</summary>
        public int Generation;

        /// <summary>The current pair is piped (and, without reconnection, may have finished: see <see cref="Finished"/>).</summary>
        public bool Piped;

        /// <summary>Without reconnection: the lane's only pair finished cleanly (its legs stay recorded).</summary>
        public bool Finished;

        /// <summary>With reconnection: the last pair ended and no new one formed yet.</summary>
        public bool Ended;

        /// <summary>A reconnect is pending: the last pair broke, or a re-attached leg waits. Cleared by a new pair.</summary>
        public bool Broken;

        /// <summary>The waiting leg opened a re-attachment (counted; given back if it leaves unpaired).</summary>
        public bool Reattaching;

        /// <summary>Whether a reconnect was pending before that re-attachment (restored if it leaves unpaired).</summary>
        public bool BrokenBefore;

        /// <summary>The last pair finished cleanly and its window passed with no new leg: the lane takes no more.</summary>
        public bool Sealed;

        public ITimer? Window;

        public void DisposeWindow()
        {
            Window?.Dispose();
            Window = null;
        }
    }

    private sealed class WindowState(StapleTable table, ChannelRef channel, int lane, int generation)
    {
        public void Fire() => table._windowPassed(channel, lane, generation);
    }
}

using System.Collections.Concurrent;
using System.Net;
using CrocNet.Relay.Diagnostics;
using CrocNet.Relay.Mesh;
using CrocNet.Relay.Net;
using CrocNet.Relay.Staple;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CrocNet.Relay.Channels;

/// <summary>
/// The relay's channels: creation, capacity, per-address limits, commands, data connections, expiry and forgetting.
/// States live in the <see cref="IChannelStore"/> and change only through <see cref="ChannelMachine"/>'s pure
/// transitions; this node's data connections live in a <see cref="StapleTable"/>; expiry timers run on the relay's
/// <see cref="TimeProvider"/>. Knows nothing of HTTP or sockets, so it is tested directly with a fake clock.
/// </summary>
internal sealed class ChannelRegistry : IDisposable
{
    private readonly IChannelStore _store;
    private readonly StapleTable _staples;
    private readonly IRelayLimits _limits;
    private readonly ConcurrentDictionary<long, ITimer> _timers = new();
    private readonly ConcurrentDictionary<Task, byte> _background = new();
    private readonly ConcurrentDictionary<IPAddress, Queue<ChannelRef>> _closedByCreator = new();
    // Read-only: CrocRelayListeners hands this list to host apps, and the relay's checks rely on it.
    private volatile System.Collections.ObjectModel.ReadOnlyCollection<int> _ports = System.Collections.ObjectModel.ReadOnlyCollection<int>.Empty;
    private bool _disposed;

    public ChannelRegistry(IOptions<CrocRelayOptions> options, RelayClock clock, RelayMetrics metrics, IChannelStore? store = null, ILogger<ChannelRegistry>? logger = null, IRelayLimits? limits = null, MeshRouter? mesh = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(clock);
        Options = options.Value;
        TimeProvider = clock.TimeProvider;
        Metrics = metrics;
        Log = new RelayLog(logger ?? (ILogger)NullLogger.Instance);
        _store = store ?? new InMemoryChannelStore();
        _staples = new StapleTable(Options, TimeProvider, (channel, lane, generation) => Track(OnWindowPassedAsync(channel, lane, generation)));
        _limits = limits ?? new InMemoryRelayLimits(Options, TimeProvider);
        Access = new RelayAccess(Options.Password);
        Addresses = new ClientAddresses(Options);
        Mesh = mesh;
    }

    public CrocRelayOptions Options { get; }

    /// <summary>Where legs of channels owned by other nodes are forwarded; <see langword="null"/> on a relay without a shared store.</summary>
    internal MeshRouter? Mesh { get; }

    public TimeProvider TimeProvider { get; }

    internal RelayMetrics Metrics { get; }

    internal RelayLog Log { get; }

    /// <summary>The relay password check, for every route and leg.</summary>
    internal RelayAccess Access { get; }

    /// <summary>Client addresses of HTTP requests and WebSocket legs (forwarded by trusted proxies).</summary>
    internal ClientAddresses Addresses { get; }

    /// <summary>The TCP ports actually bound, in the configured order (lane <c>i</c> is <c>Ports[i]</c>); empty until the listeners start.</summary>
    public IReadOnlyList<int> Ports => _ports;

    /// <summary>
    /// How many lanes each participant opens: <see cref="CrocRelayOptions.Lanes"/>, else one per port (the bound ones
    /// once the listeners run, the configured ones before), else <see cref="DefaultLanes"/> on a relay without TCP
    /// listeners. Lane <c>i</c> is served over TCP by <c>Ports[i]</c>; WebSocket legs name it in their hello.
    /// </summary>
    public int Lanes => Options.Lanes ?? (_ports.Count > 0 ? _ports.Count : Options.Ports is { Count: > 0 } configured ? configured.Count : DefaultLanes);

    /// <summary>The lanes of a relay that runs no TCP listeners and sets no <see cref="CrocRelayOptions.Lanes"/>.</summary>
    public const int DefaultLanes = 4;

    /// <summary>How many channels are stored, closed ones still remembered included (with shared limits: as this node last saw).</summary>
    public int Count => _limits.Count;

    /// <summary>How many accepted data connections are waiting for their peer.</summary>
    public int WaitingConnections => _staples.Waiting;

    internal void SetPorts(IReadOnlyList<int> ports) => _ports = Array.AsReadOnly(ports.ToArray());

    /// <summary>
    /// Checks the relay password for a request or leg from <paramref name="address"/> (<paramref name="allowed"/> runs
    /// the check). A wrong or missing password spends one of the address's failed-lookup tokens; with none left the
    /// check is not even run, so passwords cannot be guessed faster than <c>MaxFailedLookupsPerMinute</c>.
    /// </summary>
    internal async ValueTask<bool> AuthorizeAsync(IPAddress address, Func<bool> allowed, CancellationToken cancellationToken = default)
    {
        if (Access.IsOpen)
        {
            return true;
        }

        var key = LimitKey(address);
        if (!await _limits.HasTokenAsync(RateLimit.FailedLookups, key, cancellationToken).ConfigureAwait(false))
        {
            return false;
        }

        if (allowed())
        {
            return true;
        }

        await _limits.TakeAsync(RateLimit.FailedLookups, key, cancellationToken).ConfigureAwait(false);
        return false;
    }

    /// <summary>The key the per-address limits count <paramref name="address"/> under.</summary>
    public IPAddress LimitKey(IPAddress address) => RelayAddress.LimitKey(address, Options.IPv6PrefixLength);

    /// <summary>The public state of the channel named <paramref name="name"/> (diagnostics and tests).</summary>
    public async ValueTask<ChannelSnapshot?> GetAsync(string name, CancellationToken cancellationToken = default)
        => (await _store.GetAsync(name, cancellationToken).ConfigureAwait(false))?.ToSnapshot();

    public async ValueTask<Outcome<JoinResult>> JoinAsync(JoinCommand command, IPAddress address, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        var key = LimitKey(address);
        if (command.Role == ParticipantRole.Recipient)
        {
            return await JoinRecipientAsync(command, address, key, cancellationToken).ConfigureAwait(false);
        }

        if (command.Channel is { } wanted)
        {
            // Past its budget of failed lookups, an address is told "occupied" without a look: it cannot enumerate.
            if (!await _limits.HasTokenAsync(RateLimit.FailedLookups, key, cancellationToken).ConfigureAwait(false))
            {
                await _limits.TakeAsync(RateLimit.FailedLookups, key, cancellationToken).ConfigureAwait(false);
                return RelayErrors.Occupied;
            }

            if (await _store.GetAsync(wanted, cancellationToken).ConfigureAwait(false) is { } taken)
            {
                if (ChannelMachine.IsSenderRetry(taken, address, command.Uuid))
                {
                    return new JoinResult(taken.ToSnapshot(), command.Uuid!, ParticipantRole.Sender);
                }

                await _limits.TakeAsync(RateLimit.FailedLookups, key, cancellationToken).ConfigureAwait(false);
                return ChannelMachine.RefuseSenderJoin(taken, address);
            }
        }

        if (!await _limits.TryTakeAsync(RateLimit.Joins, key, cancellationToken).ConfigureAwait(false))
        {
            return RelayErrors.JoinRate;
        }

        // At its limit, an address recycles the oldest of its own closed (still remembered) channels: closed channels
        // count against their creator, so churn cannot fill MaxChannels, yet one transfer after another never stalls.
        var id = await _store.NewIdAsync(cancellationToken).ConfigureAwait(false);
        var created = TimeProvider.GetUtcNow();
        var forgetBy = created + Options.ChannelExpiry + Options.ClosedRetention;
        ChannelSlot slot;
        while ((slot = await _limits.TryAcquireChannelAsync(key, id, forgetBy, cancellationToken).ConfigureAwait(false)) == ChannelSlot.AddressFull)
        {
            if (await TryForgetOldestClosedAsync(key, cancellationToken).ConfigureAwait(false))
            {
                continue;
            }

            await _limits.RefundAsync(RateLimit.Joins, key, cancellationToken).ConfigureAwait(false);
            return new RelayError(RelayErrorCode.Capacity, "This address has too many channels (closed ones count until forgotten); finish one and try again later.");
        }

        if (slot == ChannelSlot.RelayFull)
        {
            await _limits.RefundAsync(RateLimit.Joins, key, cancellationToken).ConfigureAwait(false);
            return RelayErrors.Capacity;
        }

        var uuid = command.Uuid ?? ChannelNames.NewUuid();
        var curve = command.Curve ?? ChannelNames.DefaultCurve;
        for (var attempt = 0; ; attempt++)
        {
            var name = command.Channel ?? ChannelNames.NewChannelName();
            var state = ChannelMachine.Create(id, name, curve, uuid, address, key, created);
            if (await _store.TryAddAsync(state, cancellationToken).ConfigureAwait(false))
            {
                ArmExpiry(state);
                Metrics.ChannelOpened();
                Log.ChannelOpened(name);
                return new JoinResult(state.ToSnapshot(), uuid, ParticipantRole.Sender);
            }

            // Lost a race for a requested name, or (astronomically rarely) generated a taken one.
            if (command.Channel is not null || attempt >= 8)
            {
                await _limits.ReleaseChannelAsync(key, id, cancellationToken).ConfigureAwait(false);
                await _limits.RefundAsync(RateLimit.Joins, key, cancellationToken).ConfigureAwait(false);
                if (command.Channel is not null && await _store.GetAsync(command.Channel, cancellationToken).ConfigureAwait(false) is { } raced)
                {
                    // A retry that raced its own first try (which created the channel) gets the same answer.
                    return ChannelMachine.IsSenderRetry(raced, address, command.Uuid)
                        ? new JoinResult(raced.ToSnapshot(), uuid, ParticipantRole.Sender)
                        : ChannelMachine.RefuseSenderJoin(raced, address);
                }

                return RelayErrors.Occupied;
            }
        }
    }

    /// <summary>
    /// Runs a <c>POST /channel</c> command. An unknown channel and a uuid that is not a participant's get the same
    /// answer (<c>bad_uuid</c>), before any other check, so a caller without a valid uuid learns nothing about the
    /// channel; such failures are rate-limited per address. The snapshot's <see cref="ChannelSnapshot.Id"/> names the
    /// channel acted on, for <see cref="WaitAsync"/> (a name can be forgotten and taken again).
    /// </summary>
    public async ValueTask<Outcome<ChannelSnapshot>> ExecuteAsync(ChannelCommand command, IPAddress address, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        var key = LimitKey(address);
        var current = await _limits.HasTokenAsync(RateLimit.FailedLookups, key, cancellationToken).ConfigureAwait(false)
            ? await _store.GetAsync(command.Channel, cancellationToken).ConfigureAwait(false)
            : null;
        var result = current is null
            ? null
            : await _store.UpdateAsync(command.Channel, current.Id, s => ChannelMachine.Apply(s, command, address), cancellationToken).ConfigureAwait(false);
        if (result is not { } transition)
        {
            await _limits.TakeAsync(RateLimit.FailedLookups, key, cancellationToken).ConfigureAwait(false);
            return RelayErrors.BadUuid;
        }

        if (transition.Error is { } error)
        {
            if (error.Code == RelayErrorCode.BadUuid)
            {
                await _limits.TakeAsync(RateLimit.FailedLookups, key, cancellationToken).ConfigureAwait(false);
            }

            return error;
        }

        var state = transition.State;
        if (transition.NowClosed)
        {
            AfterClose(state, "closed by a participant");
            Metrics.ChannelClosed();
        }
        else if (command.Action == ChannelAction.SetHK)
        {
            // Key confirmation is complete: the full ChannelExpiry (from creation) applies from now on.
            ArmExpiry(state);
        }

        return state.ToSnapshot();
    }

    /// <summary>
    /// Holds until channel <paramref name="observed"/>'s <c>rev &gt; since</c>, it closes, <paramref name="timeout"/>
    /// passes or <paramref name="cancellationToken"/> fires; then returns its state (the observed one when it is gone).
    /// </summary>
    public async ValueTask<ChannelSnapshot> WaitAsync(ChannelSnapshot observed, long since, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(observed);
        var state = await _store.WaitAsync(observed.Channel, observed.Id, since, timeout, TimeProvider, cancellationToken).ConfigureAwait(false);
        return state?.ToSnapshot() ?? observed;
    }

    /// <summary>
    /// Attaches a data connection after its hello, on <paramref name="lane"/>. Unknown channel and bad uuid answer
    /// alike, as for <see cref="ExecuteAsync"/>. A refused attach changes nothing.
    /// </summary>
    public ValueTask<Outcome<StapleAttachment>> AttachAsync(string channelName, string uuid, IPAddress address, int lane, IStapleLink link, CancellationToken cancellationToken = default)
        => AttachAsync(channelName, uuid, address, lane, link, again: false, cancellationToken);

    /// <summary>
    /// As <see cref="AttachAsync(string, string, IPAddress, int, IStapleLink, CancellationToken)"/>; <paramref name="again"/>
    /// when the leg's hello said it replaces one that broke (see <see cref="StapleTable.TryAttach"/>).
    /// </summary>
    public async ValueTask<Outcome<StapleAttachment>> AttachAsync(string channelName, string uuid, IPAddress address, int lane, IStapleLink link, bool again, CancellationToken cancellationToken = default)
    {
        var key = LimitKey(address);
        var state = await _limits.HasTokenAsync(RateLimit.FailedLookups, key, cancellationToken).ConfigureAwait(false)
            ? await _store.GetAsync(channelName, cancellationToken).ConfigureAwait(false)
            : null;
        if (state is null)
        {
            await _limits.TakeAsync(RateLimit.FailedLookups, key, cancellationToken).ConfigureAwait(false);
            return RelayErrors.BadUuid;
        }

        var authorized = ChannelMachine.Authorize(state, uuid, address);
        if (authorized.Error is { } refusal)
        {
            if (refusal.Code == RelayErrorCode.BadUuid)
            {
                await _limits.TakeAsync(RateLimit.FailedLookups, key, cancellationToken).ConfigureAwait(false);
            }

            return refusal;
        }

        if (lane < 0 || lane >= Lanes)
        {
            return RelayErrors.BadRequest("This lane is not offered.");
        }

        var role = authorized.Role;
        var channel = new ChannelRef(channelName, state.Id);
        if (_staples.TryAttach(channel, lane, Lanes, role, link, key, again, out var peer, out var generation, out var stapledChanged, out var reattached, out var displaced) is { } taken)
        {
            if (taken.Code == RelayErrorCode.ReconnectLimit)
            {
                var refusedPort = LaneLabel(lane);
                Log.ReconnectLimit(channelName, refusedPort, Options.MaxReattachments);
            }

            return taken;
        }

        var port = LaneLabel(lane);
        if (displaced is not null)
        {
            // Out of its lane already: cut it now, whatever follows (its client dials again).
            Log.WaitingDropped(channelName, port, "a leg dialed again arrived for a pair this node never piped; the waiting first leg would not understand its greeting and dials again");
            displaced.Abort();
        }

        // Record the address (the store re-checks the rules atomically). A change in between — the channel closed, or
        // another address took the second place — undoes the attach.
        var recorded = await _store.UpdateAsync(channelName, state.Id, s => ChannelMachine.Authorize(s, uuid, address), cancellationToken).ConfigureAwait(false);
        if (recorded is not { Refused: false })
        {
            if (peer is null && _staples.Detach(state.Id, lane, Lanes, link, out var undone) && undone)
            {
                await SyncStapledAsync(channel, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                StapleTable.Abort(_staples.End(state.Id));
            }

            return recorded?.Error ?? RelayErrors.Closed;
        }

        if (reattached)
        {
            Metrics.Reattached();
            Log.LaneReattaching(channelName, port);
        }

        if (peer is not null)
        {
            Metrics.ConnectionsStapled();
            Log.PairPiped(channelName, port);
        }

        if (stapledChanged)
        {
            await SyncStapledAsync(channel, cancellationToken).ConfigureAwait(false);
        }

        if (!_timers.ContainsKey(state.Id))
        {
            // Legs of a channel another node created (it stopped, and this node took the channel over): this node now
            // holds them, so it keeps the channel's clock too — its expiry, then its forgetting and its legs' end.
            ArmExpiry(state);
        }

        return new StapleAttachment(channel, lane, role, peer, generation);
    }

    /// <summary>Takes a waiting (not yet piped) connection out of its lane; see <see cref="StapleTable.Detach"/>.</summary>
    public bool Detach(StapleAttachment attachment, IStapleLink link)
    {
        ArgumentNullException.ThrowIfNull(attachment);
        if (!_staples.Detach(attachment.Channel.Id, attachment.Lane, Lanes, link, out var stapledChanged))
        {
            return false;
        }

        if (stapledChanged)
        {
            Track(SyncStapledAsync(attachment.Channel, CancellationToken.None));
        }

        return true;
    }

    /// <summary>
    /// Records that the pair on the attachment's lane finished cleanly (the caller closed it). Other pairs may still be
    /// moving data, so nothing else is cut: without reconnection, until the channel is stapled and every lane's pair
    /// has finished; with it, the lane may pair again within <c>ReconnectWindow</c>.
    /// </summary>
    public async ValueTask PairFinishedAsync(StapleAttachment attachment, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(attachment);
        var channel = attachment.Channel;
        if (_staples.PairFinished(channel.Id, attachment.Lane, attachment.Generation, Lanes, out var reason) is { } cut)
        {
            Log.ConnectionsEnded(channel.Name, reason);
            StapleTable.Abort(cut);
            await ExpireIfDeferredAsync(channel, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The attachment's pair broke (<paramref name="reason"/>: a leg failed, or the pair went idle): its legs are cut
    /// at once, so each peer notices. Without reconnection every connection of the channel ends; with it, the lane
    /// waits for new legs within <c>ReconnectWindow</c> and <c>stapled</c> turns false. A pair someone else already
    /// ended changes nothing.
    /// </summary>
    public async ValueTask PairBrokenAsync(StapleAttachment attachment, string reason, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(attachment);
        var channel = attachment.Channel;
        var cut = _staples.PairBroken(channel.Id, attachment.Lane, attachment.Generation, Lanes, out var sessionEnded, out var stapledChanged);
        if (cut is null)
        {
            return;
        }

        StapleTable.Abort(cut);
        Metrics.PairBroken();
        if (sessionEnded)
        {
            Log.ConnectionsEnded(channel.Name, reason);
            await ExpireIfDeferredAsync(channel, cancellationToken).ConfigureAwait(false);
            return;
        }

        var port = LaneLabel(attachment.Lane);
        Log.PairBroken(channel.Name, port, reason, Options.ReconnectWindow);
        if (stapledChanged)
        {
            await SyncStapledAsync(channel, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A leg failed outside its pipe (its answer could not be sent, its watch failed). Without reconnection every
    /// connection of the channel ends, as for any failure; with it, a waiting leg just leaves its lane and a piped one
    /// breaks its pair.
    /// </summary>
    public async ValueTask LegFailedAsync(StapleAttachment attachment, IStapleLink link, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(attachment);
        if (Options.MaxReattachments == 0)
        {
            await EndConnectionsAsync(attachment.Channel, "a connection failed", cancellationToken).ConfigureAwait(false);
        }
        else if (!Detach(attachment, link))
        {
            await PairBrokenAsync(attachment, "a connection failed", cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The same from a synchronous callback (a pipe's fault or idle timer): the work is tracked, not dropped.</summary>
    public void PairBroken(StapleAttachment attachment, string reason) => Track(PairBrokenAsync(attachment, reason));

    /// <summary>Cuts every data connection of the channel; later hellos get <c>closed</c>. The channel itself stays open.</summary>
    public async ValueTask EndConnectionsAsync(ChannelRef channel, string reason, CancellationToken cancellationToken = default)
    {
        if (_staples.End(channel.Id) is { } cut)
        {
            Log.ConnectionsEnded(channel.Name, reason);
            StapleTable.Abort(cut);
            await ExpireIfDeferredAsync(channel, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The same from a synchronous callback (a pipe's fault or idle timer): the work is tracked, not dropped.</summary>
    public void EndConnections(ChannelRef channel, string reason) => Track(EndConnectionsAsync(channel, reason));

    /// <summary>
    /// Closes every channel and cuts every connection (the relay is stopping). With a shared store only this node's
    /// connections are cut: the channels stay for the other nodes.
    /// </summary>
    public async ValueTask CloseAllAsync(CancellationToken cancellationToken = default)
    {
        if (_store.IsShared)
        {
            _staples.EndAll();
        }
        else
        {
            await foreach (var state in _store.AllAsync(cancellationToken).ConfigureAwait(false))
            {
                await _store.UpdateAsync(state.Name, state.Id, static s => ChannelMachine.Close(s), cancellationToken).ConfigureAwait(false);
                StapleTable.Abort(_staples.End(state.Id));
            }
        }

        DisposeTimers();
        await BackgroundWork.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Cuts this node's connections and stops its timers (the store's states are the store's).</summary>
    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            _staples.EndAll();
            DisposeTimers();
        }
    }

    /// <summary>How many stored channels (open, or closed and not yet forgotten) <paramref name="address"/> has created.</summary>
    internal int ChannelsOf(IPAddress address) => _limits.ChannelsOf(LimitKey(address));

    /// <summary>How many connections waiting for their peer come from <paramref name="address"/>'s key.</summary>
    internal int WaitingOf(IPAddress address) => _staples.WaitingOf(LimitKey(address));

    /// <summary>Whether channel <paramref name="id"/>'s connections on this node ended, and how many of its lanes have a reconnect window open (tests).</summary>
    internal (bool Ended, int Windows) InspectLegs(long id) => _staples.Inspect(id);

    /// <summary>Timer and callback work still running (none with the in-memory store: it completes synchronously).</summary>
    internal Task BackgroundWork => Task.WhenAll(_background.Keys).ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>The label of a lane in logs: its TCP port when it has one, else its number.</summary>
    private int LaneLabel(int lane) => Ports.Count > lane ? Ports[lane] : lane;

    /// <summary>
    /// Brings the stored <c>stapled</c> and <c>reconnecting</c> in line with this node's lanes. The transition reads the lanes when it runs, so
    /// whichever of two racing updates runs last stores the latest answer.
    /// </summary>
    private async ValueTask SyncStapledAsync(ChannelRef channel, CancellationToken cancellationToken)
    {
        ChannelState? before = null;
        var synced = await _store.UpdateAsync(
            channel.Name,
            channel.Id,
            s =>
            {
                var (stapled, reconnecting) = _staples.Status(channel.Id);
                var next = ChannelMachine.SetStapled(s, stapled, reconnecting);
                before = !next.Refused && !ReferenceEquals(next.State, s) ? s : null;
                return next;
            },
            cancellationToken).ConfigureAwait(false);
        if (synced is { Refused: false } transition && before is not null)
        {
            if (transition.State.Stapled)
            {
                Log.ChannelStapled(channel.Name);
            }
            else if (before.Stapled || (transition.State.Reconnecting && !before.Reconnecting))
            {
                Log.ChannelUnstapled(channel.Name);
            }
        }
    }

    /// <summary>A lane's reconnect window passed: reset the channel (a reconnect was pending), or seal the lane.</summary>
    private async ValueTask OnWindowPassedAsync(ChannelRef channel, int lane, int generation)
    {
        var cut = _staples.WindowPassed(channel.Id, lane, generation, Lanes, out var reset);
        if (reset)
        {
            var closed = await _store.UpdateAsync(channel.Name, channel.Id, static s => ChannelMachine.Close(s)).ConfigureAwait(false);
            if (closed is { NowClosed: true } transition)
            {
                Metrics.ChannelReset();
                AfterClose(transition.State, FormattableString.Invariant($"was reset: lane {lane} had no pair within ReconnectWindow"));
            }

            return;
        }

        if (cut is not null)
        {
            Log.ConnectionsEnded(channel.Name, "every pair finished and none reconnected within ReconnectWindow");
            StapleTable.Abort(cut);
            await ExpireIfDeferredAsync(channel, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Sets the expiry timer: the channel's lifetime from its creation (re-armed when <c>h_k</c> extends it).</summary>
    private void ArmExpiry(ChannelState state)
    {
        var left = ChannelMachine.Lifetime(state, Options) - (TimeProvider.GetUtcNow() - state.Created);
        ArmTimer(new ChannelRef(state.Name, state.Id), left > TimeSpan.Zero ? left : TimeSpan.Zero);
    }

    /// <summary>Sets the channel's one timer on this node to fire after <paramref name="due"/>, creating it if needed.</summary>
    private void ArmTimer(ChannelRef channel, TimeSpan due)
    {
        if (_timers.TryGetValue(channel.Id, out var timer))
        {
            timer.Change(due, Timeout.InfiniteTimeSpan);
            return;
        }

        timer = TimeProvider.CreateTimer(static s => ((TimerState)s!).Fire(), new TimerState(this, channel), Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        if (_timers.TryAdd(channel.Id, timer))
        {
            timer.Change(due, Timeout.InfiniteTimeSpan);
        }
        else
        {
            timer.Dispose();
            ArmTimer(channel, due);
        }
    }

    private void Track(ValueTask work)
    {
        if (work.IsCompletedSuccessfully)
        {
            return;
        }

        var task = work.AsTask();
        _background.TryAdd(task, 0);
        _ = task.ContinueWith(
            static (t, s) =>
            {
                var registry = (ChannelRegistry)s!;
                registry._background.TryRemove(t, out _);
                if (t.Exception is { } failure)
                {
                    registry.Log.BackgroundFailed(failure.GetBaseException());
                }
            },
            this,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    private async ValueTask OnTimerAsync(ChannelRef channel)
    {
        var state = await _store.GetAsync(channel.Name).ConfigureAwait(false);
        if (state is null || state.Id != channel.Id)
        {
            // Forgotten meanwhile (by another node, with several): drop what this node still holds of it.
            DisposeTimer(channel.Id);
            StapleTable.Abort(_staples.End(channel.Id));
            _staples.Forget(channel.Id);
            return;
        }

        if (state.Closed)
        {
            // Closed and retained long enough: forget it.
            await ForgetAsync(state).ConfigureAwait(false);
            return;
        }

        // A timer that fired just as h_k extended the deadline: re-arm instead of expiring early.
        var left = ChannelMachine.Lifetime(state, Options) - (TimeProvider.GetUtcNow() - state.Created);
        if (left > TimeSpan.Zero)
        {
            ArmExpiry(state);
            return;
        }

        // A transfer in flight is not cut by the clock: expire when its session ends (PipeIdleTimeout ends a stalled one).
        if (_staples.TryDeferExpiry(channel.Id))
        {
            return;
        }

        await ExpireAsync(channel).ConfigureAwait(false);
    }

    private async ValueTask ExpireIfDeferredAsync(ChannelRef channel, CancellationToken cancellationToken)
    {
        if (_staples.IsExpiryDeferred(channel.Id))
        {
            await ExpireAsync(channel, cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask ExpireAsync(ChannelRef channel, CancellationToken cancellationToken = default)
    {
        var closed = await _store.UpdateAsync(channel.Name, channel.Id, static s => ChannelMachine.Close(s), cancellationToken).ConfigureAwait(false);
        if (closed is { NowClosed: true } transition)
        {
            Metrics.ChannelExpired();
            AfterClose(transition.State, "expired");
        }
    }

    private void AfterClose(ChannelState state, string reason)
    {
        var closed = _closedByCreator.GetOrAdd(state.CreatorKey, static _ => new Queue<ChannelRef>());
        lock (closed)
        {
            closed.Enqueue(new ChannelRef(state.Name, state.Id));
        }

        Log.ChannelClosed(state.Name, reason);
        StapleTable.Abort(_staples.End(state.Id));

        // The node that closes it forgets it after the retention, whichever node created it (and armed its expiry):
        // with several nodes the close often lands elsewhere. Forgetting is idempotent, so two nodes may both try.
        ArmTimer(new ChannelRef(state.Name, state.Id), Options.ClosedRetention);
    }

    /// <summary>Forgets the oldest closed channel <paramref name="key"/> created that is still remembered; false when there is none.</summary>
    private async ValueTask<bool> TryForgetOldestClosedAsync(IPAddress key, CancellationToken cancellationToken)
    {
        if (!_closedByCreator.TryGetValue(key, out var closed))
        {
            return false;
        }

        while (true)
        {
            ChannelRef oldest;
            lock (closed)
            {
                if (!closed.TryDequeue(out oldest))
                {
                    return false;
                }
            }

            // Entries already forgotten by their retention timer are skipped.
            if (await _store.GetAsync(oldest.Name, cancellationToken).ConfigureAwait(false) is { Closed: true } state
                && state.Id == oldest.Id
                && await ForgetAsync(state).ConfigureAwait(false))
            {
                return true;
            }
        }
    }

    /// <summary>Forgets a closed channel after its retention (or to recycle its creator's slot): only now does it stop counting against its creator.</summary>
    private async ValueTask<bool> ForgetAsync(ChannelState state)
    {
        DisposeTimer(state.Id);
        var removed = await _store.RemoveAsync(state.Name, state.Id).ConfigureAwait(false);

        // Whichever node removed it, this one lets go of what it held (its legs were cut when the channel closed).
        _staples.Forget(state.Id);
        if (removed)
        {
            await _limits.ReleaseChannelAsync(state.CreatorKey, state.Id).ConfigureAwait(false);
            Log.ChannelForgotten(state.Name);
            if (_closedByCreator.TryGetValue(state.CreatorKey, out var closed))
            {
                lock (closed)
                {
                    // Channels close and are forgotten in the same order (one retention time), so this one is usually first.
                    if (closed.TryPeek(out var first) && first == new ChannelRef(state.Name, state.Id))
                    {
                        closed.Dequeue();
                    }

                    if (closed.Count == 0)
                    {
                        _closedByCreator.TryRemove(new KeyValuePair<IPAddress, Queue<ChannelRef>>(state.CreatorKey, closed));
                    }
                }
            }

            return true;
        }

        return false;
    }

    private void DisposeTimer(long id)
    {
        if (_timers.TryRemove(id, out var timer))
        {
            timer.Dispose();
        }
    }

    private void DisposeTimers()
    {
        foreach (var id in _timers.Keys)
        {
            DisposeTimer(id);
        }
    }

    private async ValueTask<Outcome<JoinResult>> JoinRecipientAsync(JoinCommand command, IPAddress address, IPAddress key, CancellationToken cancellationToken)
    {
        if (command.Channel is null)
        {
            return RelayErrors.BadRequest("A recipient must name the channel to join.");
        }

        // Past its budget of failed lookups, an address is told "no channel" without a look: it cannot enumerate.
        var existing = await _limits.HasTokenAsync(RateLimit.FailedLookups, key, cancellationToken).ConfigureAwait(false)
            ? await _store.GetAsync(command.Channel, cancellationToken).ConfigureAwait(false)
            : null;
        if (existing is null)
        {
            await _limits.TakeAsync(RateLimit.FailedLookups, key, cancellationToken).ConfigureAwait(false);
            return RelayErrors.NoChannel;
        }

        if (!await _limits.TryTakeAsync(RateLimit.Joins, key, cancellationToken).ConfigureAwait(false))
        {
            return RelayErrors.JoinRate;
        }

        // One uuid for every try of the transition: it must be pure.
        var uuid = command.Uuid ?? ChannelNames.NewUuid();
        var joined = await _store.UpdateAsync(command.Channel, existing.Id, s => ChannelMachine.JoinRecipient(s, address, uuid), cancellationToken).ConfigureAwait(false);
        if (joined is not { Refused: false } transition)
        {
            await _limits.RefundAsync(RateLimit.Joins, key, cancellationToken).ConfigureAwait(false);
            await _limits.TakeAsync(RateLimit.FailedLookups, key, cancellationToken).ConfigureAwait(false);
            return joined?.Error ?? RelayErrors.NoChannel;
        }

        Log.RecipientJoined(command.Channel);
        return new JoinResult(transition.State.ToSnapshot(), uuid, ParticipantRole.Recipient);
    }

    private sealed class TimerState(ChannelRegistry registry, ChannelRef channel)
    {
        public void Fire() => registry.Track(registry.OnTimerAsync(channel));
    }
}

/// <summary>The clock the relay runs on (expiry, hello and long-poll timeouts): the host's <see cref="TimeProvider"/> if registered.</summary>
internal sealed record RelayClock(TimeProvider TimeProvider);

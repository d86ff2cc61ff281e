using System.Net;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Diagnostics;
using CrocNet.Relay.Mesh;
using CrocNet.Relay.Protocol;

namespace CrocNet.Relay.Staple;

/// <summary>
/// Runs one leg over any <see cref="IStapleConnection"/>: reads its hello within <c>HelloTimeout</c>, attaches it to its
/// channel's lane, answers <c>ok</c> or <c>error &lt;code&gt;</c>, then either waits for the peer (freeing the lane when
/// its client leaves or <c>WaitingTimeout</c> passes) or, as the second leg of the lane, pipes the pair to the end.
/// Transport adapters (the TCP listeners, the WebSocket endpoint, later forwarded links) only accept connections and
/// call <see cref="RunAsync"/>.
/// </summary>
internal sealed class StapleSession
{
    private readonly ChannelRegistry _registry;
    private readonly CrocRelayOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly RelayMetrics _metrics;
    private readonly RelayLog _log;

    public StapleSession(ChannelRegistry registry)
    {
        _registry = registry;
        _options = registry.Options;
        _timeProvider = registry.TimeProvider;
        _metrics = registry.Metrics;
        _log = registry.Log;
    }

    /// <summary>
    /// Runs the leg to its end. <paramref name="lane"/> is the leg's lane when its transport fixes it (a TCP port's
    /// index), or <see langword="null"/> when the hello names it (a WebSocket leg; its adapter checks the range).
    /// <paramref name="label"/> names the leg's port (or lane) in logs (a negative label: the hello's lane, once read);
    /// <paramref name="evicted"/> cancels a hello still unread when its pre-hello slot is taken over;
    /// <paramref name="helloDone"/> runs once the hello is read (or not), so the caller can free that slot. Never throws
    /// for a connection's failure.
    /// </summary>
    public async Task RunAsync(IStapleConnection connection, int? lane, int label, IPAddress address, Action? helloDone, CancellationToken evicted, CancellationToken stopping)
    {
        ArgumentNullException.ThrowIfNull(connection);
        StapleAttachment? attachment = null;
        try
        {
            Hello? hello;
            RelayError error;
            try
            {
                using var timeout = new CancellationTokenSource(_options.HelloTimeout, _timeProvider);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, stopping, evicted);
                try
                {
                    (hello, error) = await connection.ReadHelloAsync(linked.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (evicted.IsCancellationRequested && !stopping.IsCancellationRequested)
                {
                    // Its slot went to an address holding fewer: close at once, like a connection over the limit.
                    _log.PendingHelloLimit(label, "gave its slot to another address");
                    _metrics.Refused(RelayWire.Codes.Capacity, connection.TransportName);
                    connection.Abort();
                    return;
                }
                catch (OperationCanceledException) when (timeout.IsCancellationRequested)
                {
                    (hello, error) = (null, new RelayError(RelayErrorCode.Timeout, "No complete hello line in time."));
                }
            }
            finally
            {
                helloDone?.Invoke();
            }

            if (hello is null)
            {
                await RefuseAsync(connection, label, error, null, stopping).ConfigureAwait(false);
                return;
            }

            if ((lane ?? hello.Lane) is not { } legLane)
            {
                await RefuseAsync(connection, label, RelayErrors.BadRequest("The hello needs its lane."), null, stopping).ConfigureAwait(false);
                return;
            }

            if (label < 0)
            {
                label = legLane;
            }

            if (!connection.Authorized && !await _registry.AuthorizeAsync(address, () => _registry.Access.AllowsLeg(hello.Auth, hello.Channel, hello.Uuid), stopping).ConfigureAwait(false))
            {
                await RefuseAsync(connection, label, RelayErrors.Unauthorized, null, stopping).ConfigureAwait(false);
                return;
            }

            // A channel owned by another node: its legs meet there, one hop away (a forwarded leg is never forwarded again).
            if (_registry.Mesh is { } mesh && connection is not MeshStapleConnection)
            {
                MeshRoute route;
                try
                {
                    route = await mesh.RouteAsync(hello.Channel, stopping).ConfigureAwait(false);
                }
                catch (ChannelStoreUnavailableException e)
                {
                    var failure = e.InnerException?.GetType().Name ?? e.GetType().Name;
                    MeshLog.RouteFailed(mesh.Logger, mesh.Settings.NodeId, hello.Channel, failure);
                    await RefuseAsync(connection, label, RelayErrors.Unavailable, hello.Channel, stopping).ConfigureAwait(false);
                    return;
                }

                if (!route.IsLocal)
                {
                    await mesh.ForwardAsync(connection, hello, legLane, address, route, stopping).ConfigureAwait(false);
                    return;
                }
            }

            var outcome = await _registry.AttachAsync(hello.Channel, hello.Uuid, address, legLane, connection, hello.Again, stopping).ConfigureAwait(false);
            if (outcome.Value is not { } attached)
            {
                await RefuseAsync(connection, label, outcome.Error, hello.Channel, stopping).ConfigureAwait(false);
                return;
            }

            attachment = attached;
            var channel = attached.Channel;

            // A waiting leg's time counts from its attach, before the answer, so the clock cannot pass unseen meanwhile.
            using var waitingTimeout = attached.Peer is null ? new CancellationTokenSource(_options.WaitingTimeout, _timeProvider) : null;
            try
            {
                // A lane past its first pair says so: its legs start with a greeting, whatever their client thought.
                await connection.SendLineAsync(attached.Generation > 1 ? RelayWire.Hello.OkAgain : RelayWire.Hello.Ok, stopping).ConfigureAwait(false);
                connection.SetReady(true);
            }
            catch
            {
                connection.SetReady(false);
                throw;
            }

            if (attached.Peer is not IStapleConnection peer)
            {
                // The first of the pair waits, owned by the channel; the second one runs the pipe.
                await WatchWaitingAsync(connection, attached, label, waitingTimeout!, stopping).ConfigureAwait(false);
                return;
            }

            peer.MarkPaired();

            // The waiting leg's watch stops reading first; a reset it consumed makes this pair broken from the start.
            if (!await peer.Ready.ConfigureAwait(false) || !await WatchStoppedAsync(peer).ConfigureAwait(false))
            {
                await _registry.PairBrokenAsync(attached, "a connection failed before it was piped").ConfigureAwait(false);
                connection.Abort();
                return;
            }

            var (sender, recipient) = attached.Role == ParticipantRole.Sender ? (connection, peer) : (peer, connection);
            var (fromSender, fromRecipient, clean) = await StaplePipe.RunAsync(
                sender.Transport,
                recipient.Transport,
                _options.PipeBufferSize,
                _metrics,
                _options.PipeIdleTimeout,
                _timeProvider,
                () => _registry.PairBroken(attached, "no data either way within PipeIdleTimeout"),
                () => _registry.PairBroken(attached, "a piped connection failed"),
                stopping).ConfigureAwait(false);
            if (clean)
            {
                _log.PairFinished(channel.Name, label, fromSender, fromRecipient);
                sender.CloseGracefully();
                recipient.CloseGracefully();
                await _registry.PairFinishedAsync(attached).ConfigureAwait(false);
            }
            else
            {
                // Whoever cut the pair (a close, an expiry, a reset, the pipe's own fault or idle callback) logged why.
                _log.PairCut(channel.Name, label, fromSender, fromRecipient);
                await _registry.PairBrokenAsync(attached, "a piped connection failed").ConfigureAwait(false);
                sender.Abort();
                recipient.Abort();
            }
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or ObjectDisposedException or OperationCanceledException or IOException or InvalidOperationException)
        {
            _log.ConnectionFailed(label, e);
            if (attachment is not null)
            {
                await _registry.LegFailedAsync(attachment, connection).ConfigureAwait(false);
            }

            // Also when the channel no longer held it (its session had ended, or it was detached): never leak a connection.
            connection.Abort();
        }
    }

    /// <summary>
    /// While a leg waits for its peer: frees its lane (so the participant can reconnect) when its client leaves, or when
    /// <c>WaitingTimeout</c> passes unpaired. Watching never consumes payload the client sent early; after such early
    /// bytes only the timeout and pairing are watched.
    /// </summary>
    private async Task WatchWaitingAsync(IStapleConnection connection, StapleAttachment attachment, int label, CancellationTokenSource timeout, CancellationToken stopping)
    {
        try
        {
            await WatchAsync(connection, attachment, label, timeout, stopping).ConfigureAwait(false);
        }
        finally
        {
            connection.MarkWatched();
        }
    }

    private async Task WatchAsync(IStapleConnection connection, StapleAttachment attachment, int label, CancellationTokenSource timeout, CancellationToken stopping)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, stopping);
        var left = connection.ClientLeftAsync(linked.Token).AsTask();
        var first = await Task.WhenAny(left, connection.Paired).ConfigureAwait(false);
        string? reason = null;
        if (first == connection.Paired)
        {
            // The pipe owns the leg now; stop watching (it consumed nothing).
            await linked.CancelAsync().ConfigureAwait(false);
        }
        else if (left.IsCompletedSuccessfully && left.Result)
        {
            reason = "the waiting client closed its connection";
        }
        else if (left.IsCompletedSuccessfully)
        {
            // Early payload: watch only for pairing or the timeout from here on.
            var idle = Task.Delay(Timeout.InfiniteTimeSpan, _timeProvider, linked.Token);
            await Task.WhenAny(idle, connection.Paired).ConfigureAwait(false);
            if (!connection.Paired.IsCompleted && timeout.IsCancellationRequested)
            {
                reason = "no peer within WaitingTimeout";
            }

            await linked.CancelAsync().ConfigureAwait(false);
            await idle.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
        }
        else if (timeout.IsCancellationRequested && !connection.Paired.IsCompleted)
        {
            reason = "no peer within WaitingTimeout";
        }

        // Observe the watch's end (cancelled, failed, or done) so nothing is left unobserved.
        await left.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
        if (reason is not null && _registry.Detach(attachment, connection))
        {
            _log.WaitingDropped(attachment.Channel.Name, label, reason);
            connection.Abort();
        }
    }

    /// <summary>Waits for a waiting leg's watch to stop reading; false when it saw the client's connection fail.</summary>
    private static async Task<bool> WatchStoppedAsync(IStapleConnection peer)
    {
        await peer.Watched.ConfigureAwait(false);
        return !peer.FailedWhileWaiting;
    }

    private async Task RefuseAsync(IStapleConnection connection, int label, RelayError error, string? channel, CancellationToken stopping)
    {
        var code = error.Code.ToWire();
        _metrics.Refused(code, connection.TransportName);
        _log.ConnectionRefused(label, code, channel);
        await connection.RefuseAsync(RelayWire.Hello.ErrorPrefix + code + "\n", stopping).ConfigureAwait(false);
    }
}

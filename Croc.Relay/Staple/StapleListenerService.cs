using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Diagnostics;
using CrocNet.Relay.Net;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using CrocNet.Relay.Protocol;

namespace CrocNet.Relay.Staple;

/// <summary>
/// The relay's own TCP listeners (one per configured port): accepts connections, reads and checks each hello,
/// attaches the connection to its channel and pipes completed pairs. Runs under any host; no Kestrel endpoints.
/// </summary>
internal sealed class StapleListenerService : IHostedService, IAsyncDisposable
{
    private static readonly byte[] OkLine = Encoding.ASCII.GetBytes(RelayWire.Hello.Ok);

    private readonly ChannelRegistry _registry;
    private readonly CrocRelayOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly RelayMetrics _metrics;
    private readonly RelayLog _log;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Socket> _listeners = [];
    private readonly List<Task> _acceptLoops = [];
    private readonly ConcurrentDictionary<Task, byte> _connections = new();
    private readonly Dictionary<IPAddress, LinkedList<PendingHello>> _pendingByAddress = [];
    private readonly Lock _pendingLock = new();
    private readonly AddressCounter _open = new();
    private readonly int _maxConnections;
    private int _pending;
    private int _stopped;

    public StapleListenerService(ChannelRegistry registry)
    {
        _registry = registry;
        _options = registry.Options;
        _timeProvider = registry.TimeProvider;
        _metrics = registry.Metrics;
        _log = registry.Log;
        _maxConnections = _options.MaxConnections ?? FileDescriptorBudget.DefaultConnections(FileDescriptorBudget.Limit, MaxDefaultConnections);
    }

    /// <summary>The cap on the derived default of <see cref="CrocRelayOptions.MaxConnections"/>.</summary>
    internal const int MaxDefaultConnections = 20_000;

    /// <summary>The relay-wide limit on open stapling connections in force (configured or derived).</summary>
    internal int MaxConnections => _maxConnections;

    /// <summary>How many stapling connections are open now.</summary>
    internal int OpenConnections => _open.Total;

    /// <summary>How many accepted connections have not sent their hello yet.</summary>
    internal int PendingHellos
    {
        get
        {
            lock (_pendingLock)
            {
                return _pending;
            }
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        CrocRelayOptionsValidator.ThrowIfInvalid(_options);
        var address = IPAddress.Parse(_options.ListenAddress);
        var ports = new List<int>(_options.Ports.Count);
        try
        {
            foreach (var port in _options.Ports)
            {
                var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                _listeners.Add(listener);
                if (address.Equals(IPAddress.IPv6Any))
                {
                    listener.DualMode = true;
                }

                listener.Bind(new IPEndPoint(address, port));
                listener.Listen(512);
                ports.Add(((IPEndPoint)listener.LocalEndPoint!).Port);
                _log.ListenerStarted(listener.LocalEndPoint!);
            }
        }
        catch
        {
            foreach (var listener in _listeners)
            {
                listener.Dispose();
            }

            _listeners.Clear();
            throw;
        }

        _registry.SetPorts(ports);
        for (var i = 0; i < _listeners.Count; i++)
        {
            _acceptLoops.Add(AcceptLoopAsync(_listeners[i], ports[i], lane: i));
        }

        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var listener in _listeners)
        {
            listener.Dispose();
        }

        await _registry.CloseAllAsync(cancellationToken).ConfigureAwait(false);
        await Task.WhenAll(_acceptLoops).WaitAsync(cancellationToken).ConfigureAwait(false);
        await Task.WhenAll(_connections.Keys).WaitAsync(cancellationToken).ConfigureAwait(false);
        _log.ListenersStopped();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        _stopping.Dispose();
    }

    /// <summary>Accepts on one port; its connections are legs of lane <paramref name="lane"/> (the port's index).</summary>
    private async Task AcceptLoopAsync(Socket listener, int port, int lane)
    {
        await Task.Yield();
        var stopping = _stopping.Token;
        while (!stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
            {
                continue;
            }
            catch (SocketException e)
            {
                // E.g. out of file descriptors: back off briefly instead of spinning.
                _log.AcceptFailed(port, e);
                try
                {
                    await Task.Delay(RelayTimings.AcceptBackoff, _timeProvider, stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            IPAddress address;
            try
            {
                address = RelayAddress.Normalize(((IPEndPoint)socket.RemoteEndPoint!).Address);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                socket.Dispose();
                continue;
            }

            var key = _registry.LimitKey(address);
            if (!_open.TryAcquire(key, _options.MaxConnectionsPerAddress, _maxConnections))
            {
                // Every connection holds a file descriptor: past the limits, close at once (reset), no answer, no task.
                _log.ConnectionLimit(port);
                _metrics.Refused("capacity", "tcp");
                AbortNow(socket);
                continue;
            }

            var connection = new StapleConnection(socket, () => _open.Release(key));
            var pending = TryReservePending(key, out var scope, out var evicted);
            evicted?.Evict();
            if (pending is null)
            {
                // Too many connections without a hello: close at once (reset), no answer, no task.
                _log.PendingHelloLimit(port, scope!);
                _metrics.Refused("capacity", "tcp");
                connection.Abort();
                continue;
            }

            var handler = HandleConnectionAsync(connection, port, lane, address, pending);
            _connections.TryAdd(handler, 0);
            _ = handler.ContinueWith(static (t, state) => ((ConcurrentDictionary<Task, byte>)state!).TryRemove(t, out _), _connections, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    private async Task HandleConnectionAsync(StapleConnection connection, int port, int lane, IPAddress address, PendingHello pending)
    {
        await Task.Yield();
        var socket = connection.Socket;
        StapleAttachment? attachment = null;
        try
        {
            Hello? hello;
            RelayError error;
            try
            {
                socket.NoDelay = true;
                using var timeout = new CancellationTokenSource(_options.HelloTimeout, _timeProvider);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, _stopping.Token, pending.Evicted);
                try
                {
                    (hello, error) = await HelloReader.ReadAsync(socket, linked.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (pending.Evicted.IsCancellationRequested && !_stopping.IsCancellationRequested)
                {
                    // Its slot went to an address holding fewer: close at once, like a connection over the limit.
                    _log.PendingHelloLimit(port, "gave its slot to another address");
                    _metrics.Refused("capacity", "tcp");
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
                ReleasePending(pending);
                pending.Dispose();
            }

            if (hello is null)
            {
                await RefuseAsync(connection, port, error, null).ConfigureAwait(false);
                return;
            }

            var outcome = await _registry.AttachAsync(hello.Channel, hello.Uuid, address, lane, connection, _stopping.Token).ConfigureAwait(false);
            if (outcome.Value is not { } attached)
            {
                await RefuseAsync(connection, port, outcome.Error, hello.Channel).ConfigureAwait(false);
                return;
            }

            attachment = attached;
            var channel = attached.Channel;
            try
            {
                await socket.SendAsync(OkLine, SocketFlags.None, _stopping.Token).ConfigureAwait(false);
                connection.SetReady(true);
            }
            catch
            {
                connection.SetReady(false);
                throw;
            }

            if (attachment.Peer is not StapleConnection peer)
            {
                // The first of the pair waits, owned by the channel; the second one runs the pipe.
                await WatchWaitingAsync(connection, attached, port).ConfigureAwait(false);
                return;
            }

            peer.MarkPaired();
            if (!await peer.Ready.ConfigureAwait(false))
            {
                await _registry.EndConnectionsAsync(channel, "a connection failed before it was piped").ConfigureAwait(false);
                return;
            }

            var (sender, recipient) = attachment.Role == ParticipantRole.Sender ? (connection, peer) : (peer, connection);
            var (fromSender, fromRecipient, clean) = await SocketPipe.RunAsync(
                sender.Socket,
                recipient.Socket,
                _options.PipeBufferSize,
                _metrics,
                _options.PipeIdleTimeout,
                _timeProvider,
                () => _registry.EndConnections(channel, "no data either way within PipeIdleTimeout"),
                () => _registry.EndConnections(channel, "a piped connection failed"),
                _stopping.Token).ConfigureAwait(false);
            if (clean)
            {
                _log.PairFinished(channel.Name, port, fromSender, fromRecipient);
                sender.CloseGracefully();
                recipient.CloseGracefully();
                await _registry.PairFinishedAsync(attached).ConfigureAwait(false);
            }
            else
            {
                // Whoever cut the pair (a close, an expiry, a failure on another port) logged why, once per channel.
                _log.PairCut(channel.Name, port, fromSender, fromRecipient);
                await _registry.EndConnectionsAsync(channel, "a piped connection failed").ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException or IOException)
        {
            _log.ConnectionFailed(port, e);
            if (attachment is not null)
            {
                await _registry.EndConnectionsAsync(attachment.Channel, "a connection failed").ConfigureAwait(false);
            }

            // Also when the channel no longer held it (its session had ended, or it was detached): never leak a socket.
            connection.Abort();
        }
    }

    /// <summary>
    /// While a connection waits for its peer: frees its slot (so the participant can reconnect) when its client closes,
    /// or when <c>WaitingTimeout</c> passes unpaired. EOF is seen with a one-byte peek, which never consumes payload
    /// the client sent early; after such early bytes only the timeout and pairing are watched.
    /// </summary>
    private async Task WatchWaitingAsync(StapleConnection connection, StapleAttachment attachment, int port)
    {
        using var timeout = new CancellationTokenSource(_options.WaitingTimeout, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, _stopping.Token);
        var probe = new byte[1];
        var peek = connection.Socket.ReceiveAsync(probe, SocketFlags.Peek, linked.Token).AsTask();
        var first = await Task.WhenAny(peek, connection.Paired).ConfigureAwait(false);
        string? reason = null;
        if (first == connection.Paired)
        {
            // The pipe owns the socket now; stop the peek (it never consumed anything).
            await linked.CancelAsync().ConfigureAwait(false);
        }
        else if (peek.IsCompletedSuccessfully && peek.Result == 0)
        {
            reason = "the waiting client closed its connection";
        }
        else if (peek.IsCompletedSuccessfully)
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

        // Observe the peek's end (cancelled, failed, or done) so nothing is left unobserved.
        await peek.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
        if (reason is not null && _registry.Detach(attachment, connection))
        {
            _log.WaitingDropped(attachment.Channel.Name, port, reason);
            connection.Abort();
        }
    }

    private async Task RefuseAsync(StapleConnection connection, int port, RelayError error, string? channel)
    {
        var code = error.Code.ToWire();
        _metrics.Refused(code, "tcp");
        _log.ConnectionRefused(port, code, channel);
        var socket = connection.Socket;
        try
        {
            using var linger = new CancellationTokenSource(RelayTimings.RefusalLinger, _timeProvider);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(linger.Token, _stopping.Token);
            try
            {
                await socket.SendAsync(Encoding.ASCII.GetBytes(RelayWire.Hello.ErrorPrefix + code + "\n"), SocketFlags.None, linked.Token).ConfigureAwait(false);
                socket.Shutdown(SocketShutdown.Send);

                // Closing with unread input would send a reset that can overtake the error line: drain a little first.
                var sink = new byte[4096];
                for (var drained = 0; drained < 64 * 1024;)
                {
                    var read = await socket.ReceiveAsync(sink, SocketFlags.None, linked.Token).ConfigureAwait(false);
                    if (read == 0)
                    {
                        break;
                    }

                    drained += read;
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                // The client went away or would not stop talking; it has had its answer.
            }
        }
        finally
        {
            connection.CloseGracefully();
        }
    }

    /// <summary>
    /// Reserves a pre-hello slot for <paramref name="key"/>; returns <see langword="null"/> and which limit refused it
    /// when none is free. When the relay-wide slots are all taken, an address that holds fewer than the address holding
    /// the most (by more than one) takes that address's oldest slot: <paramref name="evicted"/> is the connection to close.
    /// </summary>
    private PendingHello? TryReservePending(IPAddress key, out string? scope, out PendingHello? evicted)
    {
        evicted = null;
        lock (_pendingLock)
        {
            _pendingByAddress.TryGetValue(key, out var mine);
            var count = mine?.Count ?? 0;
            if (count >= _options.MaxPendingHellosPerAddress)
            {
                scope = "per address";
                return null;
            }

            if (_pending >= _options.MaxPendingHellos)
            {
                LinkedList<PendingHello>? heaviest = null;
                foreach (var list in _pendingByAddress.Values)
                {
                    if (heaviest is null || list.Count > heaviest.Count)
                    {
                        heaviest = list;
                    }
                }

                if (heaviest is null || heaviest.Count <= count + 1)
                {
                    scope = "relay-wide";
                    return null;
                }

                evicted = heaviest.First!.Value;
                RemoveLocked(evicted);
            }

            if (mine is null)
            {
                mine = new LinkedList<PendingHello>();
                _pendingByAddress[key] = mine;
            }

            var entry = new PendingHello(key);
            entry.Node = mine.AddLast(entry);
            _pending++;
            scope = null;
            return entry;
        }
    }

    private void ReleasePending(PendingHello entry)
    {
        lock (_pendingLock)
        {
            RemoveLocked(entry);
        }
    }

    private void RemoveLocked(PendingHello entry)
    {
        if (entry.Node is not { List: { } list } node)
        {
            return;
        }

        list.Remove(node);
        entry.Node = null;
        _pending--;
        if (list.Count == 0)
        {
            _pendingByAddress.Remove(entry.Key);
        }
    }

    private static void AbortNow(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already gone.
        }

        socket.Dispose();
    }

    /// <summary>A connection's pre-hello slot; cancelled when another address takes the slot over.</summary>
    private sealed class PendingHello(IPAddress key) : IDisposable
    {
        private readonly CancellationTokenSource _evicted = new();

        public IPAddress Key { get; } = key;

        /// <summary>Where the entry sits in its address's list (oldest first); <see langword="null"/> once released.</summary>
        public LinkedListNode<PendingHello>? Node { get; set; }

        public CancellationToken Evicted => _evicted.Token;

        public void Evict()
        {
            try
            {
                _evicted.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Its connection already finished its hello.
            }
        }

        public void Dispose() => _evicted.Dispose();
    }
}

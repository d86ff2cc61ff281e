using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Diagnostics;
using CrocNet.Relay.Net;
using CrocNet.Relay.Protocol;
using Microsoft.Extensions.Hosting;

namespace CrocNet.Relay.Staple;

/// <summary>
/// The relay's own TCP listeners (one per configured port; port <c>i</c> serves lane <c>i</c>): accepts connections,
/// applies the connection and pre-hello limits, and hands each socket to <see cref="StapleSession"/> as a
/// <see cref="SocketStapleConnection"/>. Runs under any host; no Kestrel endpoints. It also holds what legs of every
/// transport share: the <see cref="StapleAdmission"/> budget, the session and the stopping signal (WebSocket legs,
/// accepted on the HTTP endpoint, use them too).
/// </summary>
internal sealed class StapleListenerService : IHostedService, IAsyncDisposable
{
    private readonly ChannelRegistry _registry;
    private readonly StapleSession _session;
    private readonly CrocRelayOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly RelayMetrics _metrics;
    private readonly RelayLog _log;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Socket> _listeners = [];
    private readonly List<Task> _acceptLoops = [];
    private readonly ConcurrentDictionary<Task, SocketStapleConnection> _connections = new();
    private readonly StapleAdmission _admission;
    private int _stopped;
    private int _running;

    public StapleListenerService(ChannelRegistry registry)
    {
        _registry = registry;
        _options = registry.Options;
        _timeProvider = registry.TimeProvider;
        _metrics = registry.Metrics;
        _log = registry.Log;
        _session = new StapleSession(registry);
        _admission = new StapleAdmission(_options, _options.MaxConnections ?? FileDescriptorBudget.DefaultConnections(FileDescriptorBudget.Limit, MaxDefaultConnections));
    }

    /// <summary>The cap on the derived default of <see cref="CrocRelayOptions.MaxConnections"/>.</summary>
    internal const int MaxDefaultConnections = 20_000;

    /// <summary>The relay-wide limit on open stapling connections in force (configured or derived).</summary>
    internal int MaxConnections => _admission.MaxConnections;

    /// <summary>How many stapling connections (TCP and WebSocket legs) are open now.</summary>
    internal int OpenConnections => _admission.OpenConnections;

    /// <summary>Whether the relay has started its legs' service and not stopped it (also for a relay without TCP listeners).</summary>
    internal bool Running => Volatile.Read(ref _running) == 1;

    /// <summary>The accept loops, one per port (the health check watches for one that ended while the relay runs).</summary>
    internal IReadOnlyList<Task> AcceptLoops => _acceptLoops;

    /// <summary>How many accepted connections (TCP and WebSocket legs) have not sent their hello yet.</summary>
    internal int PendingHellos => _admission.PendingHellos;

    /// <summary>The connection and pre-hello budget that TCP and WebSocket legs share.</summary>
    internal StapleAdmission Admission => _admission;

    /// <summary>The session that runs every leg.</summary>
    internal StapleSession Session => _session;

    /// <summary>Cancelled when the relay stops: every leg ends.</summary>
    internal CancellationToken Stopping => _stopping.Token;

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
        Volatile.Write(ref _running, 1);
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

        Volatile.Write(ref _running, 0);
        await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var listener in _listeners)
        {
            listener.Dispose();
        }

        await _registry.CloseAllAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_acceptLoops).WaitAsync(cancellationToken).ConfigureAwait(false);
            await Task.WhenAll(_connections.Keys).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The host's shutdown time ran out: the listeners are closed and every channel's legs were cut above, so
            // what still runs is ending; a stop that throws would only fail the host's shutdown (and its disposal).
            foreach (var connection in _connections.Values)
            {
                connection.Abort();
            }

            _log.StopTimedOut(_connections.Count);
            return;
        }

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
                _metrics.AcceptFailed(_timeProvider);
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

            // A trusted proxy carries many clients: only the relay-wide caps apply to it (its clients' addresses, from
            // the PROXY protocol header, count for the IP rule and the per-channel limits).
            var proxy = _options.ProxyProtocol && _registry.Addresses.IsTrustedProxy(address);
            if (!_admission.TryOpen(key, proxy))
            {
                // Every connection holds a file descriptor: past the limits, close at once (reset), no answer, no task.
                _log.ConnectionLimit(port);
                _metrics.Refused("capacity", "tcp");
                SocketReset.Abort(socket);
                continue;
            }

            var connection = new SocketStapleConnection(socket, _timeProvider, () => _admission.Close(key));
            var pending = _admission.TryReservePending(key, out var scope, out var evicted, proxy);
            evicted?.Evict();
            if (pending is null)
            {
                // Too many connections without a hello: close at once (reset), no answer, no task.
                _log.PendingHelloLimit(port, scope!);
                _metrics.Refused("capacity", "tcp");
                connection.Abort();
                continue;
            }

            var handler = RunAsync(connection, port, lane, address, pending);
            _connections.TryAdd(handler, connection);
            _ = handler.ContinueWith(static (t, state) => ((ConcurrentDictionary<Task, SocketStapleConnection>)state!).TryRemove(t, out _), _connections, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    private async Task RunAsync(SocketStapleConnection connection, int port, int lane, IPAddress address, PendingHello pending)
    {
        await Task.Yield();
        try
        {
            connection.Socket.NoDelay = true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            ReleasePending(pending);
            pending.Dispose();
            connection.Abort();
            return;
        }

        if (_options.ProxyProtocol && _registry.Addresses.IsTrustedProxy(address))
        {
            // Behind a PROXY-protocol load balancer, its connections start with a header naming the client (required).
            var (source, error) = await ProxyProtocol.ReadSourceAsync(connection.Socket, address, _options.HelloTimeout, _timeProvider, pending.Evicted, _stopping.Token).ConfigureAwait(false);
            if (source is null)
            {
                _log.ProxyHeaderRefused(port, address, error);
                _metrics.Refused(RelayWire.Codes.BadRequest, connection.TransportName);
                ReleasePending(pending);
                pending.Dispose();
                await connection.RefuseAsync(RelayWire.Hello.ErrorPrefix + RelayWire.Codes.BadRequest + "\n", _stopping.Token).ConfigureAwait(false);
                return;
            }

            address = source;
        }

        await _session.RunAsync(
            connection,
            lane,
            port,
            address,
            () =>
            {
                ReleasePending(pending);
                pending.Dispose();
            },
            pending.Evicted,
            _stopping.Token).ConfigureAwait(false);
    }

    private void ReleasePending(PendingHello entry) => _admission.ReleasePending(entry);
}

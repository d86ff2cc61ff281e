using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Net;
using CrocNet.Relay.Protocol;
using CrocNet.Relay.Staple;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CrocNet.Relay.Mesh;

/// <summary>
/// This node's side of the mesh: announces the node in the directory every heartbeat (removing it on a clean stop)
/// and, with a mesh secret, listens for links from other nodes. Each link is authenticated (<see cref="MeshLink"/>),
/// then its forwarded hello runs as an ordinary leg of this node (<see cref="MeshStapleConnection"/> into
/// <see cref="StapleSession.RunAsync"/>), counted by the client's own address. Without a secret the node starts only
/// when no other node is announced: several nodes without a secret cannot meet their legs.
/// </summary>
internal sealed class MeshListenerService : IHostedService, IAsyncDisposable
{
    /// <summary>How many links may be in their handshake at once; more are closed at once.</summary>
    internal const int MaxPendingLinks = 256;

    private static readonly HashSet<string> KnownTransports = new(StringComparer.Ordinal) { "tcp", "ws", "pipe" };

    private readonly MeshRouter _router;
    private readonly MeshSettings _settings;
    private readonly StapleListenerService _legs;
    private readonly ChannelRegistry _registry;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Task, byte> _work = new();
    private Socket? _listener;
    private Task _accepting = Task.CompletedTask;
    private Task _beating = Task.CompletedTask;
    private int _pending;
    private int _stopped;

    public MeshListenerService(MeshRouter router, StapleListenerService legs, ChannelRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(router);
        ArgumentNullException.ThrowIfNull(legs);
        ArgumentNullException.ThrowIfNull(registry);
        _router = router;
        _settings = router.Settings;
        _legs = legs;
        _registry = registry;
        _logger = router.Logger;
    }

    /// <summary>The endpoint this node announces (<c>host:port</c>), or empty without a mesh secret.</summary>
    public string Advertised { get; private set; } = string.Empty;

    /// <summary>The bound link endpoint, or <see langword="null"/> without a mesh secret.</summary>
    public IPEndPoint? EndPoint => _listener?.LocalEndPoint as IPEndPoint;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_settings.Secret is null)
        {
            IReadOnlyList<string> others;
            try
            {
                others = await _router.Directory.OtherNodesAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ChannelStoreUnavailableException)
            {
                // The store is down: the relay starts anyway (it answers 503 until the store returns).
                others = [];
            }

            if (others.Count > 0)
            {
                throw new InvalidOperationException(FormattableString.Invariant(
                    $"Other relay nodes share this channel store ({others.Count} announced), but this node has no mesh secret: data connections landing on different nodes could never meet. Set the same MeshSecret on every node (or run one node only)."));
            }
        }
        else
        {
            var listener = new Socket(_settings.ListenAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                if (_settings.ListenAddress.Equals(IPAddress.IPv6Any))
                {
                    listener.DualMode = true;
                }

                listener.Bind(new IPEndPoint(_settings.ListenAddress, _settings.Port));
                listener.Listen(256);
            }
            catch
            {
                listener.Dispose();
                throw;
            }

            _listener = listener;
            var bound = (IPEndPoint)listener.LocalEndPoint!;
            var host = _settings.AdvertisedHost ?? bound.Address.ToString();
            Advertised = (host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[') ? "[" + host + "]" : host) + ":" + bound.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            MeshLog.Listening(_logger, _settings.NodeId, bound, Advertised);
            _accepting = AcceptLoopAsync(listener);
        }

        await BeatOnceAsync(cancellationToken).ConfigureAwait(false);
        _beating = BeatLoopAsync();
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        await _accepting.ConfigureAwait(false);
        await _beating.ConfigureAwait(false);
        try
        {
            await _router.Directory.LeaveAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ChannelStoreUnavailableException or OperationCanceledException)
        {
            // The entry expires on its own within a few heartbeats.
        }

        MeshLog.Stopped(_logger, _settings.NodeId);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);

        // Legs still running end with the relay's legs (their stopping signal), before the container disposes this.
        await Task.WhenAll(_work.Keys).ConfigureAwait(false);
        _stopping.Dispose();
    }

    private async Task BeatLoopAsync()
    {
        using var timer = new PeriodicTimer(_settings.Heartbeat, _registry.TimeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                await BeatOnceAsync(_stopping.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private async Task BeatOnceAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _router.Directory.BeatAsync(Advertised, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelStoreUnavailableException e)
        {
            var failure = e.InnerException?.GetType().Name ?? e.GetType().Name;
            MeshLog.HeartbeatFailed(_logger, _settings.NodeId, failure);
        }
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket link;
            try
            {
                link = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }

            if (Interlocked.Increment(ref _pending) > MaxPendingLinks)
            {
                Interlocked.Decrement(ref _pending);
                MeshLog.LinkRefused(_logger, _settings.NodeId, SafeRemote(link), "too many links in their handshake");
                SocketReset.Abort(link);
                continue;
            }

            link.NoDelay = true;
            Track(ServeAsync(link));
        }
    }

    private void Track(Task work)
    {
        _work.TryAdd(work, 0);
        _ = work.ContinueWith(t => _work.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task ServeAsync(Socket link)
    {
        var remote = SafeRemote(link);
        Hello hello;
        int lane;
        IPAddress address;
        string transport;
        string forwarder;
        var released = 0;
        void Release()
        {
            if (Interlocked.Exchange(ref released, 1) == 0)
            {
                Interlocked.Decrement(ref _pending);
            }
        }

        try
        {
            using var timeout = new CancellationTokenSource(_registry.Options.HelloTimeout, _registry.TimeProvider);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, _stopping.Token);
            try
            {
                forwarder = await MeshLink.AcceptAsync(link, _settings.Secret!, _settings.NodeId, linked.Token).ConfigureAwait(false);
                var line = await MeshLink.ReadLineAsync(link, MeshLink.MaxHelloLine, linked.Token).ConfigureAwait(false);
                if (Parse(line) is not { } parsed)
                {
                    MeshLog.LinkRefused(_logger, _settings.NodeId, remote, "the forwarded hello is malformed");
                    await MeshLink.WriteLineAsync(link, RelayWire.Hello.ErrorPrefix + RelayWire.Codes.BadRequest, linked.Token).ConfigureAwait(false);
                    link.Dispose();
                    return;
                }

                (hello, lane, address, transport) = parsed;
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested)
            {
                throw new MeshLinkException("no complete handshake in time");
            }
        }
        catch (Exception e) when (e is MeshLinkException or SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            if (e is MeshLinkException)
            {
                _router.LinkRefused();
                _registry.Metrics.Refused(RelayWire.Codes.Unauthorized, "mesh");
            }

            MeshLog.LinkRefused(_logger, _settings.NodeId, remote, e is MeshLinkException ? e.Message : e.GetType().Name);
            SocketReset.Abort(link);
            return;
        }
        finally
        {
            Release();
        }

        _router.LegAccepted();
        MeshLog.Accepted(_logger, _settings.NodeId, hello.Channel, lane, forwarder);
        var connection = new MeshStapleConnection(link, hello, transport, _registry.TimeProvider);
        await _legs.Session.RunAsync(connection, lane, lane, address, null, CancellationToken.None, _legs.Stopping).ConfigureAwait(false);
    }

    /// <summary>The forwarded hello, checked as strictly as a client's; <see langword="null"/> when it is not one.</summary>
    internal static (Hello Hello, int Lane, IPAddress Address, string Transport)? Parse(string line)
    {
        ForwardedHello? dto;
        try
        {
            dto = JsonSerializer.Deserialize(line, MeshJsonContext.Default.ForwardedHello);
        }
        catch (JsonException)
        {
            return null;
        }

        if (dto is not { Channel: { } channel, Uuid: { Length: > 0 and <= 128 } uuid, Lane: >= 0 and < 1024, Address: { } text }
            || !ChannelNames.IsValid(channel)
            || !IPAddress.TryParse(text, out var address))
        {
            return null;
        }

        var transport = dto.Transport is { } name && KnownTransports.Contains(name) ? name : "mesh";
        return (new Hello(channel, uuid, dto.Lane, Again: dto.Again == true), dto.Lane, address, transport);
    }

    private static EndPoint? SafeRemote(Socket socket)
    {
        try
        {
            return socket.RemoteEndPoint;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return null;
        }
    }
}

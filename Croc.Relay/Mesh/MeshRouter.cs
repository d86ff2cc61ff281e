using System.Globalization;
using System.Net;
using System.Net.Sockets;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Diagnostics;
using CrocNet.Relay.Net;
using CrocNet.Relay.Protocol;
using CrocNet.Relay.Staple;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CrocNet.Relay.Mesh;

/// <summary>
/// The routing seam between a leg's authorized hello and its attach: asks the directory where the channel's legs meet
/// and, when that is another node, forwards the leg there one hop over an authenticated link, relaying the owner's
/// answer in the client's own transport and then piping bytes both ways (a break on either side cuts the other). Only
/// registered with a shared store; without it every leg is attached where it lands.
/// </summary>
internal sealed class MeshRouter
{
    private readonly IMeshDirectory _directory;
    private readonly CrocRelayOptions _options;
    private readonly TimeProvider _time;
    private readonly RelayMetrics _metrics;
    private readonly ILogger _logger;
    private long _forwardedLegs;
    private long _forwardedBytes;
    private long _refusedLinks;
    private long _acceptedLegs;

    public MeshRouter(IMeshDirectory directory, MeshSettings settings, IOptions<CrocRelayOptions> options, RelayClock clock, RelayMetrics metrics, ILogger<MeshRouter>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(clock);
        _directory = directory;
        Settings = settings;
        _options = options.Value;
        _time = clock.TimeProvider;
        _metrics = metrics;
        _logger = logger ?? (ILogger)NullLogger.Instance;
    }

    public MeshSettings Settings { get; }

    public IMeshDirectory Directory => _directory;

    internal ILogger Logger => _logger;

    /// <summary>Legs this node forwarded to an owner that answered (tests, diagnostics).</summary>
    public long ForwardedLegs => Interlocked.Read(ref _forwardedLegs);

    /// <summary>Bytes this node moved through forwarded legs, both directions.</summary>
    public long ForwardedBytes => Interlocked.Read(ref _forwardedBytes);

    /// <summary>Links this node refused or closed for a failed handshake, either side.</summary>
    public long RefusedLinks => Interlocked.Read(ref _refusedLinks);

    /// <summary>Forwarded legs this node accepted as the owner.</summary>
    public long AcceptedLegs => Interlocked.Read(ref _acceptedLegs);

    internal void LinkRefused() => Interlocked.Increment(ref _refusedLinks);

    internal void LegAccepted() => Interlocked.Increment(ref _acceptedLegs);

    /// <summary>Where the legs of <paramref name="channel"/> meet; local without a mesh secret (one node).</summary>
    public async ValueTask<MeshRoute> RouteAsync(string channel, CancellationToken cancellationToken)
        => Settings.Secret is null ? MeshRoute.Local : await _directory.RouteAsync(channel, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// Forwards an authorized leg to its owner and runs it to the end. Never throws for a connection's failure: a link
    /// that cannot be made or authenticated refuses the leg with <c>error unavailable</c> (the client re-dials).
    /// </summary>
    public async Task ForwardAsync(IStapleConnection connection, Hello hello, int lane, IPAddress address, MeshRoute route, CancellationToken stopping)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(hello);
        var secret = Settings.Secret!;
        Socket? link = null;
        string answer;
        try
        {
            using var timeout = new CancellationTokenSource(_options.HelloTimeout, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, stopping);
            link = await DialAsync(route.Endpoint!, linked.Token).ConfigureAwait(false);
            await MeshLink.ConnectAsync(link, secret, Settings.NodeId, route.Owner, linked.Token).ConfigureAwait(false);
            var forwarded = new ForwardedHello
            {
                Channel = hello.Channel,
                Uuid = hello.Uuid,
                Lane = lane,
                Address = address.ToString(),
                Transport = connection.TransportName,
                Again = hello.Again ? true : null,
            };
            await MeshLink.WriteLineAsync(link, System.Text.Json.JsonSerializer.Serialize(forwarded, MeshJsonContext.Default.ForwardedHello), linked.Token).ConfigureAwait(false);
            answer = await MeshLink.ReadLineAsync(link, MeshLink.MaxAnswerLine, linked.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException or ArgumentException)
        {
            if (e is MeshLinkException)
            {
                LinkRefused();
            }

            MeshLog.ForwardFailed(_logger, Settings.NodeId, hello.Channel, route.Owner, e is MeshLinkException ? e.Message : e.GetType().Name);
            SocketReset.Abort(link);
            _metrics.Refused(RelayWire.Codes.Unavailable, connection.TransportName);
            await RefuseQuietlyAsync(connection, RelayWire.Hello.ErrorPrefix + RelayWire.Codes.Unavailable + "\n", stopping).ConfigureAwait(false);
            return;
        }

        MeshLog.Forwarded(_logger, Settings.NodeId, hello.Channel, lane, route.Owner, answer);
        var accepted = answer + "\n" is RelayWire.Hello.Ok or RelayWire.Hello.OkAgain;
        if (!accepted)
        {
            // The owner refused (and counted) it; relay its answer as it is, in the client's transport.
            SocketReset.Abort(link);
            var line = answer.StartsWith(RelayWire.Hello.ErrorPrefix, StringComparison.Ordinal) ? answer : RelayWire.Hello.ErrorPrefix + RelayWire.Codes.Unavailable;
            await RefuseQuietlyAsync(connection, line + "\n", stopping).ConfigureAwait(false);
            return;
        }

        Interlocked.Increment(ref _forwardedLegs);
        await PipeAsync(connection, link, answer + "\n", stopping).ConfigureAwait(false);
    }

    private async Task PipeAsync(IStapleConnection connection, Socket link, string answer, CancellationToken stopping)
    {
        var cut = 0;
        void Cut()
        {
            if (Interlocked.Exchange(ref cut, 1) == 0)
            {
                connection.Abort();
                SocketReset.Abort(link);
            }
        }

        try
        {
            // The owner's own answer (ok, or ok again for a lane past its first pair), in the client's transport.
            await connection.SendLineAsync(answer, stopping).ConfigureAwait(false);
            connection.SetReady(true);

            // The owner runs the leg's timeouts (waiting, idle); this one is a backstop for a link that went silent.
            var idle = _options.PipeIdleTimeout + _options.WaitingTimeout;
            var (up, down, clean) = await StaplePipe.RunAsync(
                connection.Transport, new SocketTransport(link), _options.PipeBufferSize, _metrics, idle, _time, Cut, Cut, stopping).ConfigureAwait(false);
            Interlocked.Add(ref _forwardedBytes, up + down);
            if (clean)
            {
                connection.CloseGracefully();
                link.Dispose();
            }
            else
            {
                Cut();
            }
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            Cut();
        }
    }

    private static async Task<Socket> DialAsync(string endpoint, CancellationToken cancellationToken)
    {
        var colon = endpoint.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(endpoint.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is 0 or > 65535)
        {
            throw new MeshLinkException("the owner's directory entry is not a host:port endpoint");
        }

        var host = endpoint[..colon].Trim('[', ']');
        var socket = IPAddress.TryParse(host, out var ip) ? new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp) : new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.NoDelay = true;
            if (ip is not null)
            {
                await socket.ConnectAsync(new IPEndPoint(ip, port), cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await socket.ConnectAsync(host, port, cancellationToken).ConfigureAwait(false);
            }

            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static async Task RefuseQuietlyAsync(IStapleConnection connection, string line, CancellationToken stopping)
    {
        try
        {
            await connection.RefuseAsync(line, stopping).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            connection.Abort();
        }
    }
}

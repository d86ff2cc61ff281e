using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace CrocNet.Transport;

/// <summary>
/// Opens each lane over the transport <see cref="CrocOptions.Transport"/> asks for. <see cref="CrocTransport.Auto"/>
/// decides per lane: TCP when the relay offers ports and the lane's TCP connect succeeds within
/// <see cref="AutoTcpBound"/> (the connect only, never the hello), else a WebSocket when the relay takes them. A lane
/// that a relay refuses (its hello answered <c>error</c>) never falls back: the refusal stands. Lanes decide apart
/// because the relay pairs a TCP leg with a WebSocket leg of the same lane, so two sides (or two lanes) may differ.
/// </summary>
internal sealed class ChoosingStapleTransport : IStapleTransport
{
    /// <summary>How long <see cref="CrocTransport.Auto"/> gives a TCP connect before it takes a WebSocket instead.</summary>
    public static readonly TimeSpan AutoTcpBound = TimeSpan.FromSeconds(2);

    private readonly CrocTransport _mode;
    private readonly IStapleTransport _webSocket;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public ChoosingStapleTransport(CrocTransport mode, IStapleTransport webSocket, TimeProvider time, ILogger logger)
    {
        _mode = mode;
        _webSocket = webSocket;
        _time = time;
        _logger = logger;
    }

    /// <summary>Fails before any leg opens when the forced transport is one the relay does not offer.</summary>
    public static void Check(CrocTransport mode, StapleTarget target, string relay)
    {
        if (mode == CrocTransport.Tcp && target.Ports.Count == 0)
        {
            throw new CrocRelayException(
                CrocErrorCode.RelayRefused,
                $"The relay at {relay} offers no TCP data ports (it takes WebSocket legs only), and Transport is Tcp. Use Transport Auto or WebSocket.");
        }

        if (mode == CrocTransport.WebSocket && !target.WebSockets)
        {
            throw new CrocRelayException(
                CrocErrorCode.RelayRefused,
                $"The relay at {relay} does not take WebSocket legs (an older relay, or WebSockets turned off), and Transport is WebSocket. Use Transport Auto or Tcp.");
        }
    }

    /// <summary>A lane that broke goes back over the kind of leg it had: <see cref="CrocTransport.Auto"/> decided once.</summary>
    public async ValueTask<Stream> ReconnectAsync(StapleTarget target, int lane, StapleTicket ticket, Stream previous, CancellationToken cancellationToken)
    {
        if (previous is WebSocketLegStream)
        {
            return await _webSocket.ConnectAsync(target, lane, ticket, cancellationToken).ConfigureAwait(false);
        }

        if (_mode == CrocTransport.WebSocket || target.Ports.Count == 0)
        {
            // Not a leg this transport opened (a test's stream, say): choose afresh.
            return await ConnectAsync(target, lane, ticket, cancellationToken).ConfigureAwait(false);
        }

        var socket = await TcpStapleTransport.OpenAsync(target, lane, null, _time, cancellationToken).ConfigureAwait(false);
        return await TcpStapleTransport.HelloAsync(socket, lane, ticket, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<Stream> ConnectAsync(StapleTarget target, int lane, StapleTicket ticket, CancellationToken cancellationToken)
    {
        var tcp = _mode switch
        {
            CrocTransport.Tcp => true,
            CrocTransport.WebSocket => false,
            _ => target.Ports.Count > 0,
        };
        if (!tcp)
        {
            return await _webSocket.ConnectAsync(target, lane, ticket, cancellationToken).ConfigureAwait(false);
        }

        // Only Auto with WebSockets to fall back on bounds the connect; otherwise TCP is all there is.
        var fallback = _mode == CrocTransport.Auto && target.WebSockets;
        Socket socket;
        try
        {
            socket = await TcpStapleTransport.OpenAsync(target, lane, fallback ? AutoTcpBound : null, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (fallback && ex is SocketException or TcpConnectTimeoutException)
        {
            Diagnostics.Log.TcpFallback(_logger, lane + 1, ex is SocketException socketError ? socketError.SocketErrorCode.ToString() : "timeout");
            return await _webSocket.ConnectAsync(target, lane, ticket, cancellationToken).ConfigureAwait(false);
        }

        return await TcpStapleTransport.HelloAsync(socket, lane, ticket, cancellationToken).ConfigureAwait(false);
    }
}

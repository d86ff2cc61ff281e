using System.Net;
using System.Net.Sockets;

namespace CrocNet.Cli.Discovery;

/// <summary>
/// Runs beside the embedded relay of <c>croc send</c>: answers a discovery query for this sender's channel with
/// where the relay is, and ignores everything else (other channels, malformed or oversize datagrams, bursts).
/// </summary>
internal sealed class DiscoveryResponder : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly string _channel;
    private readonly byte[] _reply;
    private readonly DiscoveryRateLimiter _limiter;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    private DiscoveryResponder(Socket socket, string channel, byte[] reply, DiscoveryRateLimiter limiter)
    {
        _socket = socket;
        _channel = channel;
        _reply = reply;
        _limiter = limiter;
        LocalEndPoint = (IPEndPoint)socket.LocalEndPoint!;
        _loop = Task.Run(() => AnswerAsync(_stop.Token), CancellationToken.None);
    }

    /// <summary>Where it listens (the actual port when started on port 0).</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Listens on <paramref name="listen"/>; throws <see cref="SocketException"/> when the port is taken.</summary>
    /// <param name="listen">Usually 0.0.0.0:9009 (broadcasts only reach a socket bound to the wildcard address).</param>
    /// <param name="channel">The channel this sender uses; queries for any other are ignored.</param>
    /// <param name="relay">The relay URL to announce; the receiver replaces its host with the address the answer came from.</param>
    /// <param name="limiter">How often it may answer (default: <see cref="DiscoveryRateLimiter"/> on the system clock).</param>
    public static DiscoveryResponder Start(IPEndPoint listen, string channel, Uri relay, DiscoveryRateLimiter? limiter = null)
    {
        ArgumentNullException.ThrowIfNull(listen);
        var reply = DiscoveryDatagram.Reply(channel, relay);
        var socket = new Socket(listen.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            socket.Bind(listen);
            return new DiscoveryResponder(socket, channel, reply, limiter ?? new DiscoveryRateLimiter(TimeProvider.System));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _socket.Dispose();
        await _loop;
        _stop.Dispose();
    }

    private async Task AnswerAsync(CancellationToken cancellationToken)
    {
        // One byte more than allowed, so an oversize datagram is seen as such (Linux truncates silently).
        var buffer = new byte[DiscoveryDatagram.MaxLength + 1];
        EndPoint any = new IPEndPoint(_socket.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
        while (!cancellationToken.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, any, cancellationToken);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException ex) when (IsTransient(ex))
            {
                continue;
            }
            catch (SocketException)
            {
                // Discovery is a convenience: if the socket breaks, the sender goes on without it.
                return;
            }

            if (received.RemoteEndPoint is not IPEndPoint source
                || source.Port == 0
                || !DiscoveryDatagram.TryParseQuery(buffer.AsSpan(0, received.ReceivedBytes), out var channel)
                || !string.Equals(channel, _channel, StringComparison.Ordinal)
                || !_limiter.TryAcquire(source.Address))
            {
                continue;
            }

            try
            {
                await _socket.SendToAsync(_reply, SocketFlags.None, source, cancellationToken);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                // The asker is unreachable from here; nothing to do.
            }
        }
    }

    /// <summary>Errors about one datagram (an oversize one on Windows, an ICMP error for an earlier answer), not the socket.</summary>
    internal static bool IsTransient(SocketException ex) =>
        ex.SocketErrorCode is SocketError.MessageSize or SocketError.ConnectionReset or SocketError.ConnectionRefused
            or SocketError.HostUnreachable or SocketError.NetworkUnreachable;
}

using System.Net.Sockets;
using System.Text;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Net;

namespace CrocNet.Relay.Staple;

/// <summary>A leg over a TCP socket: the relay's own stapling listeners accept these.</summary>
internal sealed class SocketStapleConnection : StapleConnectionBase
{
    private readonly SocketTransport _transport;
    private readonly TimeProvider _timeProvider;

    public SocketStapleConnection(Socket socket, TimeProvider timeProvider, Action? onClosed = null)
        : base(onClosed)
    {
        Socket = socket;
        _transport = new SocketTransport(socket);
        _timeProvider = timeProvider;
    }

    public Socket Socket { get; }

    public override IStapleTransport Transport => _transport;

    public override string TransportName => "tcp";

    public override ValueTask<(Hello? Hello, RelayError Error)> ReadHelloAsync(CancellationToken cancellationToken)
        => HelloReader.ReadAsync(Socket, cancellationToken);

    public override async ValueTask SendLineAsync(string line, CancellationToken cancellationToken)
        => await _transport.WriteAsync(Encoding.ASCII.GetBytes(line), cancellationToken).ConfigureAwait(false);

    public override async ValueTask RefuseAsync(string line, CancellationToken cancellationToken)
    {
        using var linger = new CancellationTokenSource(Protocol.RelayTimings.RefusalLinger, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(linger.Token, cancellationToken);
        try
        {
            await _transport.WriteAsync(Encoding.ASCII.GetBytes(line), linked.Token).ConfigureAwait(false);
            Socket.Shutdown(SocketShutdown.Send);

            // Closing with unread input would send a reset that can overtake the error line: drain a little first.
            var sink = new byte[4096];
            for (var drained = 0; drained < 64 * 1024;)
            {
                var read = await Socket.ReceiveAsync(sink, SocketFlags.None, linked.Token).ConfigureAwait(false);
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
        finally
        {
            CloseGracefully();
        }
    }

    /// <summary>A one-byte peek: sees the end of the stream (or a reset) without consuming payload sent early.</summary>
    public override async ValueTask<bool> ClientLeftAsync(CancellationToken cancellationToken)
    {
        var probe = new byte[1];
        try
        {
            return await Socket.ReceiveAsync(probe, SocketFlags.Peek, cancellationToken).ConfigureAwait(false) == 0;
        }
        catch (SocketException)
        {
            // The reset is reported to this peek only; remember it for the pipe.
            MarkFailedWhileWaiting();
            return true;
        }
    }

    protected override void CloseTransport(bool graceful)
    {
        if (!graceful)
        {
            // The peer sees a reset at once instead of a half-finished stream.
            SocketReset.ZeroLinger(Socket);
        }

        Socket.Dispose();
    }
}

using System.Net.Sockets;

namespace CrocNet.Relay.Net;

/// <summary>Cutting a TCP connection so its peer sees a reset at once, not a half-finished stream.</summary>
internal static class SocketReset
{
    /// <summary>Sets zero linger (a socket already gone is fine), then disposes: the close sends a reset.</summary>
    public static void Abort(Socket? socket)
    {
        if (socket is null)
        {
            return;
        }

        ZeroLinger(socket);
        socket.Dispose();
    }

    /// <summary>Zero linger, so that disposing the socket resets the connection; nothing when it is already gone.</summary>
    public static void ZeroLinger(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already gone.
        }
    }
}

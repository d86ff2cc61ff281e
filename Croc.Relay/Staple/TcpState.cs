using System.Net.Sockets;

namespace CrocNet.Relay.Staple;

/// <summary>The kernel's view of a TCP connection, where the OS offers it (Linux <c>TCP_INFO</c>).</summary>
internal static class TcpState
{
    // <netinet/tcp.h>: getsockopt(IPPROTO_TCP, TCP_INFO) fills struct tcp_info, whose first byte is tcpi_state.
    private const int IpProtoTcp = 6;
    private const int TcpInfo = 11;
    private const byte TcpClose = 7;
    private const byte TcpCloseWait = 8;

    /// <summary>
    /// Whether the peer has closed its side (FIN received: <c>CLOSE_WAIT</c>; or reset: <c>CLOSE</c>), even with unread
    /// data queued before the close. <see langword="null"/> when this OS does not say.
    /// </summary>
    public static bool? HasPeerClosed(Socket socket)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        Span<byte> info = stackalloc byte[8];
        try
        {
            var length = socket.GetRawSocketOption(IpProtoTcp, TcpInfo, info);
            return length < 1 ? null : info[0] is TcpCloseWait or TcpClose;
        }
        catch (SocketException)
        {
            return null;
        }
        catch (ObjectDisposedException)
        {
            return true;
        }
    }
}

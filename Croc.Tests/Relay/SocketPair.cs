using System.Net;
using System.Net.Sockets;

namespace CrocNet.Tests.Relay;

/// <summary>Two connected loopback sockets: <see cref="Client"/> dialed, <see cref="Server"/> accepted.</summary>
internal sealed class SocketPair : IDisposable
{
    private SocketPair(Socket client, Socket server)
    {
        Client = client;
        Server = server;
    }

    public Socket Client { get; }

    public Socket Server { get; }

    public static async Task<SocketPair> OpenAsync(CancellationToken cancellationToken)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accepted = listener.AcceptAsync(cancellationToken);
        await client.ConnectAsync(listener.LocalEndPoint!, cancellationToken);
        return new SocketPair(client, await accepted);
    }

    public void Dispose()
    {
        Client.Dispose();
        Server.Dispose();
    }
}

using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using CrocNet.Transport;

namespace CrocNet.Tests.Transport;

/// <summary>
/// A WebSocket leg over a real loopback TCP connection: whatever way the socket breaks, the leg reports an
/// <see cref="IOException"/> (what the lanes re-dial on), never a cancellation nobody asked for.
/// </summary>
public class WebSocketLegStreamTests
{
    [Test]
    [CancelAfter(20_000)]
    public async Task WriteAsync_SocketAbortedWhileASendWaits_IOExceptionNotCancellation(CancellationToken cancellationToken)
    {
        using var pair = await TcpPair.OpenAsync(cancellationToken);
        using var socket = WebSocket.CreateFromStream(pair.Client, new WebSocketCreationOptions { IsServer = false });
        await using var leg = new WebSocketLegStream(socket, TimeProvider.System);

        // The far end never reads: the send blocks once the kernel's buffers are full.
        var block = new byte[256 * 1024];
        var writing = Task.Run(
            async () =>
            {
                while (true)
                {
                    await leg.WriteAsync(block, cancellationToken);
                }
            },
            cancellationToken);
        await Task.WhenAny(writing, Task.Delay(500, cancellationToken));
        Assert.That(writing.IsCompleted, Is.False, "the send should be waiting on a full connection");

        // What a failed receive does to the whole WebSocket.
        socket.Abort();

        var ex = Assert.ThrowsAsync<IOException>(async () => await writing);
        Assert.That(ex!.InnerException, Is.InstanceOf<OperationCanceledException>(), "the socket reported the abort as a cancellation");
    }

    [Test]
    [CancelAfter(20_000)]
    public async Task ReadAsync_SocketAbortedWhileAReceiveWaits_IOExceptionNotCancellation(CancellationToken cancellationToken)
    {
        using var pair = await TcpPair.OpenAsync(cancellationToken);
        using var socket = WebSocket.CreateFromStream(pair.Client, new WebSocketCreationOptions { IsServer = false });
        await using var leg = new WebSocketLegStream(socket, TimeProvider.System);

        var reading = leg.ReadAsync(new byte[1024], cancellationToken).AsTask();
        await Task.WhenAny(reading, Task.Delay(200, cancellationToken));
        Assert.That(reading.IsCompleted, Is.False);

        socket.Abort();

        Assert.ThrowsAsync<IOException>(async () => await reading);
    }

    [Test]
    [CancelAfter(20_000)]
    public async Task ReadAsync_CallerCancels_StaysACancellation(CancellationToken cancellationToken)
    {
        using var pair = await TcpPair.OpenAsync(cancellationToken);
        using var socket = WebSocket.CreateFromStream(pair.Client, new WebSocketCreationOptions { IsServer = false });
        await using var leg = new WebSocketLegStream(socket, TimeProvider.System);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        var reading = leg.ReadAsync(new byte[1024], cancel.Token).AsTask();
        await cancel.CancelAsync();

        Assert.CatchAsync<OperationCanceledException>(async () => await reading);
    }

    /// <summary>Two ends of one loopback TCP connection; the server end is only held, never read.</summary>
    private sealed class TcpPair : IDisposable
    {
        private readonly Socket _server;

        private TcpPair(NetworkStream client, Socket server)
        {
            Client = client;
            _server = server;
        }

        public NetworkStream Client { get; }

        public static async Task<TcpPair> OpenAsync(CancellationToken cancellationToken)
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(1);
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(listener.LocalEndPoint!, cancellationToken);
            var server = await listener.AcceptAsync(cancellationToken);
            return new TcpPair(new NetworkStream(client, ownsSocket: true), server);
        }

        public void Dispose()
        {
            Client.Dispose();
            _server.Dispose();
        }
    }
}

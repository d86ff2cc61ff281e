using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace CrocNet.Relay.Staple;

/// <summary>
/// The byte stream of one data connection, as the pipe between two legs needs it. A TCP socket, a WebSocket
/// (<see cref="WebSocketTransport"/>) and any duplex pipe (a forwarded link, an in-memory pair in tests) are its adapters.
/// </summary>
internal interface IStapleTransport
{
    /// <summary>Completes when data (or the end of the stream) can be read, without taking a buffer; an idle leg pins no memory.</summary>
    ValueTask WaitReadableAsync(CancellationToken cancellationToken);

    /// <summary>Reads up to <paramref name="buffer"/>'s length; 0 at the end of the stream.</summary>
    ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken);

    /// <summary>Writes all of <paramref name="data"/>.</summary>
    ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>Ends the sending direction (half-close); the other direction keeps working.</summary>
    ValueTask ShutdownSendAsync();
}

/// <summary>A TCP socket as a transport: plain receives and sends, a zero-byte receive to wait, shutdown to half-close.</summary>
/// <remarks>
/// A socket reports a reset to one call only; when that call was a send (the pipe's other direction writing to it),
/// the next receive sees an end of stream, which the pipe would pass on as a clean end. So an end of stream is checked
/// against the connection's TCP state where the system tells it (Linux): a reset connection is closed, while one
/// that got the peer's FIN waits for ours (unless this side already sent its own).
/// </remarks>
internal sealed class SocketTransport(Socket socket) : IStapleTransport
{
    private const int IpProtoTcp = 6;
    private const int TcpInfo = 11;
    private const byte TcpClose = 7;

    private volatile bool _sendShut;

    public Socket Socket { get; } = socket;

    public async ValueTask WaitReadableAsync(CancellationToken cancellationToken)
        => await Socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, cancellationToken).ConfigureAwait(false);

    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var read = await Socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        if (read == 0 && !_sendShut && WasReset(Socket))
        {
            throw new SocketException((int)SocketError.ConnectionReset);
        }

        return read;
    }

    /// <summary>Whether the connection ended with a reset rather than the peer's FIN (Linux only; false elsewhere).</summary>
    internal static bool WasReset(Socket socket)
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        Span<byte> info = stackalloc byte[8];
        try
        {
            // struct tcp_info starts with tcpi_state.
            return socket.GetRawSocketOption(IpProtoTcp, TcpInfo, info) >= 1 && info[0] == TcpClose;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            var sent = await Socket.SendAsync(data, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            data = data[sent..];
        }
    }

    public ValueTask ShutdownSendAsync()
    {
        // From here a clean end also leaves the connection closed (our FIN went first): no reset check then.
        _sendShut = true;
        Socket.Shutdown(SocketShutdown.Send);
        return ValueTask.CompletedTask;
    }
}

/// <summary>A duplex pipe as a transport: completing its output is the half-close.</summary>
internal sealed class DuplexPipeTransport(IDuplexPipe pipe) : IStapleTransport
{
    public IDuplexPipe Pipe { get; } = pipe;

    public async ValueTask WaitReadableAsync(CancellationToken cancellationToken)
    {
        var result = await Pipe.Input.ReadAsync(cancellationToken).ConfigureAwait(false);

        // Look, do not take: the bytes stay for ReadAsync.
        Pipe.Input.AdvanceTo(result.Buffer.Start);
    }

    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await Pipe.Input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var available = result.Buffer;
            if (!available.IsEmpty)
            {
                var take = (int)Math.Min(available.Length, buffer.Length);
                available.Slice(0, take).CopyTo(buffer.Span);
                Pipe.Input.AdvanceTo(available.GetPosition(take));
                return take;
            }

            Pipe.Input.AdvanceTo(available.Start, available.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                return 0;
            }
        }
    }

    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var flushed = await Pipe.Output.WriteAsync(data, cancellationToken).ConfigureAwait(false);
        if (flushed.IsCanceled || flushed.IsCompleted)
        {
            throw new IOException("The connection's reader is gone.");
        }
    }

    public ValueTask ShutdownSendAsync() => Pipe.Output.CompleteAsync();
}

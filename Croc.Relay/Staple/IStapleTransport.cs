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
internal sealed class SocketTransport(Socket socket) : IStapleTransport
{
    public Socket Socket { get; } = socket;

    public async ValueTask WaitReadableAsync(CancellationToken cancellationToken)
        => await Socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, cancellationToken).ConfigureAwait(false);

    public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        => Socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);

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

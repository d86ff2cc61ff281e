using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using CrocNet.Protocol;

namespace CrocNet.Transport;

/// <summary>
/// A leg's bytes over a WebSocket, as a <see cref="Stream"/>: writes go out as binary messages of at most 64 KiB, reads
/// take whatever messages arrive (their boundaries mean nothing), the peer's close is the end of the stream. Every
/// WebSocket fault (an abort too, which the socket reports as a cancellation) surfaces as an <see cref="IOException"/>, as a TCP fault would. Dispose sends a close and waits
/// briefly for the relay's, so the connection ends cleanly rather than with a reset that could drop bytes in flight.
/// </summary>
internal sealed class WebSocketLegStream : Stream
{
    /// <summary>How long dispose waits for the closing handshake before it aborts the connection.</summary>
    public static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(1);

    private readonly WebSocket _socket;
    private readonly TimeProvider _time;
    private bool _ended;
    private bool _wrote;
    private int _disposed;

    public WebSocketLegStream(WebSocket socket, TimeProvider time)
    {
        _socket = socket;
        _time = time;
    }

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty || _ended)
        {
            return 0;
        }

        while (true)
        {
            ValueWebSocketReceiveResult result;
            try
            {
                result = await _socket.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (WebSocketException ex)
            {
                throw new IOException($"The data connection broke: {ex.Message}", ex);
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                // The socket was aborted under us (a failed send or receive aborts the whole WebSocket): a break.
                throw new IOException($"The data connection broke: {ex.Message}", ex);
            }

            switch (result.MessageType)
            {
                case WebSocketMessageType.Close:
                    _ended = true;
                    return 0;
                case WebSocketMessageType.Text:
                    throw new IOException("The relay sent a text message on a data connection after its hello.");
                default:
                    if (result.Count > 0)
                    {
                        return result.Count;
                    }

                    // An empty binary message carries nothing; a zero return would mean the end.
                    break;
            }
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        _wrote = true;
        try
        {
            while (!buffer.IsEmpty)
            {
                var length = Math.Min(buffer.Length, CrocWire.MaxWebSocketMessage);
                await _socket.SendAsync(buffer[..length], WebSocketMessageType.Binary, endOfMessage: true, cancellationToken).ConfigureAwait(false);
                buffer = buffer[length..];
            }
        }
        catch (WebSocketException ex)
        {
            throw new IOException($"The data connection broke: {ex.Message}", ex);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            // A receive that failed aborts the WebSocket, and a send in flight then reports a cancellation nobody asked
            // for: that is the connection breaking, like any other transport fault.
            throw new IOException($"The data connection broke: {ex.Message}", ex);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    // The data plane is asynchronous throughout; the synchronous members exist for Stream's contract.
    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var deadline = ProtocolTimings.After(CloseTimeout, _time, CancellationToken.None);
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, deadline.Token).ConfigureAwait(false);
                // After writing, read up to the relay's close: a socket closed with unread bytes resets the connection,
                // and a reset makes the relay drop what it has not read yet, our last bytes among them. (A relay need
                // not read a leg that waits for its partner, so a leg that never wrote does not wait for an answer.)
                var scratch = new byte[4096];
                while (_wrote && _socket.State == WebSocketState.CloseSent)
                {
                    await _socket.ReceiveAsync(scratch.AsMemory(), deadline.Token).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or InvalidOperationException or IOException or ObjectDisposedException)
        {
            // The leg is over either way; what is left is to release it.
        }
        finally
        {
            _socket.Dispose();
            await base.DisposeAsync().ConfigureAwait(false);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            // No handshake without awaiting: abort, as disposing a socket would.
            _socket.Abort();
            _socket.Dispose();
        }

        base.Dispose(disposing);
    }
}

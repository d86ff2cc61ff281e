namespace CrocNet.Tests.EndToEnd;

/// <summary>
/// A middlebox between a client and the relay that misbehaves on the bytes it reads: the relay itself is
/// honest, so this plays the part of a hostile relay (or network) for one connection.
/// </summary>
public sealed class TamperingStream(Stream inner, TamperingStream.Mode mode, long at, int span = 4096) : PassThroughStream(inner)
{
    public enum Mode
    {
        FlipBit,
        Drop,
        Reorder,
        Cut,
        Slow,
    }

    private readonly Queue<byte> _pending = new();
    private long _position;
    private bool _done;

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_pending.Count > 0)
        {
            var n = Math.Min(buffer.Length, _pending.Count);
            for (var i = 0; i < n; i++)
            {
                buffer.Span[i] = _pending.Dequeue();
            }

            return n;
        }

        if (mode == Mode.Slow)
        {
            await Task.Delay(2, cancellationToken);
            var slow = await Inner.ReadAsync(buffer[..Math.Min(buffer.Length, span)], cancellationToken);
            _position += slow;
            return slow;
        }

        if (_done || _position + buffer.Length <= at)
        {
            var read = await Inner.ReadAsync(buffer, cancellationToken);
            _position += read;
            return read;
        }

        if (_position < at)
        {
            // Read up to the tampering point exactly.
            var read = await Inner.ReadAsync(buffer[..(int)(at - _position)], cancellationToken);
            _position += read;
            return read;
        }

        _done = true;
        switch (mode)
        {
            case Mode.FlipBit:
            {
                var read = await Inner.ReadAsync(buffer[..1], cancellationToken);
                buffer.Span[0] ^= 0x40;
                _position += read;
                return read;
            }

            case Mode.Drop:
            {
                var skip = new byte[span];
                await Inner.ReadExactlyAsync(skip, cancellationToken);
                _position += span;
                return await ReadAsync(buffer, cancellationToken);
            }

            case Mode.Reorder:
            {
                var block = new byte[2 * span];
                await Inner.ReadExactlyAsync(block, cancellationToken);
                _position += block.Length;
                foreach (var b in block.AsSpan(span).ToArray().Concat(block[..span]))
                {
                    _pending.Enqueue(b);
                }

                return await ReadAsync(buffer, cancellationToken);
            }

            default:
                // Cut: the connection goes away mid-stream.
                Inner.Dispose();
                return 0;
        }
    }

}

/// <summary>A connection's stream passed through unchanged; test middleboxes override what they misbehave on.</summary>
public abstract class PassThroughStream(Stream inner) : Stream
{
    protected Stream Inner { get; } = inner;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Inner.Read(buffer, offset, count);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => Inner.ReadAsync(buffer, cancellationToken);

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => Inner.WriteAsync(buffer, cancellationToken);

    public override Task FlushAsync(CancellationToken cancellationToken) => Inner.FlushAsync(cancellationToken);

    public override void Flush() => Inner.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Inner.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>Writes pass until <c>limit</c> bytes, then the connection is cut under the writer.</summary>
public sealed class CuttingWriteStream(Stream inner, long limit) : PassThroughStream(inner)
{
    private long _written;

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_written + buffer.Length > limit)
        {
            Inner.Dispose();
            throw new IOException("cut by the test");
        }

        _written += buffer.Length;
        await Inner.WriteAsync(buffer, cancellationToken);
    }
}

/// <summary>A non-seekable stream of unknown length that never ends (a pipe from a long-running producer).</summary>
public sealed class EndlessStream(byte fill) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count)
    {
        buffer.AsSpan(offset, count).Fill(fill);
        return count;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

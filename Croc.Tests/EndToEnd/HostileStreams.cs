namespace CrocNet.Tests.EndToEnd;

/// <summary>
/// A middlebox between a client and the relay that misbehaves on the bytes it reads: the relay itself is
/// honest, so this plays the part of a hostile relay (or network) for one connection.
/// </summary>
public sealed class TamperingStream(Stream inner, TamperingStream.Mode mode, long at, int span = 4096) : Stream
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

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

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
            var slow = await inner.ReadAsync(buffer[..Math.Min(buffer.Length, span)], cancellationToken);
            _position += slow;
            return slow;
        }

        if (_done || _position + buffer.Length <= at)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken);
            _position += read;
            return read;
        }

        if (_position < at)
        {
            // Read up to the tampering point exactly.
            var read = await inner.ReadAsync(buffer[..(int)(at - _position)], cancellationToken);
            _position += read;
            return read;
        }

        _done = true;
        switch (mode)
        {
            case Mode.FlipBit:
            {
                var read = await inner.ReadAsync(buffer[..1], cancellationToken);
                buffer.Span[0] ^= 0x40;
                _position += read;
                return read;
            }

            case Mode.Drop:
            {
                var skip = new byte[span];
                await inner.ReadExactlyAsync(skip, cancellationToken);
                _position += span;
                return await ReadAsync(buffer, cancellationToken);
            }

            case Mode.Reorder:
            {
                var block = new byte[2 * span];
                await inner.ReadExactlyAsync(block, cancellationToken);
                _position += block.Length;
                foreach (var b in block.AsSpan(span).ToArray().Concat(block[..span]))
                {
                    _pending.Enqueue(b);
                }

                return await ReadAsync(buffer, cancellationToken);
            }

            default:
                // Cut: the connection goes away mid-stream.
                inner.Dispose();
                return 0;
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }
}

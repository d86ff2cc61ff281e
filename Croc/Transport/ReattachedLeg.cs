namespace CrocNet.Transport;

/// <summary>
/// A leg the relay accepted with <c>ok again</c>: its lane already had a pair, so the other side greets it as a re-dialed
/// leg (LegHello, then Resume) and this side must too, even though it dialed it as a first one (its first try broke
/// after the relay had paired it). Only a marker on the way from the transport to the data plane, which takes
/// <see cref="Inner"/>; disposing it disposes the leg.
/// </summary>
internal sealed class ReattachedLeg(Stream inner) : Stream
{
    public Stream Inner { get; } = inner;

    /// <summary>The leg itself, and whether the relay said its lane already had a pair.</summary>
    public static Stream Unwrap(Stream stream, out bool reattached)
    {
        reattached = stream is ReattachedLeg;
        return stream is ReattachedLeg leg ? leg.Inner : stream;
    }

    public override bool CanRead => Inner.CanRead;

    public override bool CanWrite => Inner.CanWrite;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => Inner.ReadAsync(buffer, cancellationToken);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => Inner.WriteAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Inner.WriteAsync(buffer, offset, count, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => Inner.Read(buffer, offset, count);

    public override void Write(byte[] buffer, int offset, int count) => Inner.Write(buffer, offset, count);

    public override void Flush() => Inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => Inner.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override async ValueTask DisposeAsync()
    {
        // The leg closes itself once (its own dispose is idempotent), the graceful way first.
        await Inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Inner.Dispose();
        }

        base.Dispose(disposing);
    }
}

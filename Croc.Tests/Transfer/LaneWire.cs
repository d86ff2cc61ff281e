using System.IO.Pipelines;
using CrocNet.Transfer;

namespace CrocNet.Tests.Transfer;

/// <summary>
/// An in-memory relay for the data plane: per lane a pair of legs (two pipes, each with a socket-like 64 KiB
/// back-pressure unless told otherwise) that a test can cut, and a re-dial that pairs the sender's and the recipient's
/// new legs of a lane, as a relay that takes legs back does. Cutting a leg ends its partner too.
/// </summary>
internal sealed class LaneWire : IDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<int, LegPair> _waiting = [];
    private readonly List<LegPair> _all = [];
    private readonly long _pipeLimit;

    public LaneWire(int lanes, long pipeLimit = 64 * 1024)
    {
        _pipeLimit = pipeLimit;
        Current = new LegPair[lanes];
        for (var i = 0; i < lanes; i++)
        {
            Current[i] = NewPair(i, 0);
        }

        SenderStreams = Current.Select(p => (Stream)p.SenderEnd).ToArray();
        RecipientStreams = Current.Select(p => (Stream)p.RecipientEnd).ToArray();
        SenderDialer = new PipeDialer(this, sender: true);
        RecipientDialer = new PipeDialer(this, sender: false);
    }

    public Stream[] SenderStreams { get; }

    public Stream[] RecipientStreams { get; }

    public ILaneDialer SenderDialer { get; }

    public ILaneDialer RecipientDialer { get; }

    /// <summary>The legs each lane uses now.</summary>
    public LegPair[] Current { get; }

    /// <summary>New legs dialed so far (both sides' of a lane count once).</summary>
    public int Redials { get; private set; }

    /// <summary>Lets a test change what a re-dialed leg carries: (lane, generation, the sender's end) → the sender's stream.</summary>
    public Func<int, int, CuttableLeg, Stream>? WrapSenderLeg { get; set; }

    /// <summary>Refuses re-dials with this exception (a relay that says no).</summary>
    public Exception? RefuseWith { get; set; }

    private LegPair NewPair(int lane, int generation)
    {
        var pair = new LegPair(lane, generation, _pipeLimit);
        if (generation > 0)
        {
            // A re-dialed pair waits for both sides to attach.
            pair.SenderTaken = false;
            pair.RecipientTaken = false;
        }

        _all.Add(pair);
        return pair;
    }

    /// <summary>A leg of the lane's next pair (or the one waiting for this side), as a dial through the relay gets.</summary>
    public Stream Attach(int lane, bool sender)
    {
        if (RefuseWith is { } refusal)
        {
            throw refusal;
        }

        lock (_gate)
        {
            if (!_waiting.TryGetValue(lane, out var pair) || (sender ? pair.SenderTaken : pair.RecipientTaken))
            {
                pair = NewPair(lane, Current[lane].Generation + 1);
                _waiting[lane] = pair;
                Current[lane] = pair;
                Redials++;
            }

            if (sender)
            {
                pair.SenderTaken = true;
            }
            else
            {
                pair.RecipientTaken = true;
            }

            if (pair.SenderTaken && pair.RecipientTaken)
            {
                _waiting.Remove(lane);
            }

            return sender ? (WrapSenderLeg?.Invoke(lane, pair.Generation, pair.SenderEnd) ?? pair.SenderEnd) : pair.RecipientEnd;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var pair in _all)
            {
                pair.Cut();
            }
        }
    }

    private sealed class PipeDialer(LaneWire wire, bool sender) : ILaneDialer
    {
        public TimeSpan Timeout => TimeSpan.FromSeconds(20);

        public async Task<T> RedialAsync<T>(int lane, Stream previous, Func<Stream, CancellationToken, Task<T>> onLeg, CancellationToken cancellationToken)
        {
            var stream = wire.Attach(lane, sender);
            try
            {
                return await onLeg(stream, cancellationToken);
            }
            catch
            {
                stream.Dispose();
                throw;
            }
        }
    }
}

/// <summary>Both legs of one lane at one time; <see cref="Cut"/> breaks them as a network (or a relay) would.</summary>
internal sealed class LegPair
{
    public LegPair(int lane, int generation, long pipeLimit)
    {
        Lane = lane;
        Generation = generation;
        var options = new PipeOptions(pauseWriterThreshold: pipeLimit, resumeWriterThreshold: pipeLimit / 2, useSynchronizationContext: false);
        var toRecipient = new Pipe(options);
        var toSender = new Pipe(options);
        SenderEnd = new CuttableLeg(this, toSender, toRecipient);
        RecipientEnd = new CuttableLeg(this, toRecipient, toSender);
    }

    public int Lane { get; }

    public int Generation { get; }

    public CuttableLeg SenderEnd { get; }

    public CuttableLeg RecipientEnd { get; }

    public bool SenderTaken { get; set; } = true;

    public bool RecipientTaken { get; set; } = true;

    public bool IsCut { get; private set; }

    public void Cut()
    {
        IsCut = true;
        SenderEnd.Break();
        RecipientEnd.Break();
    }
}

/// <summary>One end of a leg: reads one pipe, writes (and flushes, as a socket sends) the other; once cut, every
/// read and write fails with an <see cref="IOException"/>, pending ones included.</summary>
internal sealed class CuttableLeg : Stream
{
    private readonly LegPair _pair;
    private readonly Pipe _incoming;
    private readonly Pipe _outgoing;
    private readonly Stream _reader;
    private readonly Stream _writer;
    private long _written;

    public CuttableLeg(LegPair pair, Pipe incoming, Pipe outgoing)
    {
        _pair = pair;
        _incoming = incoming;
        _outgoing = outgoing;
        _reader = incoming.Reader.AsStream(leaveOpen: true);
        _writer = outgoing.Writer.AsStream(leaveOpen: true);
    }

    /// <summary>Bytes written through this end.</summary>
    public long Written => Interlocked.Read(ref _written);

    /// <summary>Cuts the leg (both ends) once this many bytes were written through this end, part-way through a write.</summary>
    public long? CutAt { get; set; }

    /// <summary>Called just before the cut, with the bytes written so far.</summary>
    public Action<long>? OnCut { get; set; }

    private volatile bool _broken;

    public void Break()
    {
        _broken = true;
        _incoming.Reader.CancelPendingRead();
        _outgoing.Writer.CancelPendingFlush();
    }

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ThrowIfBroken();
        int read;
        try
        {
            read = await _reader.ReadAsync(buffer, cancellationToken);
        }
        catch (OperationCanceledException) when (_broken && !cancellationToken.IsCancellationRequested)
        {
            throw new IOException("The leg was cut.");
        }

        ThrowIfBroken();
        return read;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ThrowIfBroken();
        if (CutAt is { } at && Written + buffer.Length > at)
        {
            var part = (int)Math.Max(0, at - Written);
            await WriteCoreAsync(buffer[..part], cancellationToken);
            CutAt = null;
            OnCut?.Invoke(Written);
            _pair.Cut();
            ThrowIfBroken();
        }

        await WriteCoreAsync(buffer, cancellationToken);
    }

    private async ValueTask WriteCoreAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            await _writer.WriteAsync(buffer, cancellationToken);
            await _writer.FlushAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (_broken && !cancellationToken.IsCancellationRequested)
        {
            throw new IOException("The leg was cut.");
        }

        Interlocked.Add(ref _written, buffer.Length);
        ThrowIfBroken();
    }

    private void ThrowIfBroken()
    {
        if (_broken)
        {
            throw new IOException("The leg was cut.");
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            // Closing one end ends the partner, as the relay does.
            _pair.Cut();
        }

        base.Dispose(disposing);
    }
}

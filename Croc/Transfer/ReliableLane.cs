using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using CrocNet.Crypto;

namespace CrocNet.Transfer;

/// <summary>Opens a new leg for a lane whose leg broke (the session's transport, retried through its pipeline).</summary>
internal interface ILaneDialer
{
    /// <summary>How long one lane may take to come back, all attempts included.</summary>
    TimeSpan Timeout { get; }

    /// <summary>
    /// Dials lane <paramref name="lane"/> again (the same kind of leg as <paramref name="previous"/>) and runs
    /// <paramref name="onLeg"/> on it; a transient fault in either (an <see cref="IOException"/>, a socket error) is
    /// retried on a fresh leg, a refusal is not. The leg is disposed when <paramref name="onLeg"/> fails.
    /// </summary>
    Task<T> RedialAsync<T>(int lane, Stream previous, Func<Stream, CancellationToken, Task<T>> onLeg, CancellationToken cancellationToken);
}

/// <summary>What every lane of one transfer shares.</summary>
internal sealed class LaneSettings
{
    /// <summary>Unacknowledged payload bytes a lane's writer may hold before new frames wait.</summary>
    public const int DefaultWindow = 8 * 1024 * 1024;

    public int Window { get; init; } = DefaultWindow;

    /// <summary>The frame payload the lane's buffers are sized for (larger frames are rare and rented).</summary>
    public int FramePayload { get; init; } = 64 * 1024;

    /// <summary>Re-dials broken legs; <see langword="null"/> means a broken leg fails the transfer, as before.</summary>
    public ILaneDialer? Dialer { get; init; }

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Told of each lane that came back: the lane, and the payload bytes it sent again.</summary>
    public Action<int, long>? Reconnected { get; init; }

    /// <summary>Told whenever the peer acknowledges something (progress, for the idle watchdog).</summary>
    public Action? Acknowledged { get; init; }
}

/// <summary>
/// One lane of a transfer as a reliable stream of numbered frames in each direction, over one leg at a time
/// (docs/protocol.md, "Acknowledgements" and "Reconnecting a lane"). Written frames are kept until the peer
/// acknowledges them, within a window; a leg that breaks is dialed again, both sides greet it with fresh nonces
/// (new keys, sequence numbers from 0), say where they are (<see cref="FrameType.Resume"/>), and send again what the
/// other has not got. One reader at a time; writers are serialized here.
/// </summary>
internal sealed class ReliableLane : IDisposable
{
    /// <summary>Acknowledge at the latest after this many frames or payload bytes.</summary>
    private const int AckFrames = 16;
    private const int AckBytes = 256 * 1024;

    private readonly int _index;
    private readonly StreamDirection _own;
    private readonly byte[] _sessionKey;
    private readonly LaneSettings _settings;
    private readonly SemaphoreSlim _write = new(1, 1);
    private readonly SemaphoreSlim _read = new(1, 1);
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _closing = new();
    private readonly Queue<Retained> _retained = new();
    private readonly Stack<byte[]> _spare = new();
    /// <summary>How many times one lane may be re-established in one transfer.</summary>
    internal const int MaxReconnects = 16;

    private readonly List<Leg> _legs = [];

    private volatile Leg _leg;

    // Writing: frames below _acked are the peer's; _next is the index the next frame gets.
    private long _next;
    private long _acked;
    private long _unacked;
    private long _peak;
    private TaskCompletionSource? _windowOpened;
    private byte[]? _pending;
    private bool _ownEnded;

    // Reading: _received frames came in; every one handed out before the current read was handled by the caller.
    private long _received;
    private long _lastLength;
    private long _ackSent;
    private long _bytesSinceAck;
    private long _ackDue;
    private bool _peerEnded;

    private Exception? _fault;
    private volatile bool _greetFirst;
    private Task? _greeting;
    private int _reconnects;
    private long _resent;

    /// <param name="index">The lane.</param>
    /// <param name="stream">Its first leg.</param>
    /// <param name="sessionKey">The session key the leg keys derive from.</param>
    /// <param name="own">The direction this side writes.</param>
    /// <param name="settings">What every lane of the transfer shares.</param>
    /// <param name="greetFirst">
    /// The relay said the lane already had a pair (<c>ok again</c>): the peer greets this leg as a re-dialed one, so
    /// before anything else this side greets it too (LegHello, then Resume from frame 0).
    /// </param>
    public ReliableLane(int index, Stream stream, ReadOnlySpan<byte> sessionKey, StreamDirection own, LaneSettings settings, bool greetFirst = false)
    {
        _index = index;
        _greetFirst = greetFirst;
        _own = own;
        _settings = settings;
        _sessionKey = sessionKey.ToArray();
        // The first leg keeps the keys of a lane that never broke: an undisturbed transfer is the same on the wire.
        var writeKey = FrameKeys.Derive(_sessionKey, own, index);
        var readKey = FrameKeys.Derive(_sessionKey, Peer(own), index);
        try
        {
            _leg = new Leg(stream, new FrameWriter(stream, writeKey, settings.FramePayload), new FrameReader(stream, readKey), owned: false);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(writeKey);
            CryptographicOperations.ZeroMemory(readKey);
        }

        _legs.Add(_leg);
    }

    public int Index => _index;

    /// <summary>The leg in use now (a re-dialed one after a reconnect).</summary>
    public Stream Stream => _leg.Stream;

    /// <summary>The legs this lane dialed itself (after breaks); the session closes them with its own legs.</summary>
    public IReadOnlyList<Stream> DialedStreams
    {
        get
        {
            lock (_gate)
            {
                return [.. _legs.Where(l => l.Owned).Select(l => l.Stream)];
            }
        }
    }

    /// <summary>Whether the peer's authenticated end has been read.</summary>
    public bool Ended => _peerEnded;

    /// <summary>Whether a write on the current leg failed or was cancelled part-way (nothing after it would be readable).</summary>
    public bool Interrupted => _leg.Writer.Interrupted;

    /// <summary>How many times this lane's leg was replaced.</summary>
    public int Reconnects => Volatile.Read(ref _reconnects);

    /// <summary>Payload bytes of frames sent again on new legs.</summary>
    public long BytesResent => Interlocked.Read(ref _resent);

    /// <summary>The most unacknowledged payload this lane held at once.</summary>
    public long PeakUnacknowledged
    {
        get
        {
            lock (_gate)
            {
                return _peak;
            }
        }
    }

    /// <summary>Payload bytes written and not yet acknowledged.</summary>
    public long Unacknowledged
    {
        get
        {
            lock (_gate)
            {
                return _unacked;
            }
        }
    }

    /// <summary>Whether our end of the stream is written.</summary>
    public bool OwnEnded
    {
        get
        {
            lock (_gate)
            {
                return _ownEnded;
            }
        }
    }

    /// <summary>Whether our end is written and the peer acknowledged every frame up to it.</summary>
    public bool Delivered
    {
        get
        {
            lock (_gate)
            {
                return _ownEnded && _acked == _next;
            }
        }
    }

    /// <summary>The peer's frames this side has acknowledged (the last acknowledgement sent).</summary>
    public long AcknowledgedFrames
    {
        get
        {
            lock (_gate)
            {
                return _ackSent;
            }
        }
    }

    /// <summary>Frames written so far (logical, resent ones not counted again).</summary>
    public long FramesWritten => Interlocked.Read(ref _next);

    // ----- writing -----

    /// <summary>Waits for room in the window, then returns a buffer for a payload of up to <paramref name="size"/>
    /// bytes; fill it, then call <see cref="WritePayloadAsync"/>.</summary>
    public async ValueTask<Memory<byte>> GetPayloadBufferAsync(int size, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, FrameFormat.MaxPayload);
        await WaitForWindowAsync(cancellationToken).ConfigureAwait(false);
        if (_pending is { } abandoned)
        {
            Return(abandoned);
        }

        _pending = Rent(size);
        return _pending.AsMemory(0, size);
    }

    /// <summary>Writes the first <paramref name="length"/> bytes of the buffer <see cref="GetPayloadBufferAsync"/> gave.</summary>
    public ValueTask WritePayloadAsync(FrameType type, FrameFlags flags, int length, CancellationToken cancellationToken)
    {
        var buffer = _pending ?? throw new InvalidOperationException("No payload buffer was taken.");
        _pending = null;
        return SendAsync(type, flags, buffer, length, cancellationToken);
    }

    /// <summary>Copies <paramref name="payload"/> into a frame and writes it.</summary>
    public async ValueTask WriteAsync(FrameType type, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken, FrameFlags flags = FrameFlags.None)
    {
        // An abort must get out even when the peer stopped acknowledging; it is small.
        if (type != FrameType.Abort)
        {
            await WaitForWindowAsync(cancellationToken).ConfigureAwait(false);
        }

        var buffer = Rent(payload.Length);
        payload.CopyTo(buffer);
        await SendAsync(type, flags, buffer, payload.Length, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes the authenticated end of our stream on this lane.</summary>
    public ValueTask WriteEndAsync(CancellationToken cancellationToken) => SendAsync(FrameType.End, FrameFlags.None, Rent(0), 0, cancellationToken);

    private async ValueTask SendAsync(FrameType type, FrameFlags flags, byte[] buffer, int length, CancellationToken cancellationToken)
    {
        try
        {
            await EnsureGreetedAsync(cancellationToken).ConfigureAwait(false);
            await _write.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Return(buffer);
            throw;
        }

        Leg leg;
        CrocTransferException? broken = null;
        try
        {
            lock (_gate)
            {
                if (_fault is not null || _ownEnded)
                {
                    Return(buffer);
                    ThrowIfFaulted();
                    throw new InvalidOperationException("The stream has already been ended.");
                }

                // Kept from here on: if the leg breaks during this write, the frame goes again on the next one.
                _retained.Enqueue(new Retained(_next, type, flags, buffer, length));
                _next++;
                _unacked += length;
                _peak = Math.Max(_peak, _unacked);
                if (type == FrameType.End)
                {
                    _ownEnded = true;
                }
            }

            leg = _leg;
            try
            {
                await leg.Writer.WriteAsync(type, buffer.AsMemory(0, length), cancellationToken, flags).ConfigureAwait(false);
                await WriteDueAckAsync(leg, cancellationToken).ConfigureAwait(false);
            }
            catch (CrocTransferException ex) when (CanRecover(ex, cancellationToken))
            {
                broken = ex;
            }
        }
        finally
        {
            _write.Release();
        }

        if (broken is not null)
        {
            // The frame is kept: the new leg carries it (and anything else the peer lacks) before any later frame.
            await Recover(leg, broken).WaitAsync(cancellationToken).ConfigureAwait(false);
            ThrowIfFaulted();
        }
        else
        {
            await FlushAckAsync().ConfigureAwait(false);
        }
    }

    private async ValueTask WaitForWindowAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Task opened;
            lock (_gate)
            {
                ThrowIfFaulted();
                if (_unacked <= _settings.Window)
                {
                    return;
                }

                _windowOpened ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                opened = _windowOpened.Task;
            }

            await opened.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The peer has every frame below <paramref name="next"/>: forget them.</summary>
    private void Acknowledge(long next)
    {
        TaskCompletionSource? opened;
        lock (_gate)
        {
            if (next > _next)
            {
                throw new CrocProtocolException($"The other side acknowledged frame {next} on data connection {_index + 1}, which was never sent.");
            }

            if (next <= _acked)
            {
                // Nothing new (a resume point already said as much).
                return;
            }

            while (_retained.Count > 0 && _retained.Peek().Index < next)
            {
                var frame = _retained.Dequeue();
                _unacked -= frame.Length;
                Return(frame.Buffer);
            }

            _acked = next;
            opened = _windowOpened;
            _windowOpened = null;
        }

        opened?.TrySetResult();
        _settings.Acknowledged?.Invoke();
    }

    // ----- reading -----

    /// <summary>
    /// Reads the peer's next frame on this lane (acknowledgements are handled here and never returned); its payload is
    /// valid until the next read. Calling again says the previous frame was handled: it is then acknowledged, in time.
    /// </summary>
    public async ValueTask<Frame> ReadAsync(CancellationToken cancellationToken)
    {
        if (_peerEnded)
        {
            throw new InvalidOperationException("The stream has already ended.");
        }

        // Everything handed out so far was handled (a chunk written to the file): it may be acknowledged now.
        await QueueAckAsync(force: false).ConfigureAwait(false);
        var frame = await ReadCoreAsync(acknowledgementsOnly: false, cancellationToken).ConfigureAwait(false);
        if (frame.Type == FrameType.End)
        {
            // Nothing follows: say so now, there is no next read to carry it.
            await QueueAckAsync(force: true).ConfigureAwait(false);
        }

        return frame;
    }

    /// <summary>
    /// For a lane on which the peer sends nothing but acknowledgements (the recipient's side of every lane but the
    /// first): reads them until our end and everything before it is acknowledged. A leg that breaks after that needs
    /// no reconnect: the peer has everything.
    /// </summary>
    public async Task ReadAcknowledgementsAsync(CancellationToken cancellationToken)
    {
        if (!Delivered)
        {
            await ReadCoreAsync(acknowledgementsOnly: true, cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask<Frame> ReadCoreAsync(bool acknowledgementsOnly, CancellationToken cancellationToken)
    {
        await EnsureGreetedAsync(cancellationToken).ConfigureAwait(false);
        ThrowIfFaulted();
        while (true)
        {
            var leg = _leg;
            Frame frame = default;
            CrocTransferException? broken = null;
            await _read.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (!ReferenceEquals(leg, _leg))
                {
                    continue;
                }

                try
                {
                    frame = await leg.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                    if (frame.Type == FrameType.Ack)
                    {
                        Acknowledge(ReadCount(frame));
                        if (acknowledgementsOnly && Delivered)
                        {
                            return default;
                        }

                        continue;
                    }

                    if (frame.Type == FrameType.Resume)
                    {
                        throw new CrocProtocolException($"The other side sent a resume on data connection {_index + 1} outside a reconnect.");
                    }

                    if (acknowledgementsOnly)
                    {
                        throw new CrocProtocolException($"Unexpected {frame.Type} frame from the other side on data connection {_index + 1}.");
                    }

                    _received++;
                    _lastLength = frame.Payload.Length;
                    if (frame.Type == FrameType.End)
                    {
                        _peerEnded = true;
                    }

                    return frame;
                }
                catch (CrocTransferException) when (acknowledgementsOnly && Delivered)
                {
                    return default;
                }
                catch (CrocTransferException ex) when (CanRecover(ex, cancellationToken))
                {
                    broken = ex;
                }
            }
            finally
            {
                _read.Release();
            }

            // Only until the new leg is in use: its reader must run while this side sends again what the peer lacks.
            _ = Recover(leg, broken!);
            await leg.Replaced.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            ThrowIfFaulted();
        }
    }

    /// <summary>
    /// After our last frames (the verdict and our end) are written and the peer's end was read: waits, within
    /// <paramref name="within"/>, for the peer to close the leg, which it does once it has read them. A leg that breaks
    /// first may have lost them on the way (the peer then still waits for them, and dials again): with a dialer, the leg
    /// is re-established and what the peer lacks is sent again, so a verdict is not lost to a break at the last moment.
    /// Never throws.
    /// </summary>
    public async Task WaitForGoodbyeAsync(TimeSpan within, CancellationToken cancellationToken)
    {
        using var deadline = Protocol.ProtocolTimings.After(within, _settings.Time, cancellationToken);
        var scratch = new byte[1];
        while (true)
        {
            var leg = _leg;
            try
            {
                // Nothing may follow the peer's end: this returns at its close (or, against the protocol, on a stray byte).
                await leg.Stream.ReadAsync(scratch, deadline.Token).ConfigureAwait(false);
                return;
            }
            catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
            {
                if (_settings.Dialer is null || deadline.Token.IsCancellationRequested || _closing.IsCancellationRequested || Volatile.Read(ref _fault) is not null)
                {
                    return;
                }

                try
                {
                    var cause = new CrocTransferException(CrocErrorCode.ConnectionLost, $"Data connection {_index + 1} broke before the other side confirmed the end.", ex);
                    await Recover(leg, cause).WaitAsync(deadline.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                if (Volatile.Read(ref _fault) is not null || ReferenceEquals(leg, _leg))
                {
                    return;
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>After this side sent its abort: discards what still arrives on the current leg until the peer closes it,
    /// or <paramref name="within"/> passes. Never throws.</summary>
    public Task WaitForCloseAsync(TimeSpan within, TimeProvider time) => _leg.Reader.WaitForCloseAsync(within, time);

    private async ValueTask QueueAckAsync(bool force)
    {
        lock (_gate)
        {
            var handled = _received;
            _bytesSinceAck += _lastLength;
            _lastLength = 0;
            if (handled > _ackDue && (force || handled - _ackSent >= AckFrames || _bytesSinceAck >= AckBytes))
            {
                _ackDue = handled;
            }
        }

        await FlushAckAsync().ConfigureAwait(false);
    }

    /// <summary>Writes a due acknowledgement if the writer is free; otherwise its holder writes it after its frame. A
    /// reader never waits for a writer: that could stall both sides of a lane.</summary>
    private async ValueTask FlushAckAsync()
    {
        while (!_greetFirst && AckPending() && _write.Wait(0))
        {
            try
            {
                await WriteDueAckAsync(_leg, _closing.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is CrocTransferException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
            {
                // A broken leg shows on the next read or write, which reconnects; the resume then says it all.
                return;
            }
            finally
            {
                _write.Release();
            }
        }
    }

    private bool AckPending()
    {
        lock (_gate)
        {
            return _ackDue > _ackSent && !_ownEnded && _fault is null;
        }
    }

    /// <summary>With the writer held: writes the due acknowledgement, if any.</summary>
    private async ValueTask WriteDueAckAsync(Leg leg, CancellationToken cancellationToken)
    {
        long due;
        lock (_gate)
        {
            // After our end nothing may follow on this leg; the peer has no need of it then (see docs/protocol.md).
            if (_ackDue <= _ackSent || _ownEnded)
            {
                return;
            }

            due = _ackDue;
            _ackSent = due;
            _bytesSinceAck = 0;
        }

        var payload = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(payload, due);
        await leg.Writer.WriteAsync(FrameType.Ack, payload, cancellationToken).ConfigureAwait(false);
    }

    private long ReadCount(Frame frame)
    {
        if (frame.Payload.Length != 8 || BinaryPrimitives.ReadInt64BigEndian(frame.Payload.Span) is var count && count < 0)
        {
            throw new CrocProtocolException($"The other side sent a malformed {frame.Type} frame on data connection {_index + 1}.");
        }

        return count;
    }

    // ----- reconnecting -----

    private bool CanRecover(CrocTransferException ex, CancellationToken cancellationToken) =>
        ex.Code == CrocErrorCode.ConnectionLost && _settings.Dialer is not null && !cancellationToken.IsCancellationRequested
        && !_closing.IsCancellationRequested && Volatile.Read(ref _fault) is null;

    /// <summary>The one recovery of a broken leg, started by whoever noticed first; it completes when the new leg carries
    /// everything again.</summary>
    private Task Recover(Leg broken, CrocTransferException cause)
    {
        lock (_gate)
        {
            return broken.Recovery ??= Task.Run(() => ReconnectAsync(broken, cause));
        }
    }

    /// <summary>Never faults: a failure is the lane's fault from then on, which every waiter rethrows.</summary>
    private async Task ReconnectAsync(Leg broken, CrocTransferException cause)
    {
        var dialer = _settings.Dialer!;
        // Unblock whatever still waits on the dead leg: its reads and writes fail and come to wait for this.
        broken.Stream.Dispose();
        Leg? fresh = null;
        CrocTransferException? brokenAgain = null;
        try
        {
            if (Volatile.Read(ref _reconnects) >= MaxReconnects)
            {
                // A relay that cuts every new leg would otherwise keep the transfer alive forever: each recovery counts
                // as progress for the idle watchdog. The relay's own budget (16 re-attachments per channel by default)
                // is never tighter than this one per lane.
                throw new CrocTransferException(
                    CrocErrorCode.ConnectionLost,
                    $"Data connection {_index + 1} broke {MaxReconnects + 1} times; giving up: {cause.Message}",
                    cause);
            }

            using var deadline = new CancellationTokenSource(dialer.Timeout, _settings.Time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, _closing.Token);
            var token = linked.Token;
            var reading = false;
            var writing = false;
            try
            {
                // Both held: nothing is read or written on this lane until the peer's resume point is known.
                await _read.WaitAsync(token).ConfigureAwait(false);
                reading = true;
                await _write.WaitAsync(token).ConfigureAwait(false);
                writing = true;
                long expected;
                (fresh, expected) = await dialer.RedialAsync(_index, broken.Stream, GreetAsync, token).ConfigureAwait(false);
                List<Retained> resend;
                lock (_gate)
                {
                    if (_closing.IsCancellationRequested)
                    {
                        // The lane was disposed while the new leg was greeted: nobody would ever close it.
                        fresh.Stream.Dispose();
                        fresh.Dispose();
                        throw new OperationCanceledException(_closing.Token);
                    }

                    if (expected < _acked || expected > _next)
                    {
                        fresh.Stream.Dispose();
                        fresh.Dispose();
                        throw new CrocProtocolException($"The other side resumed data connection {_index + 1} at frame {expected}, which does not fit what was sent.");
                    }

                    _legs.Add(fresh);
                    _leg = fresh;
                    resend = [.. _retained.Where(f => f.Index >= expected)];
                }

                // Nothing writes on the dead leg any more (this recovery holds the write lock): let its buffer and key
                // go now. Its reader stays until the lane ends, since the last frame it handed out lives in its buffer.
                broken.Writer.Dispose();

                // The resume point is an acknowledgement too: the peer has every frame below it.
                Acknowledge(expected);
                _read.Release();
                reading = false;
                broken.Replaced.TrySetResult(true);
                long resent = 0;
                try
                {
                    foreach (var frame in resend)
                    {
                        await fresh.Writer.WriteAsync(frame.Type, frame.Buffer.AsMemory(0, frame.Length), token, frame.Flags).ConfigureAwait(false);
                        resent += frame.Length;
                        Interlocked.Add(ref _resent, frame.Length);
                    }
                }
                catch (CrocTransferException ex) when (CanRecover(ex, CancellationToken.None))
                {
                    // Broke again while catching up: the next recovery starts from where the peer then says it is.
                    brokenAgain = ex;
                }

                Interlocked.Increment(ref _reconnects);
                _settings.Reconnected?.Invoke(_index, resent);
                _settings.Acknowledged?.Invoke();
            }
            catch (OperationCanceledException ex) when (deadline.IsCancellationRequested && !_closing.IsCancellationRequested)
            {
                throw new CrocTransferException(
                    CrocErrorCode.ConnectionLost,
                    $"Data connection {_index + 1} broke and could not be re-established within {dialer.Timeout}: {cause.Message}",
                    ex);
            }
            finally
            {
                if (writing)
                {
                    _write.Release();
                }

                if (reading)
                {
                    _read.Release();
                }
            }
        }
        catch (Exception ex)
        {
            Fail(ex switch
            {
                OperationCanceledException when _closing.IsCancellationRequested => new ObjectDisposedException(nameof(ReliableLane)),
                CrocException => ex,
                // A transient fault that outlasted the dialer's retries, or a dial that timed out on its own (nobody
                // cancelled this recovery but the transfer's end): the connection is lost, as it was.
                _ => new CrocTransferException(CrocErrorCode.ConnectionLost, $"Data connection {_index + 1} broke and could not be re-established: {ex.Message}", ex),
            });
            broken.Replaced.TrySetResult(false);
            return;
        }

        if (brokenAgain is not null)
        {
            await Recover(fresh!, brokenAgain).ConfigureAwait(false);
        }
    }

    private void Fail(Exception error)
    {
        TaskCompletionSource? opened;
        lock (_gate)
        {
            _fault ??= error;
            opened = _windowOpened;
            _windowOpened = null;
        }

        opened?.TrySetResult();
    }

    private void ThrowIfFaulted()
    {
        if (Volatile.Read(ref _fault) is { } fault)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(fault);
        }
    }

    /// <summary>On a new leg: greet with a fresh nonce, derive the leg's keys from both, and trade resume points.</summary>
    /// <summary>Greets the first leg once, before its first use, when the relay said the lane already had a pair.</summary>
    private ValueTask EnsureGreetedAsync(CancellationToken cancellationToken)
    {
        if (!_greetFirst)
        {
            return default;
        }

        Task greeting;
        lock (_gate)
        {
            greeting = _greeting ??= Task.Run(GreetFirstAsync, CancellationToken.None);
        }

        return greeting.IsCompleted ? default : new ValueTask(greeting.WaitAsync(cancellationToken));
    }

    /// <summary>Never faults: a failure is the lane's fault from then on, which every caller rethrows.</summary>
    private async Task GreetFirstAsync()
    {
        var first = _leg;
        try
        {
            var (fresh, expected) = await GreetAsync(first.Stream, _closing.Token).ConfigureAwait(false);
            if (expected != 0)
            {
                fresh.Dispose();
                throw new CrocProtocolException($"The other side resumed data connection {_index + 1} at frame {expected}, but nothing was sent on it yet.");
            }

            lock (_gate)
            {
                if (_closing.IsCancellationRequested)
                {
                    fresh.Dispose();
                    throw new OperationCanceledException(_closing.Token);
                }

                _legs.Add(fresh);
                _leg = fresh;
            }

            // The first keys were never used on it.
            first.Dispose();
        }
        catch (IOException ex) when (_settings.Dialer is not null && !_closing.IsCancellationRequested)
        {
            // Broke while greeting: dialed again like any broken leg (the recovery greets the new one).
            await Recover(first, new CrocTransferException(CrocErrorCode.ConnectionLost, $"Data connection {_index + 1} broke during its greeting: {ex.Message}", ex)).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Fail(ex switch
            {
                OperationCanceledException when _closing.IsCancellationRequested => new ObjectDisposedException(nameof(ReliableLane)),
                CrocException => ex,
                _ => new CrocTransferException(CrocErrorCode.ConnectionLost, $"Data connection {_index + 1} broke during its greeting: {ex.Message}", ex),
            });
        }
        finally
        {
            _greetFirst = false;
        }
    }

    private async Task<(Leg Leg, long Expected)> GreetAsync(Stream stream, CancellationToken cancellationToken)
    {
        var mine = LegHello.NewNonce();
        await LegHello.WriteAsync(stream, mine, cancellationToken).ConfigureAwait(false);
        var theirs = await LegHello.ReadAsync(stream, cancellationToken).ConfigureAwait(false);
        var (senderNonce, recipientNonce) = _own == StreamDirection.SenderToRecipient ? (mine, theirs) : (theirs, mine);
        byte[] writeKey;
        byte[] readKey;
        lock (_gate)
        {
            // Dispose zeroes the session key under this lock: a leg greeted after it must not get keys from zeros.
            if (_closing.IsCancellationRequested)
            {
                throw new OperationCanceledException(_closing.Token);
            }

            writeKey = FrameKeys.DeriveLeg(_sessionKey, _own, _index, senderNonce, recipientNonce);
            readKey = FrameKeys.DeriveLeg(_sessionKey, Peer(_own), _index, senderNonce, recipientNonce);
        }

        Leg leg;
        try
        {
            leg = new Leg(stream, new FrameWriter(stream, writeKey, _settings.FramePayload), new FrameReader(stream, readKey), owned: true);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(writeKey);
            CryptographicOperations.ZeroMemory(readKey);
        }

        try
        {
            var resume = new byte[8];
            BinaryPrimitives.WriteInt64BigEndian(resume, _received);
            await leg.Writer.WriteAsync(FrameType.Resume, resume, cancellationToken).ConfigureAwait(false);
            var answer = await leg.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (answer.Type != FrameType.Resume)
            {
                throw new CrocProtocolException($"The other side began a re-dialed data connection {_index + 1} with a {answer.Type} frame, not a resume.");
            }

            return (leg, ReadCount(answer));
        }
        catch (CrocTransferException ex) when (ex.Code == CrocErrorCode.ConnectionLost)
        {
            leg.Dispose();
            // The new leg broke before it was in use: another dial may do better.
            throw new IOException(ex.Message, ex);
        }
        catch
        {
            leg.Dispose();
            throw;
        }
    }

    private static StreamDirection Peer(StreamDirection own) =>
        own == StreamDirection.SenderToRecipient ? StreamDirection.RecipientToSender : StreamDirection.SenderToRecipient;

    // ----- buffers -----

    private byte[] Rent(int size)
    {
        if (size > 64 * 1024 && size <= _settings.FramePayload)
        {
            lock (_gate)
            {
                if (_spare.TryPop(out var spare))
                {
                    return spare;
                }
            }

            // Exact size: the shared pool would round a chunk plus its header up to twice the size.
            return GC.AllocateUninitializedArray<byte>(_settings.FramePayload);
        }

        return ArrayPool<byte>.Shared.Rent(size);
    }

    private void Return(byte[] buffer)
    {
        if (buffer.Length == _settings.FramePayload && buffer.Length > 64 * 1024)
        {
            lock (_gate)
            {
                if (_spare.Count < (_settings.Window / _settings.FramePayload) + 2)
                {
                    _spare.Push(buffer);
                }
            }

            return;
        }

        ArrayPool<byte>.Shared.Return(buffer, clearArray: true);
    }

    public void Dispose()
    {
        _closing.Cancel();
        lock (_gate)
        {
            foreach (var leg in _legs)
            {
                if (leg.Owned)
                {
                    leg.Stream.Dispose();
                }

                leg.Dispose();
            }

            foreach (var frame in _retained)
            {
                CryptographicOperations.ZeroMemory(frame.Buffer);
            }

            _retained.Clear();
            foreach (var spare in _spare)
            {
                CryptographicOperations.ZeroMemory(spare);
            }

            _spare.Clear();
            _fault ??= new ObjectDisposedException(nameof(ReliableLane));
            CryptographicOperations.ZeroMemory(_sessionKey);
        }
    }

    private readonly record struct Retained(long Index, FrameType Type, FrameFlags Flags, byte[] Buffer, int Length);

    private sealed class Leg(Stream stream, FrameWriter writer, FrameReader reader, bool owned) : IDisposable
    {
        public Stream Stream { get; } = stream;

        public FrameWriter Writer { get; } = writer;

        public FrameReader Reader { get; } = reader;

        /// <summary>Whether the lane dialed it (and so closes it); the first leg is the session's.</summary>
        public bool Owned { get; } = owned;

        public Task? Recovery { get; set; }

        /// <summary>Set once a new leg is in use (true) or the lane gave up (false); readers wait only for this.</summary>
        public TaskCompletionSource<bool> Replaced { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Dispose()
        {
            Writer.Dispose();
            Reader.Dispose();
        }
    }
}

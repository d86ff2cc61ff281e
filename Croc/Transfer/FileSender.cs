using System.Buffers;
using System.Text.Json;
using System.Threading.Channels;
using CrocNet.Crypto;
using CrocNet.Files;
using Microsoft.Win32.SafeHandles;

namespace CrocNet.Transfer;

/// <summary>
/// The sender's data plane: manifest, the recipient's answer, then every file cut into chunks that the
/// data connections pull from one queue (so all connections stay busy), then the trailer of hashes,
/// the end of every stream, and the recipient's verified "done".
/// </summary>
internal sealed class FileSender
{
    /// <summary>Files are cut at multiples of this; also the largest data a frame carries for one file.</summary>
    public const int ChunkSize = 1024 * 1024;

    private const int ManifestPiece = 1024 * 1024;

    /// <summary>Trailer lines per frame: a line is at most ~130 bytes, so a piece stays far below a frame's 4 MiB.</summary>
    internal const int TrailerPiece = 16_384;

    private readonly SendPlan _plan;
    private readonly TransferContext _context;
    private readonly FileDigest?[] _digests;
    private readonly long[] _sentBytes;
    private readonly SourceFile?[] _files;
    private readonly long[] _resumedBytes;
    private ResumeClaims? _claims;

    private FileSender(SendPlan plan, TransferContext context)
    {
        _plan = plan;
        _context = context;
        var entries = plan.Manifest.Entries;
        var algorithm = FileDigest.ParseWireName(plan.Manifest.Hash);
        _digests = new FileDigest?[entries.Count];
        _sentBytes = new long[entries.Count];
        _resumedBytes = new long[entries.Count];
        if (plan.Manifest.Text is null)
        {
            // We take the recipient's claims of chunks it kept from an interrupted receive.
            plan.Manifest.Resume = true;
        }

        _files = new SourceFile?[entries.Count];
        for (var i = 0; i < entries.Count; i++)
        {
            if (!entries[i].Dir)
            {
                _digests[i] = new FileDigest(algorithm);
                if (plan.Sources[i].FullPath is { } path)
                {
                    _files[i] = new SourceFile(path);
                }
            }
        }
    }

    /// <summary>Runs the data plane; returns the files as sent, once the recipient has verified them.</summary>
    public static async Task<IReadOnlyList<TransferredFile>> RunAsync(SendPlan plan, TransferContext context, CancellationToken cancellationToken)
    {
        var sender = new FileSender(plan, context);
        try
        {
            return await sender.RunAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            foreach (var file in sender._files)
            {
                file?.Dispose();
            }
        }
    }

    /// <summary>
    /// An acceptance read before our own write of the offer completed. It can overtake it honestly: when the control
    /// lane broke during the offer, the recovery sends the offer again on the new leg and completes our write only after
    /// that, by which time the recipient may have read it and said yes. Our write then ends on its own (within the idle
    /// timeout): true. False for anything else (a refusal, or a yes to what the recipient never read, so our write
    /// never ends); the caller then stops the write and judges the answer.
    /// </summary>
    private async Task<bool> WriteEndsAfterAcceptanceAsync(Task send, Frame answer, CancellationToken cancellationToken)
    {
        try
        {
            if (!ControlMessages.Parse(answer, TransferJsonContext.Default.AcceptMessage).Accept)
            {
                return false;
            }
        }
        catch (CrocException)
        {
            // Malformed: the caller stops the write and reports it.
            return false;
        }

        try
        {
            await send.WaitAsync(_context.IdleTimeout, _context.Time, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private async Task<IReadOnlyList<TransferredFile>> RunAsync(CancellationToken cancellationToken)
    {
        var writers = _context.Lanes;
        var control = writers[0];

        Frame answer;
        // The decision's timer runs on the session's clock, like every other timeout.
        using var decisionTimer = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _context.Time);
        using (var decision = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, decisionTimer.Token))
        using (var writing = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        try
        {
            // Listen while the manifest goes out: a recipient that refuses it halfway stops reading, and its
            // reason must reach us rather than a stalled write.
            var reply = _context.ReadAsync(control, decision.Token).AsTask();
            var send = SendManifestAsync(writers[0], writing.Token);
            if (await Task.WhenAny(send, reply).ConfigureAwait(false) == reply && !send.IsCompleted)
            {
                if (reply.IsCompletedSuccessfully && reply.Result.Type == FrameType.Accept && await WriteEndsAfterAcceptanceAsync(send, reply.Result, cancellationToken).ConfigureAwait(false))
                {
                    answer = reply.Result;
                }
                else
                {
                    await writing.CancelAsync().ConfigureAwait(false);
                    try
                    {
                        await send.ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is OperationCanceledException or CrocException)
                    {
                        // The answer came first; it says why.
                    }

                    answer = await reply.ConfigureAwait(false);
                    if (answer.Type == FrameType.Accept && ControlMessages.Parse(answer, TransferJsonContext.Default.AcceptMessage).Accept)
                    {
                        throw new CrocProtocolException("The recipient accepted an offer it had not read to the end.");
                    }
                }
            }
            else
            {
                await send.ConfigureAwait(false);

                // A person may be reading the offer before saying yes: wait as long as for a peer, not the idle limit.
                decisionTimer.CancelAfter(_context.DecisionTimeout);
                try
                {
                    answer = await reply.ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new CrocTimeoutException($"The recipient did not accept or decline within {_context.DecisionTimeout}.");
                }
            }
        }
        catch (OperationCanceledException) when (CancelledByCaller(cancellationToken))
        {
            // Cancelled while the offer was out: say so, so the recipient's prompt does not end in a bare "connection lost".
            await ControlMessages.TrySendCancelledAsync(control, sender: true, _context.Time).ConfigureAwait(false);

            throw;
        }

        var accept = answer.Type switch
        {
            FrameType.Accept => ControlMessages.Parse(answer, TransferJsonContext.Default.AcceptMessage),
            FrameType.Abort => throw ControlMessages.FromAbort(ControlMessages.Parse(answer, TransferJsonContext.Default.AbortMessage), peerIsRecipient: true),
            _ => throw new CrocProtocolException($"Expected the recipient's answer, got a {answer.Type} frame."),
        };
        if (!accept.Accept)
        {
            throw ControlMessages.FromAbort(new AbortMessage { Code = accept.Code ?? "declined", Message = accept.Message ?? "declined" }, peerIsRecipient: true);
        }

        if (_plan.Manifest.Resume == true)
        {
            // The chunks the recipient already holds, each checked against ours as it comes up.
            _claims = await ResumeClaims.ReadAsync(answer, accept, _context, control, _plan.Manifest, _context.ResumeKey, cancellationToken).ConfigureAwait(false);
        }

        _context.Progress.SetStage(TransferStage.Transferring);
        _context.StartIdleTimer();

        // The recipient may stop us at any moment (a failed check, a full disk): watch for that while sending.
        // Two stops: `stop` cuts every write at once (a failure, the recipient's verdict); a cancellation by the caller
        // first only stops new work (`drain`), letting each connection finish its frame within CancelGrace, so the
        // abort that follows reaches the recipient intact and it can say "the sender cancelled".
        using var stop = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _context.Time);
        using var drain = CancellationTokenSource.CreateLinkedTokenSource(stop.Token, cancellationToken);
        using var grace = cancellationToken.Register(static s => ((CancellationTokenSource)s!).CancelAfter(Protocol.ProtocolTimings.CancelGrace), stop);
        var verdict = WatchRecipientAsync(control, stop, cancellationToken);
        Task[] acknowledgements = [];
        try
        {
            var queue = System.Threading.Channels.Channel.CreateBounded<Work>(new BoundedChannelOptions(writers.Length * 2) { SingleWriter = true });
            var producer = Task.Run(
                async () =>
                {
                    try
                    {
                        await ProduceAsync(queue.Writer, drain.Token).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (!Draining(ex, cancellationToken))
                    {
                        await stop.CancelAsync().ConfigureAwait(false);
                        throw;
                    }
                },
                CancellationToken.None);
            var workers = new Task[writers.Length];
            for (var i = 0; i < writers.Length; i++)
            {
                var connection = i;
                workers[i] = Task.Run(
                    async () =>
                    {
                        try
                        {
                            await WorkAsync(connection, queue.Reader, drain.Token, stop.Token).ConfigureAwait(false);
                        }
                        catch (Exception ex) when (!Draining(ex, cancellationToken))
                        {
                            // One failed connection or unreadable file stops every other connection too.
                            await stop.CancelAsync().ConfigureAwait(false);
                            throw;
                        }
                    },
                    CancellationToken.None);
            }

            // The recipient acknowledges on every lane; lane 0's are read with its answers, the others' here.
            var pumps = new Task[writers.Length - 1];
            for (var i = 1; i < writers.Length; i++)
            {
                var lane = writers[i];
                pumps[i - 1] = Task.Run(
                    async () =>
                    {
                        try
                        {
                            await lane.ReadAcknowledgementsAsync(stop.Token).ConfigureAwait(false);
                        }
                        catch (Exception ex) when (ex is OperationCanceledException || lane.OwnEnded || ex is CrocTransferException { Code: CrocErrorCode.ConnectionLost })
                        {
                            // Stopped, or the lane's data is all out (the verdict decides), or the lane's writer meets the
                            // same broken leg and reports it.
                        }
                        catch (Exception)
                        {
                            await stop.CancelAsync().ConfigureAwait(false);
                            throw;
                        }
                    },
                    CancellationToken.None);
            }

            acknowledgements = pumps;
            var all = workers.Append(producer).ToArray();
            try
            {
                await Task.WhenAll(all).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // The recipient's verdict may be what stopped us; it cancels before it is marked faulted, so give
                // it a moment to land, and prefer its reason.
                await Task.WhenAny(verdict, Task.Delay(Protocol.ProtocolTimings.VerdictGrace, _context.Time, CancellationToken.None)).ConfigureAwait(false);
                if (verdict.IsFaulted)
                {
                    await verdict.ConfigureAwait(false);
                }

                // Surface the first real cause (not the cancellations it triggered) and tell the recipient.
                var cause = all.Concat(pumps).Select(t => t.Exception?.InnerException).FirstOrDefault(e => e is CrocException);
                if (cause is CrocException crocException)
                {
                    await ControlMessages.TrySendAsync(writers[0], FrameType.Abort, new AbortMessage { Code = ControlMessages.ToWire(crocException.Code), Message = crocException.Message }, TransferJsonContext.Default.AbortMessage, _context.Time).ConfigureAwait(false);
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(cause);
                }

                if (CancelledByCaller(cancellationToken))
                {
                    await ControlMessages.TrySendCancelledAsync(control, sender: true, _context.Time).ConfigureAwait(false);

                    cancellationToken.ThrowIfCancellationRequested();
                }

                throw;
            }

            // The trailer grows with the file count: it goes in pieces of TrailerPiece lines, the last one flagged.
            var trailer = new TrailerMessage();
            var files = new List<TransferredFile>();
            for (var i = 0; i < _digests.Length; i++)
            {
                if (_digests[i] is { } digest)
                {
                    var size = _sentBytes[i];
                    var hash = digest.Finish(size, _plan.Manifest.ChunkSize);
                    trailer.Files.Add(new TrailerFile { Index = i, Size = size, Hash = hash });
                    files.Add(new TransferredFile(_plan.Manifest.Entries[i].Path, size, hash, _plan.Sources[i].FullPath) { ResumedBytes = Interlocked.Read(ref _resumedBytes[i]) });
                    if (trailer.Files.Count == TrailerPiece)
                    {
                        await writers[0].WriteAsync(FrameType.Trailer, JsonSerializer.SerializeToUtf8Bytes(trailer, TransferJsonContext.Default.TrailerMessage), stop.Token).ConfigureAwait(false);
                        trailer.Files.Clear();
                    }
                }
            }

            await writers[0].WriteAsync(FrameType.Trailer, JsonSerializer.SerializeToUtf8Bytes(trailer, TransferJsonContext.Default.TrailerMessage), stop.Token, FrameFlags.Last).ConfigureAwait(false);
            await writers[0].WriteEndAsync(stop.Token).ConfigureAwait(false);
            _context.Progress.SetStage(TransferStage.Verifying);
            await verdict.ConfigureAwait(false);
            return files;
        }
        catch (Exception ex) when (verdict.IsFaulted || (ex is OperationCanceledException && stop.IsCancellationRequested && !CancelledByCaller(cancellationToken)))
        {
            // The recipient's reason beats the cancellation or broken pipe it caused on our side (a write waiting for
            // acknowledgements the recipient will no longer send, say); it cancels before it is marked faulted.
            await Task.WhenAny(verdict, Task.Delay(Protocol.ProtocolTimings.VerdictGrace, _context.Time, CancellationToken.None)).ConfigureAwait(false);
            if (verdict.IsFaulted)
            {
                await verdict.ConfigureAwait(false);
            }

            throw;
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await Task.WhenAll(acknowledgements).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or CrocException)
            {
                // Reported with the transfer's failure above, if it mattered.
            }

            try
            {
                // Bounded: after our own failure a silent recipient must not hold the error back.
                await verdict.WaitAsync(Protocol.ProtocolTimings.VerdictWait, _context.Time, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or CrocException or TimeoutException)
            {
                // Already reported above, or irrelevant after our own failure.
            }
        }
    }

    /// <summary>Streams the manifest's JSON out in pieces of <see cref="ManifestPiece"/> bytes, never whole in memory.</summary>
    private async Task SendManifestAsync(ReliableLane writer, CancellationToken cancellationToken)
    {
        var pieces = new ManifestPieces(writer);
        await using var _ = pieces.ConfigureAwait(false);
        await JsonSerializer.SerializeAsync(pieces, _plan.Manifest, TransferJsonContext.Default.Manifest, cancellationToken).ConfigureAwait(false);
        await pieces.FinishAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Whether the caller cancelled (not the idle timer, which cancels through the same token).</summary>
    private bool CancelledByCaller(CancellationToken cancellationToken) => cancellationToken.IsCancellationRequested && !_context.TimedOut;

    /// <summary>A task that stopped only because the caller cancelled and no new work is taken: not a failure of its own.</summary>
    private bool Draining(Exception ex, CancellationToken cancellationToken) => ex is OperationCanceledException && CancelledByCaller(cancellationToken);

    private async Task WatchRecipientAsync(ReliableLane control, CancellationTokenSource stop, CancellationToken cancellationToken)
    {
        try
        {
            // A progress claim keeps us waiting only when it advances and stays within what our writes have
            // actually handed over: a recipient that claims progress without reading cannot hold us past the idle timeout.
            long claimed = 0;
            var frame = await control.ReadAsync(cancellationToken).ConfigureAwait(false);
            while (frame.Type == FrameType.Progress)
            {
                var bytes = ControlMessages.Parse(frame, TransferJsonContext.Default.ProgressMessage).Bytes;
                if (bytes > claimed && bytes <= _context.Progress.Bytes)
                {
                    claimed = bytes;
                    _context.Touch();
                }

                frame = await control.ReadAsync(cancellationToken).ConfigureAwait(false);
            }

            _context.Touch();

            switch (frame.Type)
            {
                case FrameType.Done:
                    if (!ControlMessages.Parse(frame, TransferJsonContext.Default.DoneMessage).Ok)
                    {
                        throw new CrocProtocolException("The recipient's final message is not a success.");
                    }

                    // Read its end too, so the channel is not closed under the recipient's last write.
                    if ((await _context.ReadAsync(control, cancellationToken).ConfigureAwait(false)).Type != FrameType.End)
                    {
                        throw new CrocProtocolException("The recipient sent more after its final message.");
                    }

                    break;
                case FrameType.Abort:
                    throw ControlMessages.FromAbort(ControlMessages.Parse(frame, TransferJsonContext.Default.AbortMessage), peerIsRecipient: true);
                default:
                    throw new CrocProtocolException($"Expected the recipient's verdict, got a {frame.Type} frame.");
            }
        }
        catch (Exception ex) when (!Draining(ex, cancellationToken))
        {
            await stop.CancelAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task ProduceAsync(ChannelWriter<Work> queue, CancellationToken cancellationToken)
    {
        var chunkSize = _plan.Manifest.ChunkSize;
        var entries = _plan.Manifest.Entries;
        var batch = new List<int>();
        var batchBytes = 0;
        try
        {
            for (var i = 0; i < entries.Count; i++)
            {
                var entry = entries[i];
                if (entry.Dir)
                {
                    continue;
                }

                if (_plan.Sources[i].Stream is { } stream)
                {
                    await ProduceStreamAsync(queue, i, stream, entry.Size, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                if (entry.Size == 0)
                {
                    continue;
                }

                if (entry.Size <= chunkSize)
                {
                    // Small files travel several to a frame: one round of work per batch, not per file.
                    if (batchBytes + entry.Size + DataRecord.HeaderSize > chunkSize && batch.Count > 0)
                    {
                        await queue.WriteAsync(new Work.Batch([.. batch]), cancellationToken).ConfigureAwait(false);
                        batch.Clear();
                        batchBytes = 0;
                    }

                    batch.Add(i);
                    batchBytes += (int)entry.Size + DataRecord.HeaderSize;
                    continue;
                }

                var chunks = FileDigest.ChunkCount(entry.Size, chunkSize);
                _files[i]!.References = chunks;
                for (long c = 0; c < chunks; c++)
                {
                    var offset = c * chunkSize;
                    var length = (int)Math.Min(chunkSize, entry.Size - offset);
                    await queue.WriteAsync(_claims?.IsClaimed(i, c) == true ? new Work.Claimed(i, offset, length) : new Work.Chunk(i, offset, length), cancellationToken).ConfigureAwait(false);
                }
            }

            if (batch.Count > 0)
            {
                await queue.WriteAsync(new Work.Batch([.. batch]), cancellationToken).ConfigureAwait(false);
            }

            queue.Complete();
        }
        catch (Exception ex)
        {
            queue.Complete(ex);
            throw;
        }
    }

    private async Task ProduceStreamAsync(ChannelWriter<Work> queue, int entry, Stream stream, long declared, CancellationToken cancellationToken)
    {
        var chunkSize = _plan.Manifest.ChunkSize;
        long offset = 0;
        while (true)
        {
            var buffer = ArrayPool<byte>.Shared.Rent(chunkSize);
            int read;
            try
            {
                read = await stream.ReadAtLeastAsync(buffer.AsMemory(0, chunkSize), chunkSize, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or NotSupportedException or ObjectDisposedException or UnauthorizedAccessException)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                throw new CrocTransferException(CrocErrorCode.SourceChanged, $"Could not read the stream for '{_plan.Manifest.Entries[entry].Path}': {ex.Message}", ex);
            }
            catch
            {
                ArrayPool<byte>.Shared.Return(buffer);
                throw;
            }

            if (declared >= 0 && offset + read > declared)
            {
                // Longer than announced (perhaps endless): stop now rather than read it to the end.
                ArrayPool<byte>.Shared.Return(buffer);
                throw new CrocTransferException(
                    CrocErrorCode.SourceChanged,
                    $"The stream for '{_plan.Manifest.Entries[entry].Path}' is longer than the {declared} bytes announced.");
            }

            if (read == 0)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                break;
            }

            await queue.WriteAsync(new Work.Buffered(entry, offset, buffer, read), cancellationToken).ConfigureAwait(false);
            offset += read;
            if (read < chunkSize)
            {
                break;
            }
        }

        if (declared >= 0 && offset != declared)
        {
            throw new CrocTransferException(
                CrocErrorCode.SourceChanged,
                $"The stream for '{_plan.Manifest.Entries[entry].Path}' held {offset} bytes, not the {declared} announced.");
        }
    }

    /// <summary>Sends work from the queue on one connection: takes new work until <paramref name="drain"/>, writes until <paramref name="cancellationToken"/>.</summary>
    private async Task WorkAsync(int connection, ChannelReader<Work> queue, CancellationToken drain, CancellationToken cancellationToken)
    {
        var writer = _context.Lanes[connection];
        await foreach (var work in queue.ReadAllAsync(drain).ConfigureAwait(false))
        {
            int length;
            long payloadBytes;
            switch (work)
            {
                case Work.Chunk chunk:
                {
                    var buffer = await writer.GetPayloadBufferAsync(DataRecord.HeaderSize + chunk.Length, cancellationToken).ConfigureAwait(false);
                    _ = ReadChunk(chunk.Entry, chunk.Offset, buffer.Span.Slice(DataRecord.HeaderSize, chunk.Length), closeWhenDone: true);
                    DataRecord.WriteHeader(buffer.Span, chunk.Entry, chunk.Offset, chunk.Length);
                    length = DataRecord.HeaderSize + chunk.Length;
                    payloadBytes = chunk.Length;
                    break;
                }

                case Work.Claimed claimed:
                {
                    // Read and hashed like every chunk (the file's digest covers it); sent only if the recipient's copy differs.
                    var bytes = ArrayPool<byte>.Shared.Rent(claimed.Length);
                    try
                    {
                        var digest = ReadChunk(claimed.Entry, claimed.Offset, bytes.AsSpan(0, claimed.Length), closeWhenDone: true);
                        if (_claims!.Matches(claimed.Entry, claimed.Offset / _plan.Manifest.ChunkSize, digest))
                        {
                            Interlocked.Add(ref _resumedBytes[claimed.Entry], claimed.Length);
                            _context.Progress.AddResumed(claimed.Length);
                            _context.Touch();
                            continue;
                        }

                        var buffer = await writer.GetPayloadBufferAsync(DataRecord.HeaderSize + claimed.Length, cancellationToken).ConfigureAwait(false);
                        DataRecord.WriteHeader(buffer.Span, claimed.Entry, claimed.Offset, claimed.Length);
                        bytes.AsSpan(0, claimed.Length).CopyTo(buffer.Span[DataRecord.HeaderSize..]);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(bytes, clearArray: true);
                    }

                    length = DataRecord.HeaderSize + claimed.Length;
                    payloadBytes = claimed.Length;
                    break;
                }

                case Work.Batch batch:
                {
                    var total = batch.Entries.Sum(e => DataRecord.HeaderSize + (int)_plan.Manifest.Entries[e].Size);
                    var span = (await writer.GetPayloadBufferAsync(total, cancellationToken).ConfigureAwait(false)).Span;
                    var at = 0;
                    foreach (var entry in batch.Entries)
                    {
                        var size = (int)_plan.Manifest.Entries[entry].Size;
                        DataRecord.WriteHeader(span[at..], entry, 0, size);
                        _ = ReadChunk(entry, 0, span.Slice(at + DataRecord.HeaderSize, size), closeWhenDone: true, wholeFile: true);
                        at += DataRecord.HeaderSize + size;
                    }

                    length = total;
                    payloadBytes = total - (batch.Entries.Length * DataRecord.HeaderSize);
                    break;
                }

                case Work.Buffered data:
                {
                    try
                    {
                        var buffer = await writer.GetPayloadBufferAsync(DataRecord.HeaderSize + data.Length, cancellationToken).ConfigureAwait(false);
                        DataRecord.WriteHeader(buffer.Span, data.Entry, data.Offset, data.Length);
                        var bytes = data.Buffer.AsSpan(0, data.Length);
                        bytes.CopyTo(buffer.Span[DataRecord.HeaderSize..]);
                        _digests[data.Entry]!.AddChunk(data.Offset / _plan.Manifest.ChunkSize, bytes);
                        Interlocked.Add(ref _sentBytes[data.Entry], data.Length);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(data.Buffer);
                    }

                    length = DataRecord.HeaderSize + data.Length;
                    payloadBytes = data.Length;
                    break;
                }

                default:
                    throw new InvalidOperationException("Unknown work item.");
            }

            await writer.WritePayloadAsync(FrameType.Data, FrameFlags.None, length, cancellationToken).ConfigureAwait(false);
            _context.Touch();
            _context.Progress.AddBytes(payloadBytes);
        }

        if (connection != 0)
        {
            await writer.WriteEndAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private byte[] ReadChunk(int entry, long offset, Span<byte> destination, bool closeWhenDone, bool wholeFile = false)
    {
        var file = _files[entry]!;
        var read = 0;
        try
        {
            var handle = file.Open();
            while (read < destination.Length)
            {
                var n = RandomAccess.Read(handle, destination[read..], offset + read);
                if (n == 0)
                {
                    break;
                }

                read += n;
            }
        }
        catch (IOException ex)
        {
            throw new CrocTransferException(CrocErrorCode.SourceChanged, $"Could not read '{_plan.Manifest.Entries[entry].Path}': {ex.Message}", ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new CrocTransferException(CrocErrorCode.SourceChanged, $"Could not read '{_plan.Manifest.Entries[entry].Path}': {ex.Message}", ex);
        }
        finally
        {
            if (closeWhenDone && (wholeFile || Interlocked.Decrement(ref file.References) == 0))
            {
                file.Dispose();
            }
        }

        if (read != destination.Length)
        {
            throw new CrocTransferException(
                CrocErrorCode.SourceChanged,
                $"'{_plan.Manifest.Entries[entry].Path}' changed while it was being sent (it is now shorter). Send it again once it is stable.");
        }

        _ = _digests[entry]!.Add(offset / _plan.Manifest.ChunkSize, destination, out var digest);
        Interlocked.Add(ref _sentBytes[entry], read);
        return digest;
    }

    /// <summary>A file read by several connections at once through one handle, closed after its last chunk.</summary>
    private sealed class SourceFile(string path) : IDisposable
    {
        private readonly Lock _gate = new();
        private SafeFileHandle? _handle;
        private bool _closed;

        public long References;

        public SafeFileHandle Open()
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_closed, this);
                return _handle ??= File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            }
        }

        public void Dispose()
        {
            lock (_gate)
            {
                _closed = true;
                _handle?.Dispose();
                _handle = null;
            }
        }
    }

    private abstract record Work
    {
        public sealed record Chunk(int Entry, long Offset, int Length) : Work;

        /// <summary>A chunk the recipient claims to hold already.</summary>
        public sealed record Claimed(int Entry, long Offset, int Length) : Work;

        public sealed record Batch(int[] Entries) : Work;

        public sealed record Buffered(int Entry, long Offset, byte[] Buffer, int Length) : Work;
    }

    /// <summary>A write-only stream that cuts what is written into Manifest frames; the last is flagged on finish.</summary>
    private sealed class ManifestPieces(ReliableLane writer) : Stream
    {
        private readonly byte[] _buffer = new byte[ManifestPiece];
        private int _length;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (!buffer.IsEmpty)
            {
                if (_length == _buffer.Length)
                {
                    await writer.WriteAsync(FrameType.Manifest, _buffer, cancellationToken).ConfigureAwait(false);
                    _length = 0;
                }

                var take = Math.Min(buffer.Length, _buffer.Length - _length);
                buffer[..take].CopyTo(_buffer.AsMemory(_length));
                _length += take;
                buffer = buffer[take..];
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        /// <summary>Sends what is left (possibly nothing) as the last piece.</summary>
        public ValueTask FinishAsync(CancellationToken cancellationToken) =>
            writer.WriteAsync(FrameType.Manifest, _buffer.AsMemory(0, _length), cancellationToken, FrameFlags.Last);

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

using System.Text.Json;
using CrocNet.Crypto;
using CrocNet.Files;

namespace CrocNet.Transfer;

/// <summary>What a receive produced.</summary>
internal sealed record ReceiveOutcome(Manifest Manifest, IReadOnlyList<TransferredFile> Files, IReadOnlyList<string> Directories);

/// <summary>How the recipient wants the data.</summary>
internal sealed class ReceiveTarget
{
    public string? OutputDirectory { get; init; }

    public Stream? Destination { get; init; }

    public CrocOverwritePolicy Overwrite { get; init; }

    public Func<TransferOffer, CancellationToken, ValueTask<bool>>? ConfirmOffer { get; init; }

    /// <summary>Resume and leftovers (into a folder only); <see langword="null"/>: the defaults.</summary>
    public PartialSettings? Partials { get; init; }
}

/// <summary>
/// The recipient's data plane: read and vet the manifest, decide, then read every connection in parallel,
/// verify each file against the sender's trailer and only then report success.
/// </summary>
internal static class FileReceiver
{
    /// <summary>The manifest's size on the wire: parsed as it arrives, so this bounds time and traffic, not memory.</summary>
    private const int MaxManifestBytes = 256 * 1024 * 1024;
    private const int MaxEntries = 1_000_000;
    private const int MinChunkSize = 64 * 1024;

    /// <summary>The largest file (and streamed offset) a manifest may describe: 1 PiB.</summary>
    public const long MaxFileSize = 1L << 50;

    public static async Task<ReceiveOutcome> RunAsync(TransferContext context, ReceiveTarget target, CancellationToken cancellationToken)
    {
        var control = context.Lanes[0];
        IReceiveSink sink;
        DiskSink? disk = null;
        Manifest manifest;
        try
        {
            // The sender sends its manifest as soon as the connections are joined: a silent sender is a stuck one.
            context.StartIdleTimer();
            var tree = new ReceivePathTree();
            manifest = await ReadManifestAsync(context, tree, cancellationToken).ConfigureAwait(false);
            context.PauseIdleTimer();

            ReceivePlan? plan = null;
            if (target.Destination is not null)
            {
                var files = manifest.Entries.Count(e => !e.Dir);
                if (manifest.Text is null && (files != 1 || manifest.Entries.Count != 1))
                {
                    throw new CrocTransferException(
                        CrocErrorCode.TransferRejected,
                        $"The sender offers {manifest.Entries.Count} entries; receiving into a stream takes exactly one file.");
                }
            }
            else
            {
                // One look at the disk per name whose folder exists; nothing kept per entry.
                plan = ReceivePlan.Create(target.OutputDirectory!, manifest, tree, target.Overwrite);
            }

            var offer = new TransferOffer(new OfferEntries(manifest.Entries), manifest.Entries.Where(e => !e.Dir && e.Size > 0).Sum(e => e.Size))
            { Text = manifest.Text };
            context.Progress.TotalBytes = manifest.Entries.Any(e => e.Size < 0) ? -1 : offer.TotalBytes;
            context.Progress.TotalFiles = offer.FileCount;
            if (target.ConfirmOffer is { } confirm && !await confirm(offer, cancellationToken).ConfigureAwait(false))
            {
                throw new CrocTransferException(CrocErrorCode.TransferRejected, "The transfer was declined; nothing was written.");
            }

            // Accepted: only now is per-entry state built.
            if (plan is null)
            {
                sink = new StreamSink(manifest, target.Destination!);
            }
            else
            {
                disk = new DiskSink(manifest, plan, target.Overwrite, target.Partials) { Progress = context.Progress };
                sink = disk;
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Say no before anything was written, and tell the sender why (an application's own exception
            // from ConfirmOffer is its business: the sender just hears "declined").
            var code = (ex as CrocException)?.Code ?? CrocErrorCode.TransferRejected;
            var message = ex is CrocException ? ex.Message : "The recipient declined the transfer.";
            await ControlMessages.TrySendAsync(control, FrameType.Accept, new AcceptMessage { Accept = false, Code = ControlMessages.ToWire(code), Message = message }, TransferJsonContext.Default.AcceptMessage, context.Time).ConfigureAwait(false);
            throw;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && !context.TimedOut)
        {
            // Cancelled while reading or deciding on the offer: the sender hears it, instead of a lost connection.
            await ControlMessages.TrySendCancelledAsync(context.Lanes[0], sender: false, context.Time).ConfigureAwait(false);
            throw;
        }

        var directories = manifest.Entries.Where(e => e.Dir).Select(e => e.Path).ToList();
        var beacon = new ProgressBeacon(control, context);
        await using var stopBeacon = beacon.ConfigureAwait(false);
        try
        {
            disk?.CreateDirectories();
            // What earlier receives kept, checked again against the disk; the sender is told (when it resumes).
            var kept = disk?.PreparePartials() ?? [];
            await ResumeHandshake.WriteAcceptAsync(control, manifest.Resume == true, kept, context.ResumeKey, cancellationToken).ConfigureAwait(false);
            context.Progress.SetStage(TransferStage.Transferring);
            context.StartIdleTimer();
            beacon.Start(cancellationToken);

            if (manifest.Text is not null && target.Destination is { } textDestination)
            {
                await textDestination.WriteAsync(System.Text.Encoding.UTF8.GetBytes(manifest.Text), cancellationToken).ConfigureAwait(false);
            }

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var readers = new Task[context.Lanes.Length];
            for (var i = 0; i < readers.Length; i++)
            {
                var connection = i;
                readers[i] = Task.Run(
                    async () =>
                    {
                        try
                        {
                            await ReadDataAsync(context, connection, sink, stop.Token).ConfigureAwait(false);
                        }
                        catch (Exception ex)
                        {
                            if (connection != 0 && ex is CrocException { Code: CrocErrorCode.ConnectionLost })
                            {
                                // A data connection ending may be the relay tearing down after the sender stopped:
                                // its reason (an abort on the first connection) may be just behind, so let that
                                // connection deliver it for a moment before stopping it.
                                await Task.WhenAny(readers[0], Task.Delay(Protocol.ProtocolTimings.VerdictGrace, context.Time, CancellationToken.None)).ConfigureAwait(false);
                            }

                            // One broken connection dooms the transfer: stop the others instead of waiting on them.
                            await stop.CancelAsync().ConfigureAwait(false);
                            throw;
                        }
                    },
                    stop.Token);
            }

            try
            {
                await Task.WhenAll(readers).ConfigureAwait(false);
            }
            catch
            {
                // Report the first real cause, not the cancellations it triggered on the other connections.
                var causes = readers.Select(r => r.Exception?.InnerException).Where(e => e is not null).ToList();
                var cause = causes.FirstOrDefault(e => e is CrocException) ?? causes.FirstOrDefault(e => e is not OperationCanceledException);
                if (cause is not null)
                {
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(cause);
                }

                throw;
            }

            context.Progress.SetStage(TransferStage.Verifying);
            var verified = await sink.CompleteAsync(cancellationToken).ConfigureAwait(false);
            foreach (var _ in verified)
            {
                context.Progress.FileCompleted();
            }

            // Committed: every file is verified and in place, so the transfer has succeeded for us whatever
            // happens to our goodbye (the sender, if it never hears it, reports its own failure).
            await beacon.StopAsync().ConfigureAwait(false);
            try
            {
                await ControlMessages.WriteAsync(control, FrameType.Done, new DoneMessage { Ok = true }, TransferJsonContext.Default.DoneMessage, cancellationToken).ConfigureAwait(false);
                await control.WriteEndAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is CrocException or OperationCanceledException or IOException)
            {
            }

            return new ReceiveOutcome(manifest, verified, directories);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            sink.Abort();
            await beacon.StopAsync().ConfigureAwait(false);

            // The caller's stream (or the disk) failing is a typed error like any other.
            var error = ex as CrocException ?? (ex is IOException or NotSupportedException or ObjectDisposedException or UnauthorizedAccessException
                ? new CrocTransferException(CrocErrorCode.WriteFailed, $"Could not write what was received: {ex.Message} The transfer was stopped.", ex)
                : null);
            if (error is not null)
            {
                await ControlMessages.TrySendAsync(control, FrameType.Abort, new AbortMessage { Code = ControlMessages.ToWire(error.Code), Message = error.Message }, TransferJsonContext.Default.AbortMessage, context.Time).ConfigureAwait(false);
                if (!ReferenceEquals(error, ex))
                {
                    throw error;
                }
            }

            throw;
        }
        catch (OperationCanceledException)
        {
            sink.Abort();
            await beacon.StopAsync().ConfigureAwait(false);
            if (cancellationToken.IsCancellationRequested && !context.TimedOut)
            {
                await ControlMessages.TrySendCancelledAsync(context.Lanes[0], sender: false, context.Time).ConfigureAwait(false);
            }

            throw;
        }
    }

    private static async Task<Manifest> ReadManifestAsync(TransferContext context, ReceivePathTree tree, CancellationToken cancellationToken)
    {
        var reader = context.Lanes[0];
        long total = 0;
        long bytes = 0;
        var count = 0;
        // Each entry is vetted as it arrives (sizes, name, duplicates), so a hostile manifest costs what it
        // sent up to its first bad entry, in time linear in its length.
        var parser = new ManifestParser(entry =>
        {
            if (count >= MaxEntries)
            {
                throw new CrocProtocolException($"The sender's manifest has more than {MaxEntries:N0} entries.");
            }

            // Checked once, here, so no later sum or size-derived computation can overflow.
            if (entry.Size < -1 || entry.Size > MaxFileSize || (entry.Dir && entry.Size != 0) || (total += Math.Max(entry.Size, 0)) > MaxFileSize)
            {
                throw new CrocProtocolException("The sender's manifest declares an impossible size.");
            }

            ReceivePathValidator.Check(entry.Path);
            tree.Add(count, entry.Path, entry.Dir);
            count++;
        });
        while (true)
        {
            var frame = await context.ReadAsync(reader, cancellationToken).ConfigureAwait(false);
            if (frame.Type == FrameType.Abort)
            {
                throw ControlMessages.FromAbort(ControlMessages.Parse(frame, TransferJsonContext.Default.AbortMessage), peerIsRecipient: false);
            }

            if (frame.Type != FrameType.Manifest)
            {
                throw new CrocProtocolException($"Expected the manifest, got a {frame.Type} frame.");
            }

            if ((bytes += frame.Payload.Length) > MaxManifestBytes)
            {
                throw new CrocProtocolException($"The sender's manifest is larger than {MaxManifestBytes / (1024 * 1024)} MiB.");
            }

            var last = (frame.Flags & FrameFlags.Last) != 0;
            parser.Feed(frame.Payload.Span, last);
            if (last)
            {
                break;
            }
        }

        var manifest = parser.Result;
        if (manifest.Version != 1)
        {
            throw new CrocProtocolException($"The sender speaks transfer version {manifest.Version}; this library speaks version 1.");
        }

        if (!FileDigest.TryParseWireName(manifest.Hash, out _))
        {
            throw new CrocProtocolException($"The sender's file hash '{ReceivePathValidator.Escape(manifest.Hash ?? "")}' is not one this library verifies.");
        }

        if (manifest.ChunkSize < MinChunkSize || manifest.ChunkSize > FrameFormat.MaxPayload - DataRecord.HeaderSize)
        {
            throw new CrocProtocolException("The sender's chunk size is out of range.");
        }

        if (manifest.Text is not null && (manifest.Entries.Count != 0 || System.Text.Encoding.UTF8.GetByteCount(manifest.Text) > SendContent.MaxTextBytes))
        {
            throw new CrocProtocolException("A text transfer must carry no files and at most 1 MiB of text.");
        }

        if (manifest.Entries.Count(e => e.Size < 0) > (manifest.Entries.Count == 1 ? 1 : 0))
        {
            throw new CrocProtocolException("Only a single streamed file may have an unknown length.");
        }

        return manifest;
    }

    /// <summary>Reads one connection to its end, handing the trailer's pieces (connection 0 only) to the sink.</summary>
    private static async Task ReadDataAsync(TransferContext context, int connection, IReceiveSink sink, CancellationToken cancellationToken)
    {
        var reader = context.Lanes[connection];
        var trailerDone = false;
        while (true)
        {
            var frame = await context.ReadAsync(reader, cancellationToken).ConfigureAwait(false);
            switch (frame.Type)
            {
                case FrameType.Data when !trailerDone:
                    var payload = frame.Payload;
                    long bytes = 0;
                    while (!payload.IsEmpty)
                    {
                        if (!DataRecord.TryRead(ref payload, out var entry, out var offset, out var data))
                        {
                            throw new CrocProtocolException("The sender sent a malformed data record.");
                        }

                        await sink.WriteAsync(entry, offset, data, cancellationToken).ConfigureAwait(false);
                        bytes += data.Length;
                    }

                    context.Progress.AddBytes(bytes);
                    break;
                case FrameType.Trailer when connection == 0 && !trailerDone:
                    // The trailer may span several frames, each a complete message; the last is flagged.
                    var piece = ControlMessages.Parse(frame, TransferJsonContext.Default.TrailerMessage);
                    if (piece.Files is null)
                    {
                        throw new CrocProtocolException("The sender's trailer has no file list.");
                    }

                    foreach (var line in piece.Files)
                    {
                        sink.AddTrailerLine(line ?? throw new CrocProtocolException("The sender's trailer has an empty line."));
                    }

                    trailerDone = (frame.Flags & FrameFlags.Last) != 0;
                    break;
                case FrameType.End:
                    if (connection == 0 && !trailerDone)
                    {
                        throw new CrocProtocolException("The sender ended without a (complete) trailer.");
                    }

                    return;
                case FrameType.Abort:
                    throw ControlMessages.FromAbort(ControlMessages.Parse(frame, TransferJsonContext.Default.AbortMessage), peerIsRecipient: false);
                default:
                    throw new CrocProtocolException($"Unexpected {frame.Type} frame during the transfer.");
            }
        }
    }

    /// <summary>
    /// Tells the sender, twice a second while bytes keep arriving, how many have: after its last write the sender
    /// hears nothing else until the verdict, and without this it could not tell a slow drain from a dead peer.
    /// </summary>
    private sealed class ProgressBeacon(ReliableLane control, TransferContext context) : IAsyncDisposable
    {
        private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(500);
        private readonly CancellationTokenSource _stop = new();
        private Task _loop = Task.CompletedTask;
        private int _stopped;

        public void Start(CancellationToken cancellationToken) => _loop = RunAsync(cancellationToken);

        public ValueTask DisposeAsync() => new(StopAsync());

        public async Task StopAsync()
        {
            if (Interlocked.Exchange(ref _stopped, 1) == 1)
            {
                return;
            }

            await _stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await _loop.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or CrocException)
            {
                // The control stream's own failure surfaces through the transfer.
            }

            _stop.Dispose();
        }

        private async Task RunAsync(CancellationToken cancellationToken)
        {
            long last = -1;
            while (true)
            {
                try
                {
                    await Task.Delay(Interval, context.Time, _stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                var now = context.Progress.Bytes;
                if (now != last && !_stop.IsCancellationRequested)
                {
                    last = now;
                    // The transfer's token, not _stop: a frame is never abandoned half written.
                    await ControlMessages.WriteAsync(control, FrameType.Progress, new ProgressMessage { Bytes = now }, TransferJsonContext.Default.ProgressMessage, cancellationToken).ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>The offer's entries as a view over the manifest: shown to the application without a copy per entry.</summary>
    private sealed class OfferEntries(List<ManifestEntry> entries) : IReadOnlyList<TransferEntry>
    {
        public int Count => entries.Count;

        public TransferEntry this[int index] => ToEntry(entries[index]);

        public IEnumerator<TransferEntry> GetEnumerator() => entries.Select(ToEntry).GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        private static TransferEntry ToEntry(ManifestEntry e) => new(e.Path, e.Dir, e.Dir ? 0 : e.Size);
    }
}

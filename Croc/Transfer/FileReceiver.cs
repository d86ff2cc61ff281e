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
}

/// <summary>
/// The recipient's data plane: read and vet the manifest, decide, then read every connection in parallel,
/// verify each file against the sender's trailer and only then report success.
/// </summary>
internal static class FileReceiver
{
    private const int MaxManifestBytes = 64 * 1024 * 1024;
    private const int MaxEntries = 1_000_000;
    private const int MinChunkSize = 4 * 1024;

    public static async Task<ReceiveOutcome> RunAsync(TransferContext context, ReceiveTarget target, CancellationToken cancellationToken)
    {
        var control = context.Writers[0];
        // The sender sends its manifest as soon as the connections are joined: a silent sender is a stuck one.
        context.StartIdleTimer();
        var manifest = await ReadManifestAsync(context, cancellationToken).ConfigureAwait(false);
        context.PauseIdleTimer();

        IReceiveSink sink;
        DiskSink? disk = null;
        var directories = new List<string>();
        try
        {
            if (target.Destination is { } destination)
            {
                var files = manifest.Entries.Count(e => !e.Dir);
                if (manifest.Text is null && (files != 1 || manifest.Entries.Count != 1))
                {
                    throw new CrocTransferException(
                        CrocErrorCode.TransferRejected,
                        $"The sender offers {manifest.Entries.Count} entries; receiving into a stream takes exactly one file.");
                }

                sink = new StreamSink(manifest, destination);
            }
            else
            {
                var plan = ReceivePlan.Create(target.OutputDirectory!, manifest, target.Overwrite);
                disk = new DiskSink(manifest, plan, target.Overwrite);
                sink = disk;
                directories.AddRange(plan.Entries.Where(e => e.IsDirectory).Select(e => e.RelativePath));
            }

            var offer = new TransferOffer(
                manifest.Entries.Select(e => new TransferEntry(e.Path, e.Dir, e.Dir ? 0 : e.Size)).ToList(),
                manifest.Entries.Where(e => !e.Dir && e.Size > 0).Sum(e => e.Size))
            { Text = manifest.Text };
            context.Progress.TotalBytes = manifest.Entries.Any(e => e.Size < 0) ? -1 : offer.TotalBytes;
            context.Progress.TotalFiles = offer.FileCount;
            if (target.ConfirmOffer is { } confirm && !await confirm(offer, cancellationToken).ConfigureAwait(false))
            {
                throw new CrocTransferException(CrocErrorCode.TransferRejected, "The transfer was declined; nothing was written.");
            }
        }
        catch (CrocException ex)
        {
            // Say no before anything was written, and tell the sender why.
            await TrySendAsync(control, FrameType.Accept, new AcceptMessage { Accept = false, Code = ControlMessages.ToWire(ex.Code), Message = ex.Message }).ConfigureAwait(false);
            throw;
        }

        try
        {
            disk?.CreateDirectories();
            await ControlMessages.WriteAsync(control, FrameType.Accept, new AcceptMessage { Accept = true }, TransferJsonContext.Default.AcceptMessage, cancellationToken).ConfigureAwait(false);
            context.Progress.SetStage(TransferStage.Transferring);
            context.StartIdleTimer();

            if (manifest.Text is not null && target.Destination is { } textDestination)
            {
                await textDestination.WriteAsync(System.Text.Encoding.UTF8.GetBytes(manifest.Text), cancellationToken).ConfigureAwait(false);
            }

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            TrailerMessage? trailer = null;
            var readers = new Task[context.Readers.Length];
            for (var i = 0; i < readers.Length; i++)
            {
                var connection = i;
                readers[i] = Task.Run(
                    async () =>
                    {
                        try
                        {
                            var found = await ReadDataAsync(context, connection, sink, stop.Token).ConfigureAwait(false);
                            if (found is not null)
                            {
                                trailer = found;
                            }
                        }
                        catch
                        {
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
            var verified = await sink.CompleteAsync(trailer ?? throw new CrocProtocolException("The sender ended without a trailer."), cancellationToken).ConfigureAwait(false);
            foreach (var _ in verified)
            {
                context.Progress.FileCompleted();
            }

            await ControlMessages.WriteAsync(control, FrameType.Done, new DoneMessage { Ok = true }, TransferJsonContext.Default.DoneMessage, cancellationToken).ConfigureAwait(false);
            await control.WriteEndAsync(cancellationToken).ConfigureAwait(false);
            return new ReceiveOutcome(manifest, verified, directories);
        }
        catch (Exception ex)
        {
            sink.Abort();
            if (ex is CrocException crocException)
            {
                await TrySendAsync(control, FrameType.Abort, new AbortMessage { Code = ControlMessages.ToWire(crocException.Code), Message = crocException.Message }).ConfigureAwait(false);
            }

            throw;
        }
    }

    private static async Task<Manifest> ReadManifestAsync(TransferContext context, CancellationToken cancellationToken)
    {
        var reader = context.Readers[0];
        using var buffer = new MemoryStream();
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

            if (buffer.Length + frame.Payload.Length > MaxManifestBytes)
            {
                throw new CrocProtocolException("The sender's manifest is larger than 64 MiB.");
            }

            buffer.Write(frame.Payload.Span);
            if ((frame.Flags & FrameFlags.Last) != 0)
            {
                break;
            }
        }

        Manifest manifest;
        try
        {
            manifest = JsonSerializer.Deserialize(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), TransferJsonContext.Default.Manifest)
                ?? throw new CrocProtocolException("The sender's manifest is empty.");
        }
        catch (JsonException ex)
        {
            throw new CrocProtocolException("The sender's manifest is malformed.", ex);
        }

        if (manifest.Version != 1)
        {
            throw new CrocProtocolException($"The sender speaks transfer version {manifest.Version}; this library speaks version 1.");
        }

        if (!FileDigest.TryParseWireName(manifest.Hash, out _))
        {
            throw new CrocProtocolException($"The sender's file hash '{manifest.Hash}' is not one this library verifies.");
        }

        if (manifest.ChunkSize < MinChunkSize || manifest.ChunkSize > FrameFormat.MaxPayload - DataRecord.HeaderSize)
        {
            throw new CrocProtocolException("The sender's chunk size is out of range.");
        }

        if (manifest.Entries is null || manifest.Entries.Count > MaxEntries || manifest.Entries.Any(e => e is null))
        {
            throw new CrocProtocolException("The sender's manifest has a missing or oversized entry list.");
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

    /// <summary>Reads one connection to its end; returns the trailer if it came on this connection.</summary>
    private static async Task<TrailerMessage?> ReadDataAsync(TransferContext context, int connection, IReceiveSink sink, CancellationToken cancellationToken)
    {
        var reader = context.Readers[connection];
        TrailerMessage? trailer = null;
        while (true)
        {
            var frame = await context.ReadAsync(reader, cancellationToken).ConfigureAwait(false);
            switch (frame.Type)
            {
                case FrameType.Data:
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
                case FrameType.Trailer when connection == 0 && trailer is null:
                    trailer = ControlMessages.Parse(frame, TransferJsonContext.Default.TrailerMessage);
                    if (trailer.Files is null)
                    {
                        throw new CrocProtocolException("The sender's trailer has no file list.");
                    }

                    break;
                case FrameType.End:
                    if (connection == 0 && trailer is null)
                    {
                        throw new CrocProtocolException("The sender ended without a trailer.");
                    }

                    return trailer;
                case FrameType.Abort:
                    throw ControlMessages.FromAbort(ControlMessages.Parse(frame, TransferJsonContext.Default.AbortMessage), peerIsRecipient: false);
                default:
                    throw new CrocProtocolException($"Unexpected {frame.Type} frame during the transfer.");
            }
        }
    }

    private static async Task TrySendAsync<T>(FrameWriter writer, FrameType type, T message)
        where T : class
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            var info = (System.Text.Json.Serialization.Metadata.JsonTypeInfo<T>)TransferJsonContext.Default.GetTypeInfo(typeof(T))!;
            await ControlMessages.WriteAsync(writer, type, message, info, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            // The peer may already be gone; our own error is what matters.
        }
    }
}

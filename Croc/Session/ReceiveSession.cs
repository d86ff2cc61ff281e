using System.Security.Cryptography;
using CrocNet.Codes;
using CrocNet.Crypto;
using CrocNet.Diagnostics;
using CrocNet.Pake;
using CrocNet.Protocol;
using CrocNet.Rendezvous;
using CrocNet.Transfer;

namespace CrocNet.Session;

/// <summary>
/// One receive: join (waiting a little for a sender who is not there yet) → key exchange → data connections →
/// data plane into a folder or a stream → goodbye → result.
/// </summary>
internal static class ReceiveSession
{
    public static async Task<TransferResult> RunAsync(CrocRuntime runtime, string code, ReceiveTarget target, ReceiveOptions? call, CancellationToken cancellationToken)
    {
        var phrase = CodePhrase.Parse(code);
        var options = runtime.Options;
        var started = runtime.Time.GetTimestamp();
        var tracker = new ProgressTracker(call?.Progress, null, runtime.Time);
        // The sender picks the curve; ours is the likely one, so derive w for it while we wait.
        using var password = new PasswordScalar(phrase, Spake2Suite.Get(options.Curve));
        RelaySession? relay = null;
        Stream[] streams = [];
        TransferContext? context = null;
        try
        {
            tracker.SetStage(TransferStage.WaitingForPeer);
            relay = await JoinAsync(runtime, phrase.Channel, cancellationToken).ConfigureAwait(false);
            Log.Joined(runtime.Logger, relay.DisplayAddress, "recipient", phrase.Channel, relay.Joined.Curve ?? "?");
            runtime.Target(relay, relay.Joined);
            tracker.SetStage(TransferStage.Authenticating);
            using var handshake = await Handshake.RunRecipientAsync(relay, relay.Joined, phrase, password, options.PeerTimeout, runtime.Logger, cancellationToken).ConfigureAwait(false);
            tracker.SetStage(TransferStage.Connecting);
            streams = await runtime.ConnectAsync(relay, handshake.State, cancellationToken).ConfigureAwait(false);

            context = DataPlane.Create(
                handshake.Keys, streams, StreamDirection.RecipientToSender, tracker, options.IdleTimeout, options.PeerTimeout, runtime.Time,
                runtime.Dialer(relay, handshake.State), runtime.Reconnected(phrase.Channel));
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, context.IdleToken);
            ReceiveOutcome outcome;
            try
            {
                outcome = await FileReceiver.RunAsync(context, target, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException ex) when (context.TimedOut && !cancellationToken.IsCancellationRequested)
            {
                throw runtime.IdleTimeout(ex);
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                // Nobody asked for it: something underneath cut a connection (an aborted WebSocket reports so).
                throw CrocRuntime.LostUnderneath(ex);
            }

            // Let the sender read our verdict before the channel (and its connections) go away.
            // A break at this moment may have lost the verdict: the lane comes back (the sender dials too) and sends it again.
            await context.Lanes[0].WaitForGoodbyeAsync(ProtocolTimings.Goodbye, cancellationToken).ConfigureAwait(false);
            var files = outcome.Files;
            if (call?.ComputeSha256 == true)
            {
                files = await PlainSha256.AddAsync(files, target.Destination as HashingStream, cancellationToken).ConfigureAwait(false);
            }

            tracker.SetStage(TransferStage.Completed);
            var result = new TransferResult
            {
                Direction = TransferDirection.Receive,
                Channel = phrase.Channel,
                Curve = handshake.Curve,
                Files = files,
                Directories = outcome.Directories,
                TotalBytes = files.Sum(f => f.Length),
                ResumedBytes = files.Sum(f => f.ResumedBytes),
                Duration = runtime.Time.GetElapsedTime(started),
                Text = outcome.Manifest.Text,
                Reconnects = context.Reconnects,
                BytesResent = context.BytesResent,
            };
            Log.Completed(runtime.Logger, phrase.Channel, result.Files.Count, result.TotalBytes, result.Duration);
            return result;
        }
        catch (Exception ex)
        {
            runtime.LogFailure(phrase.Channel, ex, cancellationToken);
            if (ex is CrocTransferException or CrocProtocolException && streams.Length > 0)
            {
                // Our refusal or abort is on the wire: closing the channel now would have the relay reset the
                // connections, and a reset discards what the sender has not read yet. Give it a moment to read
                // and leave first.
                await WaitForGoodbyeAsync(context?.Lanes[0].Stream ?? streams[0], ProtocolTimings.RefusalGoodbye, runtime.Time, cancellationToken).ConfigureAwait(false);
            }

            throw;
        }
        finally
        {
            if (relay is not null)
            {
                await relay.CloseAsync().ConfigureAwait(false);
            }

            await CrocRuntime.DisposeAllAsync([.. streams, .. context?.DialedStreams ?? []]).ConfigureAwait(false);
            context?.Dispose();
        }
    }

    /// <summary>Joins as the recipient; a recipient may be first, so a missing channel is waited for, within limits.</summary>
    private static async Task<RelaySession> JoinAsync(CrocRuntime runtime, string channel, CancellationToken cancellationToken)
    {
        var time = runtime.Time;
        var limit = runtime.Options.ChannelWaitTimeout;
        var client = runtime.NewRelayClient();
        var started = time.GetTimestamp();
        var delay = ProtocolTimings.ChannelPollFirst;
        while (true)
        {
            try
            {
                return await client.JoinAsync(channel, null, ParticipantRole.Recipient, cancellationToken).ConfigureAwait(false);
            }
            catch (CrocRelayException ex) when (ex.RelayCode == CrocWire.Errors.NoChannel)
            {
                var waited = time.GetElapsedTime(started);
                if (waited + delay > limit)
                {
                    throw new CrocRelayException(
                        CrocErrorCode.RelayRefused,
                        $"No sender is using channel '{channel}' (waited {limit}). Check the code, or start the sender first.",
                        CrocWire.Errors.NoChannel,
                        ex.StatusCode,
                        ex);
                }

                Log.WaitingForChannel(runtime.Logger, channel);
                await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
                // Quick at first (the sender is usually a moment away), never more than twice a second.
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 3 / 2, ProtocolTimings.ChannelPollMax.Ticks));
            }
        }
    }

    /// <summary>
    /// Waits for the sender to hang up after reading our last message. A courtesy, never a failure of its own:
    /// the sender may be gone, slow to go, or our caller stopped waiting.
    /// </summary>
    private static async Task WaitForGoodbyeAsync(Stream control, TimeSpan limit, TimeProvider time, CancellationToken cancellationToken)
    {
        using var deadline = ProtocolTimings.After(limit, time, cancellationToken);
        try
        {
            var buffer = new byte[1];
            await control.ReadAsync(buffer, deadline.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }
}

/// <summary>The plain SHA-256 a user can check with <c>sha256sum</c>, on request, next to the transfer's own digest.</summary>
internal static class PlainSha256
{
    public static async Task<IReadOnlyList<TransferredFile>> AddAsync(IReadOnlyList<TransferredFile> files, HashingStream? streamed, CancellationToken cancellationToken)
    {
        var result = new List<TransferredFile>(files.Count);
        foreach (var file in files)
        {
            string digest;
            if (streamed is not null)
            {
                digest = streamed.HexDigest();
            }
            else
            {
                // The files are verified and in place; reading them back is the honest way to hash what is on disk.
                var stream = new FileStream(file.FullPath!, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.Asynchronous | FileOptions.SequentialScan);
                await using (stream.ConfigureAwait(false))
                {
                    digest = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false));
                }
            }

            result.Add(file with { Sha256 = digest });
        }

        return result;
    }
}

/// <summary>A write-only pass-through that hashes what it writes (the stream sink writes in order).</summary>
internal sealed class HashingStream : Stream
{
    private readonly Stream _inner;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public HashingStream(Stream inner) => _inner = inner;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public string HexDigest() => Convert.ToHexStringLower(_hash.GetCurrentHash());

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _inner.Write(buffer);
        _hash.AppendData(buffer);
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        _hash.AppendData(buffer.Span);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() => _inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
        }

        base.Dispose(disposing);
    }
}

using CrocNet.Codes;
using CrocNet.Crypto;
using CrocNet.Diagnostics;
using CrocNet.Pake;
using CrocNet.Protocol;
using CrocNet.Rendezvous;
using CrocNet.Transfer;

namespace CrocNet.Session;

/// <summary>
/// One send, from the plan to the verified result: join → key exchange → data connections → stapled →
/// data plane → result. Everything it needs is given at the start; nothing is shared with other sessions
/// except the immutable <see cref="CrocRuntime"/>.
/// </summary>
internal sealed class SendSession
{
    private readonly CrocRuntime _runtime;
    private readonly RelaySession _relay;
    private readonly CodePhrase _code;
    private readonly Spake2Suite _suite;
    private readonly PasswordScalar _password;
    private readonly SendPlan _plan;
    private readonly ProgressTracker _tracker;
    private readonly long _started;

    private SendSession(CrocRuntime runtime, RelaySession relay, CodePhrase code, Spake2Suite suite, PasswordScalar password, SendPlan plan, ProgressTracker tracker, long started)
    {
        _runtime = runtime;
        _relay = relay;
        _code = code;
        _suite = suite;
        _password = password;
        _plan = plan;
        _tracker = tracker;
        _started = started;
    }

    /// <summary>Reads what is to be sent, joins the relay and returns once the code is usable; the rest runs in the operation.</summary>
    public static async Task<CrocSendOperation> StartAsync(CrocRuntime runtime, SendContent content, SendOptions? call, CancellationToken cancellationToken)
    {
        var options = runtime.Options;
        var started = runtime.Time.GetTimestamp();
        // Parse first: a malformed code fails before any file is read or any request is made.
        var code = call?.Code is { } given ? CodePhrase.Parse(given) : CodePhrase.Generate();
        var hash = call?.FileHash ?? options.FileHash;
        // Walking a large tree takes a while: never on the caller's thread.
        var plan = await Task.Run(() => content.Build(FileSender.ChunkSize, hash, runtime.Time), cancellationToken).ConfigureAwait(false);
        var suite = Spake2Suite.Get(options.Curve);
        var password = new PasswordScalar(code, suite);
        RelaySession relay;
        try
        {
            relay = await runtime.NewRelayClient().JoinAsync(code.Channel, suite.Name, ParticipantRole.Sender, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            password.Dispose();
            throw;
        }

        try
        {
            // A relay that cannot serve the transport asked for fails now, not after a recipient has come and gone.
            runtime.Target(relay, relay.Joined);
        }
        catch
        {
            await relay.CloseAsync().ConfigureAwait(false);
            password.Dispose();
            throw;
        }

        Log.Joined(runtime.Logger, relay.DisplayAddress, "sender", code.Channel, suite.Name);
        var tracker = new ProgressTracker(call?.Progress, null, runtime.Time)
        {
            TotalBytes = plan.Manifest.Entries.Any(e => e.Size < 0) ? -1 : plan.Manifest.Entries.Where(e => !e.Dir).Sum(e => e.Size),
            TotalFiles = plan.Manifest.Entries.Count(e => !e.Dir),
        };
        var session = new SendSession(runtime, relay, code, suite, password, plan, tracker, started);
        // The caller's token keeps governing the transfer after this returns (documented on StartSendAsync).
        var cancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var completion = Task.Run(() => session.RunAsync(cancellation.Token), CancellationToken.None);
        return new CrocSendOperation(code.Code, code.Channel, completion, cancellation);
    }

    private async Task<TransferResult> RunAsync(CancellationToken cancellationToken)
    {
        using var _ = _password;
        var options = _runtime.Options;
        Stream[] streams = [];
        TransferContext? context = null;
        try
        {
            _tracker.SetStage(TransferStage.WaitingForPeer);
            using var handshake = await Handshake.RunSenderAsync(
                _relay, _code, _suite, _password, options.PeerTimeout, _runtime.Logger, () => _tracker.SetStage(TransferStage.Authenticating), cancellationToken).ConfigureAwait(false);
            _tracker.SetStage(TransferStage.Connecting);
            streams = await _runtime.ConnectAsync(_relay, handshake.State, cancellationToken).ConfigureAwait(false);
            // A lane that broke right after the stapling shows as "reconnecting": the brief "stapled" may have come and
            // gone between two polls, and the relay cut our leg of that lane, which only we can dial again. So the data
            // plane starts on either; its lane finds the leg cut and dials it again.
            var state = await _relay.WaitForAsync(handshake.State, static s => s.Stapled || s.Reconnecting, options.PeerTimeout, cancellationToken).ConfigureAwait(false);
            if (!state.Stapled && !state.Reconnecting)
            {
                throw new CrocRelayException(CrocErrorCode.ConnectionLost, "The channel closed before the data connections were joined.", CrocWire.Errors.Closed);
            }

            Log.Stapled(_runtime.Logger, _code.Channel);
            context = DataPlane.Create(
                handshake.Keys, streams, StreamDirection.SenderToRecipient, _tracker, options.IdleTimeout, options.PeerTimeout, _runtime.Time,
                _runtime.Dialer(_relay, handshake.State), _runtime.Reconnected(_code.Channel));
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, context.IdleToken);
            IReadOnlyList<TransferredFile> files;
            try
            {
                files = await FileSender.RunAsync(_plan, context, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException ex) when (context.TimedOut && !cancellationToken.IsCancellationRequested)
            {
                throw _runtime.IdleTimeout(ex);
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                // Nobody asked for it: something underneath cut a connection (an aborted WebSocket reports so).
                throw CrocRuntime.LostUnderneath(ex);
            }

            _tracker.SetStage(TransferStage.Completed);
            var result = new TransferResult
            {
                Direction = TransferDirection.Send,
                Channel = _code.Channel,
                Curve = handshake.Curve,
                Files = files,
                Directories = _plan.Manifest.Entries.Where(e => e.Dir).Select(e => e.Path).ToList(),
                TotalBytes = files.Sum(f => f.Length),
                ResumedBytes = files.Sum(f => f.ResumedBytes),
                Duration = _runtime.Time.GetElapsedTime(_started),
                Text = _plan.Manifest.Text,
                Reconnects = context.Reconnects,
                BytesResent = context.BytesResent,
            };
            Log.Completed(_runtime.Logger, _code.Channel, files.Count, result.TotalBytes, result.Duration);
            return result;
        }
        catch (Exception ex)
        {
            _runtime.LogFailure(_code.Channel, ex, cancellationToken);
            throw;
        }
        finally
        {
            // The legs first, then the channel: a leg closed cleanly reaches the recipient as the end of its stream
            // (our goodbye), while closing the channel makes the relay reset every leg, which the recipient could not
            // tell from a break that lost its verdict (it would dial again to send it once more).
            await CrocRuntime.DisposeAllAsync([.. streams, .. context?.DialedStreams ?? []]).ConfigureAwait(false);
            await _relay.CloseAsync().ConfigureAwait(false);
            context?.Dispose();
        }
    }
}

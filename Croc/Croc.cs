using CrocNet.Channel;
using CrocNet.Codes;
using CrocNet.Crypto;
using CrocNet.Diagnostics;
using CrocNet.Transfer;
using CrocNet.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Polly;

namespace CrocNet;

/// <summary>
/// Sends and receives files end to end encrypted through a Croc relay. Build one with
/// <see cref="New(Action{CrocOptionsBuilder})"/> or from DI (<c>services.AddCroc(...)</c>).
/// An instance is immutable and thread-safe: every call runs its own session, so one instance
/// can serve a whole application.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The invoker wraps a shared or caller-owned handler and holds nothing to release.")]
public sealed class Croc
{
    private static readonly TimeSpan GoodbyeTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan RefusalGoodbyeTimeout = TimeSpan.FromSeconds(2);

    /// <summary>One connection pool for every instance, as IHttpClientFactory would share it.</summary>
    private static readonly SocketsHttpHandler SharedHandler = new()
    {
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        ConnectTimeout = TimeSpan.FromSeconds(10),
    };

    private readonly CrocOptions _options;
    private readonly ILogger _logger;
    private readonly HttpMessageInvoker _http;
    private readonly ResiliencePipeline _pipeline;

    /// <summary>Creates an instance from DI-style options; invalid options throw one aggregated <see cref="CrocException"/>.</summary>
    public Croc(IOptions<CrocOptions> options, ILogger<Croc> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value.Clone();
        CrocOptionsValidator.ThrowIfInvalid(_options);
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _pipeline = RelayResilience.Create(_options, _logger);
        // The invoker owns nothing (the handler is shared or the caller's), so Croc needs no Dispose.
        _http = new HttpMessageInvoker(_options.HttpHandler ?? SharedHandler, disposeHandler: false);
    }

    /// <summary>Builds an instance with the fluent options builder, for example
    /// <c>Croc.New(o =&gt; o.WithCurve("p256").WithRelay(url))</c>.</summary>
    /// <exception cref="CrocException">The options are invalid (code <see cref="CrocErrorCode.InvalidOptions"/>); the message lists every problem.</exception>
    public static Croc New(Action<CrocOptionsBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var options = new CrocOptions();
        configure(new CrocOptionsBuilder(options));
        var factory = options.LoggerFactory ?? NullLoggerFactory.Instance;
        return new Croc(Microsoft.Extensions.Options.Options.Create(options), factory.CreateLogger<Croc>());
    }

    /// <summary>Generates a fresh code (<c>&lt;channel&gt;-&lt;word&gt;-&lt;word&gt;-&lt;word&gt;</c>) to pass to <see cref="CrocOptionsBuilder.WithCode(string)"/>.</summary>
    public static string GenerateCode() => CodePhrase.Generate().Code;

    /// <summary>A copy of the validated options this instance runs with.</summary>
    public CrocOptions Options => _options.Clone();

    /// <summary>Sends a file or a folder and completes once the recipient has verified it.</summary>
    /// <remarks>Use <see cref="StartSendAsync(SendContent, IProgress{TransferProgress}?, CancellationToken)"/> to learn the generated code before the transfer ends.</remarks>
    public Task<TransferResult> SendAsync(string path, CancellationToken cancellationToken = default) =>
        SendAsync(SendContent.FromPath(path), null, cancellationToken);

    /// <summary>Sends a file or a folder, reporting progress.</summary>
    public Task<TransferResult> SendAsync(string path, IProgress<TransferProgress>? progress, CancellationToken cancellationToken = default) =>
        SendAsync(SendContent.FromPath(path), progress, cancellationToken);

    /// <summary>Sends several files and folders.</summary>
    public Task<TransferResult> SendAsync(IEnumerable<string> paths, IProgress<TransferProgress>? progress = null, CancellationToken cancellationToken = default) =>
        SendAsync(SendContent.FromPaths(paths), progress, cancellationToken);

    /// <summary>Sends the contents of a stream as a file named <paramref name="name"/>.</summary>
    public Task<TransferResult> SendAsync(Stream content, string name, IProgress<TransferProgress>? progress = null, CancellationToken cancellationToken = default) =>
        SendAsync(SendContent.FromStream(content, name), progress, cancellationToken);

    /// <summary>Sends a short text; the recipient finds it in <see cref="TransferResult.Text"/>.</summary>
    public Task<TransferResult> SendTextAsync(string text, CancellationToken cancellationToken = default) =>
        SendAsync(SendContent.FromText(text), null, cancellationToken);

    /// <summary>Sends <paramref name="content"/> and completes once the recipient has verified it.</summary>
    public async Task<TransferResult> SendAsync(SendContent content, IProgress<TransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var operation = await StartSendAsync(content, progress, cancellationToken).ConfigureAwait(false);
        await using var _ = operation.ConfigureAwait(false);
        return await operation.Completion.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Opens the channel on the relay and returns at once with the <see cref="CrocSendOperation.Code"/> to give
    /// the recipient; the transfer carries on in <see cref="CrocSendOperation.Completion"/>.
    /// </summary>
    public async Task<CrocSendOperation> StartSendAsync(SendContent content, IProgress<TransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        var started = _options.TimeProvider.GetTimestamp();
        var plan = content.Build(FileSender.ChunkSize, _options.FileHash);
        var code = _options.Code is { } given ? CodePhrase.Parse(given) : CodePhrase.Generate();
        var suite = Pake.Spake2Suite.Get(_options.Curve);
        var password = new PasswordScalar(code, suite);
        var relay = NewRelayClient();
        RelayState joined;
        try
        {
            joined = await relay.JoinAsync(code.Channel, suite.Name, "sender", cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            password.Dispose();
            throw;
        }

        Log.Joined(_logger, relay.DisplayAddress, "sender", code.Channel, suite.Name);

        var cancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var tracker = new ProgressTracker(progress, _options.Progress, _options.TimeProvider)
        {
            TotalBytes = plan.Manifest.Entries.Any(e => e.Size < 0) ? -1 : plan.Manifest.Entries.Where(e => !e.Dir).Sum(e => e.Size),
            TotalFiles = plan.Manifest.Entries.Count(e => !e.Dir),
        };
        var completion = Task.Run(() => RunSenderAsync(relay, joined, code, suite, password, plan, tracker, started, cancellation.Token), CancellationToken.None);
        return new CrocSendOperation(code.Code, code.Channel, completion, cancellation);
    }

    /// <summary>Receives into the output directory (default: the current directory) and completes once every file is verified and in place.</summary>
    public Task<TransferResult> ReceiveAsync(string code, CancellationToken cancellationToken = default) =>
        ReceiveAsync(code, progress: null, cancellationToken);

    /// <summary>Receives into the output directory, reporting progress.</summary>
    public Task<TransferResult> ReceiveAsync(string code, IProgress<TransferProgress>? progress, CancellationToken cancellationToken = default)
    {
        var target = new ReceiveTarget
        {
            OutputDirectory = _options.OutputDirectory ?? Directory.GetCurrentDirectory(),
            Overwrite = _options.Overwrite,
            ConfirmOffer = _options.ConfirmOffer,
        };
        return ReceiveCoreAsync(code, target, progress, cancellationToken);
    }

    /// <summary>
    /// Receives a single file (or a text) into <paramref name="destination"/>, in order. The stream sees the
    /// bytes before the final hash check: treat its contents as valid only if this call succeeds.
    /// </summary>
    public Task<TransferResult> ReceiveAsync(string code, Stream destination, IProgress<TransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        if (!destination.CanWrite)
        {
            throw new ArgumentException("The destination stream must be writable.", nameof(destination));
        }

        return ReceiveCoreAsync(code, new ReceiveTarget { Destination = destination, ConfirmOffer = _options.ConfirmOffer }, progress, cancellationToken);
    }

    private RelayChannelClient NewRelayClient() =>
        new(_http, _options.Relay!, _pipeline, _options.TimeProvider, _logger);

    private async Task<TransferResult> RunSenderAsync(
        RelayChannelClient relay, RelayState joined, CodePhrase code, Pake.Spake2Suite suite, PasswordScalar password, SendPlan plan, ProgressTracker tracker, long started, CancellationToken cancellationToken)
    {
        using var _ = password;
        Stream[] streams = [];
        try
        {
            tracker.SetStage(TransferStage.WaitingForPeer);
            using var handshake = await Handshake.RunSenderAsync(
                relay, joined, code, suite, password, _options.PeerTimeout, _logger, () => tracker.SetStage(TransferStage.Authenticating), cancellationToken).ConfigureAwait(false);
            tracker.SetStage(TransferStage.Connecting);
            streams = await ConnectAsync(relay, handshake.State, cancellationToken).ConfigureAwait(false);
            var state = await relay.WaitForAsync(handshake.State, s => s.Stapled, _options.PeerTimeout, cancellationToken).ConfigureAwait(false);
            if (!state.Stapled)
            {
                throw new CrocRelayException(CrocErrorCode.ConnectionLost, "The channel closed before the data connections were joined.", "closed", 410);
            }

            Log.Stapled(_logger, code.Channel);
            using var context = NewContext(handshake, streams, StreamDirection.SenderToRecipient, tracker);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, context.IdleToken);
            IReadOnlyList<TransferredFile> files;
            try
            {
                files = await FileSender.RunAsync(plan, context, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException ex) when (context.TimedOut && !cancellationToken.IsCancellationRequested)
            {
                throw IdleTimeout(ex);
            }

            tracker.SetStage(TransferStage.Completed);
            var result = new TransferResult
            {
                Direction = TransferDirection.Send,
                Channel = code.Channel,
                Curve = handshake.Curve,
                Files = files,
                Directories = plan.Manifest.Entries.Where(e => e.Dir).Select(e => e.Path).ToList(),
                TotalBytes = files.Sum(f => f.Length),
                Duration = _options.TimeProvider.GetElapsedTime(started),
                Text = plan.Manifest.Text,
            };
            Log.Completed(_logger, code.Channel, files.Count, result.TotalBytes, result.Duration);
            return result;
        }
        catch (Exception ex)
        {
            LogFailure(code.Channel, ex, cancellationToken);
            throw;
        }
        finally
        {
            await relay.CloseAsync().ConfigureAwait(false);
            await DisposeAllAsync(streams).ConfigureAwait(false);
        }
    }

    private async Task<TransferResult> ReceiveCoreAsync(string code, ReceiveTarget target, IProgress<TransferProgress>? progress, CancellationToken cancellationToken)
    {
        var phrase = CodePhrase.Parse(code);
        var started = _options.TimeProvider.GetTimestamp();
        var tracker = new ProgressTracker(progress, _options.Progress, _options.TimeProvider);
        var relay = NewRelayClient();
        // The sender picks the curve; ours is the likely one, so derive w for it while we wait.
        using var password = new PasswordScalar(phrase, Pake.Spake2Suite.Get(_options.Curve));
        Stream[] streams = [];
        try
        {
            tracker.SetStage(TransferStage.WaitingForPeer);
            var joined = await JoinAsRecipientAsync(relay, phrase.Channel, cancellationToken).ConfigureAwait(false);
            Log.Joined(_logger, relay.DisplayAddress, "recipient", phrase.Channel, joined.Curve ?? "?");
            tracker.SetStage(TransferStage.Authenticating);
            using var handshake = await Handshake.RunRecipientAsync(relay, joined, phrase, password, _options.PeerTimeout, _logger, cancellationToken).ConfigureAwait(false);
            tracker.SetStage(TransferStage.Connecting);
            streams = await ConnectAsync(relay, handshake.State, cancellationToken).ConfigureAwait(false);

            using var context = NewContext(handshake, streams, StreamDirection.RecipientToSender, tracker);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, context.IdleToken);
            ReceiveOutcome outcome;
            try
            {
                outcome = await FileReceiver.RunAsync(context, target, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException ex) when (context.TimedOut && !cancellationToken.IsCancellationRequested)
            {
                throw IdleTimeout(ex);
            }

            // Let the sender read our verdict before the channel (and its connections) go away.
            await WaitForGoodbyeAsync(streams[0], cancellationToken).ConfigureAwait(false);
            tracker.SetStage(TransferStage.Completed);
            var result = new TransferResult
            {
                Direction = TransferDirection.Receive,
                Channel = phrase.Channel,
                Curve = handshake.Curve,
                Files = outcome.Files,
                Directories = outcome.Directories,
                TotalBytes = outcome.Files.Sum(f => f.Length),
                Duration = _options.TimeProvider.GetElapsedTime(started),
                Text = outcome.Manifest.Text,
            };
            Log.Completed(_logger, phrase.Channel, result.Files.Count, result.TotalBytes, result.Duration);
            return result;
        }
        catch (Exception ex)
        {
            LogFailure(phrase.Channel, ex, cancellationToken);
            if (ex is CrocTransferException or CrocProtocolException && streams.Length > 0)
            {
                // Our refusal or abort is on the wire: closing the channel now would have the relay reset the
                // connections, and a reset discards what the sender has not read yet. Give it a moment to read
                // and leave first.
                await WaitForGoodbyeAsync(streams[0], cancellationToken, RefusalGoodbyeTimeout).ConfigureAwait(false);
            }

            throw;
        }
        finally
        {
            await relay.CloseAsync().ConfigureAwait(false);
            await DisposeAllAsync(streams).ConfigureAwait(false);
        }
    }

    private async Task<RelayState> JoinAsRecipientAsync(RelayChannelClient relay, string channel, CancellationToken cancellationToken)
    {
        var time = _options.TimeProvider;
        var started = time.GetTimestamp();
        var delay = TimeSpan.FromMilliseconds(25);
        while (true)
        {
            try
            {
                return await relay.JoinAsync(channel, null, "recipient", cancellationToken).ConfigureAwait(false);
            }
            catch (CrocRelayException ex) when (ex.RelayCode == "no_channel")
            {
                // The recipient may be first: wait for the sender's channel, within limits.
                var waited = time.GetElapsedTime(started);
                if (waited + delay > _options.ChannelWaitTimeout)
                {
                    throw new CrocRelayException(
                        CrocErrorCode.RelayRefused,
                        $"No sender is using channel '{channel}' (waited {_options.ChannelWaitTimeout}). Check the code, or start the sender first.",
                        "no_channel",
                        404,
                        ex);
                }

                Log.WaitingForChannel(_logger, channel);
                await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
                // Quick at first (the sender is usually a moment away), never more than twice a second.
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 1.5, 500));
            }
        }
    }

    private Task<Stream[]> ConnectAsync(RelayChannelClient relay, RelayState state, CancellationToken cancellationToken)
    {
        var host = string.IsNullOrWhiteSpace(state.Host) ? relay.Relay.IdnHost : state.Host;
        return StapleConnector.ConnectAllAsync(host, state.Ports, relay.Channel!, relay.Uuid!, _pipeline, _options.TransportInterceptor, cancellationToken);
    }

    private TransferContext NewContext(HandshakeResult handshake, Stream[] streams, StreamDirection own, ProgressTracker tracker)
    {
        var key = handshake.Keys.SessionKey.ToArray();
        var peer = own == StreamDirection.SenderToRecipient ? StreamDirection.RecipientToSender : StreamDirection.SenderToRecipient;
        // The sender writes on every connection and reads its recipient's answers on the first;
        // the recipient does the mirror image.
        var writers = own == StreamDirection.SenderToRecipient
            ? streams.Select((s, i) => NewWriter(s, key, own, i)).ToArray()
            : [NewWriter(streams[0], key, own, 0)];
        var readers = own == StreamDirection.SenderToRecipient
            ? [NewReader(streams[0], key, peer, 0)]
            : streams.Select((s, i) => NewReader(s, key, peer, i)).ToArray();
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(key);
        return new TransferContext(writers, readers, tracker, _options.IdleTimeout, _options.TimeProvider) { DecisionTimeout = _options.PeerTimeout };
    }

    private static FrameWriter NewWriter(Stream stream, ReadOnlySpan<byte> sessionKey, StreamDirection direction, int connection)
    {
        var key = FrameKeys.Derive(sessionKey, direction, connection);
        try
        {
            return new FrameWriter(stream, key, FileSender.ChunkSize + (64 * 1024));
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(key);
        }
    }

    private static FrameReader NewReader(Stream stream, ReadOnlySpan<byte> sessionKey, StreamDirection direction, int connection)
    {
        var key = FrameKeys.Derive(sessionKey, direction, connection);
        try
        {
            return new FrameReader(stream, key);
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(key);
        }
    }

    private static async Task WaitForGoodbyeAsync(Stream control, CancellationToken cancellationToken, TimeSpan? limit = null)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(limit ?? GoodbyeTimeout);
        try
        {
            var buffer = new byte[1];
            await control.ReadAsync(buffer, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The sender is gone (or slow to go, or our caller stopped waiting, or the connection is already
            // closed): this wait is a courtesy, never a failure of its own.
        }
    }

    private CrocTransferException IdleTimeout(Exception inner) => new CrocTransferException(
        CrocErrorCode.Timeout, $"The transfer made no progress for {_options.IdleTimeout}; the other side or the relay stopped responding.", inner);

    private void LogFailure(string channel, Exception ex, CancellationToken cancellationToken)
    {
        if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested)
        {
            Log.Cancelled(_logger, channel);
        }
        else
        {
            Log.Failed(_logger, channel, (ex as CrocException)?.Code ?? CrocErrorCode.Unknown, ex);
        }
    }

    private static async Task DisposeAllAsync(Stream[] streams)
    {
        foreach (var stream in streams)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }
}

using Microsoft.Extensions.Logging;

namespace CrocNet;

/// <summary>A fluent way to fill in <see cref="CrocOptions"/>; used by <see cref="Croc.New(Action{CrocOptionsBuilder})"/> and <c>AddCroc</c>.</summary>
public sealed class CrocOptionsBuilder
{
    /// <summary>Wraps options to fill in.</summary>
    public CrocOptionsBuilder(CrocOptions options) => Options = options ?? throw new ArgumentNullException(nameof(options));

    /// <summary>The options being built.</summary>
    public CrocOptions Options { get; }

    /// <summary>Uses the relay at <paramref name="relay"/> (for example <c>http://relay.example:9009</c>).</summary>
    public CrocOptionsBuilder WithRelay(string relay)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(relay);
        Options.Relay = Uri.TryCreate(relay, UriKind.Absolute, out var uri)
            ? uri
            : throw new CrocException(CrocErrorCode.InvalidOptions, $"The relay address '{relay}' is not an absolute URL such as http://127.0.0.1:9009.");
        return this;
    }

    /// <summary>Uses the relay at <paramref name="relay"/>.</summary>
    public CrocOptionsBuilder WithRelay(Uri relay)
    {
        Options.Relay = relay ?? throw new ArgumentNullException(nameof(relay));
        return this;
    }

    /// <summary>Uses the SPAKE2 curve <paramref name="curve"/>: <c>p256</c>, <c>p384</c>, <c>p521</c> or <c>siec</c>.</summary>
    public CrocOptionsBuilder WithCurve(string curve)
    {
        Options.Curve = curve;
        return this;
    }

    /// <summary>Sends with this code instead of a generated one.</summary>
    public CrocOptionsBuilder WithCode(string code)
    {
        Options.Code = code;
        return this;
    }

    /// <summary>Writes received files into <paramref name="path"/>.</summary>
    public CrocOptionsBuilder WithOutputDirectory(string path)
    {
        Options.OutputDirectory = path;
        return this;
    }

    /// <summary>Chooses what happens when a received file already exists.</summary>
    public CrocOptionsBuilder WithOverwrite(CrocOverwritePolicy policy)
    {
        Options.Overwrite = policy;
        return this;
    }

    /// <summary>Chooses the per-file hash this side computes when sending.</summary>
    public CrocOptionsBuilder WithFileHash(CrocHashAlgorithm algorithm)
    {
        Options.FileHash = algorithm;
        return this;
    }

    /// <summary>Sets how long a sender waits for its recipient.</summary>
    public CrocOptionsBuilder WithPeerTimeout(TimeSpan timeout)
    {
        Options.PeerTimeout = timeout;
        return this;
    }

    /// <summary>Sets how long a recipient waits for the sender's channel to appear.</summary>
    public CrocOptionsBuilder WithChannelWaitTimeout(TimeSpan timeout)
    {
        Options.ChannelWaitTimeout = timeout;
        return this;
    }

    /// <summary>Sets how long a transfer may make no progress.</summary>
    public CrocOptionsBuilder WithIdleTimeout(TimeSpan timeout)
    {
        Options.IdleTimeout = timeout;
        return this;
    }

    /// <summary>Sets how transient relay faults are retried.</summary>
    public CrocOptionsBuilder WithRetries(int maxRetries, TimeSpan baseDelay)
    {
        Options.MaxRetries = maxRetries;
        Options.RetryBaseDelay = baseDelay;
        return this;
    }

    /// <summary>Reports progress of every transfer to <paramref name="progress"/>.</summary>
    public CrocOptionsBuilder WithProgress(IProgress<TransferProgress> progress)
    {
        Options.Progress = progress;
        return this;
    }

    /// <summary>Asks <paramref name="confirm"/> before accepting what a sender offers.</summary>
    public CrocOptionsBuilder WithOfferConfirmation(Func<TransferOffer, CancellationToken, ValueTask<bool>> confirm)
    {
        Options.ConfirmOffer = confirm;
        return this;
    }

    /// <summary>Logs through <paramref name="loggerFactory"/>.</summary>
    public CrocOptionsBuilder WithLogging(ILoggerFactory loggerFactory)
    {
        Options.LoggerFactory = loggerFactory;
        return this;
    }

    /// <summary>Uses <paramref name="timeProvider"/> for timeouts and durations.</summary>
    public CrocOptionsBuilder WithTimeProvider(TimeProvider timeProvider)
    {
        Options.TimeProvider = timeProvider;
        return this;
    }

    /// <summary>Talks HTTP to the relay through <paramref name="handler"/>.</summary>
    public CrocOptionsBuilder WithHttpHandler(HttpMessageHandler handler)
    {
        Options.HttpHandler = handler;
        return this;
    }
}

using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace CrocNet;

/// <summary>
/// A fluent way to configure a <see cref="Croc"/>: <c>With…</c> methods fill in the bindable <see cref="CrocOptions"/>,
/// <c>Use…</c> methods supply services. Used by <see cref="Croc.New(Action{CrocOptionsBuilder})"/> and <c>AddCroc</c>.
/// Nothing is checked here: every problem is reported together when the instance is built.
/// </summary>
public sealed class CrocOptionsBuilder
{
    internal CrocOptionsBuilder(CrocOptions options, CrocServices services)
    {
        Options = options;
        Services = services;
    }

    /// <summary>The options being built.</summary>
    public CrocOptions Options { get; }

    internal CrocServices Services { get; }

    /// <summary>Uses the relay at <paramref name="relay"/> (for example <c>http://relay.example:9009</c>).</summary>
    public CrocOptionsBuilder WithRelay(string relay)
    {
        if (Uri.TryCreate(relay, UriKind.Absolute, out var uri))
        {
            Options.Relay = uri;
            Options.UnparsedRelay = null;
        }
        else
        {
            // Reported by validation together with any other problem, rather than thrown from the middle of a chain.
            Options.UnparsedRelay = relay ?? "";
        }

        return this;
    }

    /// <summary>Uses the relay at <paramref name="relay"/>.</summary>
    public CrocOptionsBuilder WithRelay(Uri relay)
    {
        Options.Relay = relay;
        Options.UnparsedRelay = null;
        return this;
    }

    /// <summary>Uses the SPAKE2 curve <paramref name="curve"/>: <c>p256</c>, <c>p384</c>, <c>p521</c> or <c>siec</c>.</summary>
    public CrocOptionsBuilder WithCurve(string curve)
    {
        Options.Curve = curve;
        return this;
    }

    /// <summary>Writes received files into <paramref name="path"/> unless a call says otherwise.</summary>
    public CrocOptionsBuilder WithOutputDirectory(string path)
    {
        Options.OutputDirectory = path;
        return this;
    }

    /// <summary>Chooses what happens when a received file already exists, unless a call says otherwise.</summary>
    public CrocOptionsBuilder WithOverwrite(CrocOverwritePolicy policy)
    {
        Options.Overwrite = policy;
        return this;
    }

    /// <summary>Chooses the per-file digest this side computes when sending, unless a call says otherwise.</summary>
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

    /// <summary>Sets how a data connection that breaks mid-transfer is dialed again: at most <paramref name="attempts"/>
    /// dials (<c>0</c>: never, a break fails the transfer) within <paramref name="within"/> in all.</summary>
    public CrocOptionsBuilder WithReconnect(int attempts, TimeSpan within)
    {
        Options.ReconnectAttempts = attempts;
        Options.ReconnectTimeout = within;
        return this;
    }

    /// <summary>Chooses how data connections reach the relay (see <see cref="CrocTransport"/>).</summary>
    public CrocOptionsBuilder WithTransport(CrocTransport transport)
    {
        Options.Transport = transport;
        return this;
    }

    /// <summary>Uses a private relay's password (<see cref="CrocOptions.RelayPassword"/>); it is never logged.</summary>
    public CrocOptionsBuilder WithRelayPassword(string password)
    {
        Options.RelayPassword = password;
        return this;
    }

    /// <summary>
    /// Accepts <paramref name="certificate"/> from an <c>https://</c> relay in addition to the system's trust: either the
    /// relay's own certificate (self-signed, matched exactly) or the root of a private CA that issued it (the host name must
    /// still match). Every other certificate is checked as usual. The instance then uses an HTTP handler of its own, for
    /// requests and WebSocket legs alike, so this cannot be combined with <see cref="UseHttpMessageHandler"/>. Only the
    /// public part is used; the caller keeps ownership.
    /// </summary>
    public CrocOptionsBuilder TrustRelayCertificate(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        // A copy of the public part: the caller may dispose theirs, and no private key is held.
        Services.TrustedRelayCertificate = X509CertificateLoader.LoadCertificate(certificate.RawData);
        return this;
    }

    /// <summary>Logs through <paramref name="loggerFactory"/>. Secrets (codes, keys, relay tokens) are never logged.</summary>
    /// <remarks>With <c>AddCroc</c> the container's <see cref="ILoggerFactory"/> is used unless this is called.</remarks>
    public CrocOptionsBuilder UseLoggerFactory(ILoggerFactory loggerFactory)
    {
        Services.LoggerFactory = loggerFactory ?? throw new ArgumentNullException(nameof(loggerFactory));
        return this;
    }

    /// <summary>Uses <paramref name="timeProvider"/> for every timeout and duration.</summary>
    /// <remarks>With <c>AddCroc</c> a <see cref="TimeProvider"/> registered in the container is used unless this is called.</remarks>
    public CrocOptionsBuilder UseTimeProvider(TimeProvider timeProvider)
    {
        Services.TimeProvider = timeProvider ?? throw new ArgumentNullException(nameof(timeProvider));
        return this;
    }

    /// <summary>Talks HTTP to the relay through <paramref name="handler"/> (a proxy, custom certificate checks), for its
    /// requests and its WebSocket legs alike. The instance does not dispose it.</summary>
    public CrocOptionsBuilder UseHttpMessageHandler(HttpMessageHandler handler)
    {
        Services.HttpHandler = handler ?? throw new ArgumentNullException(nameof(handler));
        return this;
    }

    /// <summary>Test seam: opens data connections through <paramref name="transport"/>.</summary>
    internal CrocOptionsBuilder UseTransport(Transport.IStapleTransport transport)
    {
        Services.Transport = transport;
        return this;
    }
}

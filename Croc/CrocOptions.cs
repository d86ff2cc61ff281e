using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Logging;

namespace CrocNet;

/// <summary>What a receiver does when a file it is about to write already exists.</summary>
public enum CrocOverwritePolicy
{
    /// <summary>Refuse the whole transfer before anything is written (the default).</summary>
    Fail = 0,

    /// <summary>Replace existing files (never directories, never through a symbolic link).</summary>
    Overwrite,
}

/// <summary>How each file's end-to-end hash digests its chunks (see <c>docs/protocol.md</c>).</summary>
public enum CrocHashAlgorithm
{
    /// <summary>XXH3-128 per chunk, SHA-256 over the chunk list: checks reassembly end to end at memory speed (the default).
    /// Tampering is already stopped by AES-GCM on every frame; this hash proves the file on disk is the file sent.</summary>
    XxHash128 = 0,

    /// <summary>SHA-256 per chunk and over the chunk list: a cryptographic digest, at roughly ten times the CPU cost.</summary>
    Sha256,
}

/// <summary>
/// Settings of a <see cref="Croc"/> instance. Bindable from configuration; every value is validated
/// when the instance is built (<see cref="Croc.New(Action{CrocOptionsBuilder})"/>, <c>AddCroc</c> or the constructor).
/// </summary>
public sealed class CrocOptions
{
    /// <summary>The default relay address: a relay on this machine.</summary>
    public const string DefaultRelay = "http://127.0.0.1:9009/";

    /// <summary>The relay's base address (HTTP routes live under it; TCP ports are on its host).</summary>
    /// <value>Default <c>http://127.0.0.1:9009/</c>.</value>
    [Required]
    public Uri? Relay { get; set; } = new(DefaultRelay);

    /// <summary>The SPAKE2 curve: <c>p256</c>, <c>p384</c>, <c>p521</c> or <c>siec</c>.</summary>
    /// <value>Default <c>p256</c>.</value>
    [Required]
    public string Curve { get; set; } = "p256";

    /// <summary>A code for the sender to use instead of a generated one (<c>&lt;channel&gt;-&lt;secret&gt;</c>).</summary>
    /// <value>Default <see langword="null"/>: a fresh code is generated for every send.</value>
    public string? Code { get; set; }

    /// <summary>Where received files go.</summary>
    /// <value>Default <see langword="null"/>: the current directory at the time of the call.</value>
    public string? OutputDirectory { get; set; }

    /// <summary>What to do when a received file already exists.</summary>
    /// <value>Default <see cref="CrocOverwritePolicy.Fail"/>.</value>
    public CrocOverwritePolicy Overwrite { get; set; } = CrocOverwritePolicy.Fail;

    /// <summary>The per-file hash a sender computes and its recipient verifies (the recipient follows the sender's choice).</summary>
    /// <value>Default <see cref="CrocHashAlgorithm.XxHash128"/>.</value>
    public CrocHashAlgorithm FileHash { get; set; } = CrocHashAlgorithm.XxHash128;

    /// <summary>How long a sender waits for a recipient to join and confirm the key.</summary>
    /// <value>Default 10 minutes.</value>
    public TimeSpan PeerTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How long a recipient who starts first waits for the sender's channel to appear.</summary>
    /// <value>Default 30 seconds.</value>
    public TimeSpan ChannelWaitTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a transfer may make no progress before it fails.</summary>
    /// <value>Default 60 seconds.</value>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How many times a transient relay fault (refused connection, reset, 5xx) is retried.</summary>
    /// <value>Default 4.</value>
    [Range(0, 20)]
    public int MaxRetries { get; set; } = 4;

    /// <summary>The first retry delay; later ones grow exponentially, with jitter.</summary>
    /// <value>Default 200 milliseconds.</value>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Receives progress reports of every transfer this instance runs.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public IProgress<TransferProgress>? Progress { get; set; }

    /// <summary>
    /// Asked by a recipient, once the sender's list of files is known and before anything is written,
    /// whether to accept it. Returning <see langword="false"/> rejects the transfer.
    /// </summary>
    /// <value>Default <see langword="null"/>: every offer is accepted.</value>
    public Func<TransferOffer, CancellationToken, ValueTask<bool>>? ConfirmOffer { get; set; }

    /// <summary>Logs go here. Secrets (code, keys, relay tokens) are never logged.</summary>
    /// <value>Default <see langword="null"/>: no logging.</value>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>The clock used for timeouts and durations.</summary>
    /// <value>Default <see cref="TimeProvider.System"/>.</value>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>The HTTP handler used to talk to the relay (for proxies or custom certificates).</summary>
    /// <value>Default <see langword="null"/>: a <see cref="SocketsHttpHandler"/> owned by the instance.</value>
    public HttpMessageHandler? HttpHandler { get; set; }

    /// <summary>Test seam: wraps each data connection (index given) before the hello, e.g. in a hostile middlebox.</summary>
    internal Func<Stream, int, Stream>? TransportInterceptor { get; set; }

    internal CrocOptions Clone() => (CrocOptions)MemberwiseClone();
}

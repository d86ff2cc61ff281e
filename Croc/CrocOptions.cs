using System.ComponentModel.DataAnnotations;

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

/// <summary>How data connections (legs) reach the relay.</summary>
public enum CrocTransport
{
    /// <summary>TCP when the relay offers TCP ports and the first connect succeeds within a short bound (2 seconds),
    /// otherwise a WebSocket on the relay's own address when the relay takes them (the default). Decided per lane.</summary>
    Auto = 0,

    /// <summary>Only TCP, to the relay's data ports; a relay that offers none fails the transfer before any connection opens.</summary>
    Tcp = 1,

    /// <summary>Only WebSockets (<c>ws://</c> for an <c>http://</c> relay, <c>wss://</c> for <c>https://</c>); a relay that
    /// does not take them fails the transfer before any connection opens.</summary>
    WebSocket = 2,
}

/// <summary>
/// Lifetime-wide settings of a <see cref="Croc"/> instance: plain data, bindable from configuration. Every
/// value is validated when the instance is built (<see cref="Croc.New(Action{CrocOptionsBuilder})"/>, <c>AddCroc</c>
/// or the constructor), and every path reports problems the same way: one <see cref="Microsoft.Extensions.Options.OptionsValidationException"/>
/// listing them all. What differs per call lives in <see cref="SendOptions"/> and <see cref="ReceiveOptions"/>;
/// services (logging, clock, HTTP handler) come from the builder or from DI.
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

        /// <summary>Where received files go unless a call says otherwise (<see cref="ReceiveOptions.OutputDirectory"/>).</summary>
    /// <value>Default <see langword="null"/>: the current directory at the time of the call.</value>
    public string? OutputDirectory { get; set; }

    /// <summary>What to do when a received file already exists, unless a call says otherwise (<see cref="ReceiveOptions.Overwrite"/>).</summary>
    /// <value>Default <see cref="CrocOverwritePolicy.Fail"/>.</value>
    public CrocOverwritePolicy Overwrite { get; set; } = CrocOverwritePolicy.Fail;

    /// <summary>The per-file digest a sender computes and its recipient verifies (the recipient follows the sender's choice),
    /// unless a call says otherwise (<see cref="SendOptions.FileHash"/>).</summary>
    /// <value>Default <see cref="CrocHashAlgorithm.XxHash128"/>.</value>
    public CrocHashAlgorithm FileHash { get; set; } = CrocHashAlgorithm.XxHash128;

    /// <summary>
    /// How long one side waits for the other person's side: a sender for a recipient to join and confirm the key,
    /// a recipient for the sender's key message, either side for the data connections to be joined, and a sender
    /// for the recipient to accept or decline the offer.
    /// </summary>
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

    /// <summary>
    /// How many times a data connection that breaks mid-transfer is dialed again before the transfer fails; the transfer
    /// then carries on where it was, sending again only what the other side had not received. <c>0</c> turns reconnecting
    /// off: a broken connection fails the transfer with <see cref="CrocErrorCode.ConnectionLost"/>.
    /// </summary>
    /// <value>Default 8.</value>
    [Range(0, 100)]
    public int ReconnectAttempts { get; set; } = 8;

    /// <summary>How long a broken data connection may take to come back, all attempts included, before the transfer fails.</summary>
    /// <value>Default 30 seconds.</value>
    public TimeSpan ReconnectTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How data connections reach the relay: TCP to its data ports, WebSockets on its HTTP address, or whichever works.</summary>
    /// <value>Default <see cref="CrocTransport.Auto"/>.</value>
    public CrocTransport Transport { get; set; } = CrocTransport.Auto;

    /// <summary>The password of a private relay: sent as <c>Authorization: Bearer</c> on every HTTP request and WebSocket
    /// upgrade, and in every TCP hello. Never logged and never part of a message. Printable ASCII, 1-256 characters.</summary>
    /// <value>Default <see langword="null"/>: an open relay.</value>
    public string? RelayPassword { get; set; }

    /// <summary>A relay address given as text that is not an absolute URL; reported by validation with the other problems.</summary>
    internal string? UnparsedRelay { get; set; }

    internal CrocOptions Clone() => (CrocOptions)MemberwiseClone();
}

using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CrocNet.Relay;

/// <summary>Settings of a standalone <see cref="CrocRelayServer"/>.</summary>
public sealed class CrocRelayServerOptions
{
    /// <summary>
    /// The URL the server listens on; port <c>0</c> takes an ephemeral port (see <see cref="CrocRelayServer.BaseAddress"/>).
    /// <c>https://</c> serves TLS with <see cref="Certificate"/> or <see cref="CertificatePath"/>; <c>http://[::]:port</c>
    /// listens on IPv6 and IPv4 alike.
    /// </summary>
    /// <value>Default <c>http://0.0.0.0:9009</c>.</value>
    public string Url { get; set; } = "http://0.0.0.0:9009";

    /// <summary>The base path of the relay's routes, e.g. <c>/croc</c>.</summary>
    /// <value>Default empty: the routes are <c>/join</c> and <c>/channel</c>.</value>
    public string PathBase { get; set; } = string.Empty;

    /// <summary>The relay's own settings (TCP ports, limits, timeouts).</summary>
    /// <value>Default: a new <see cref="CrocRelayOptions"/> with its defaults.</value>
    public CrocRelayOptions Relay { get; set; } = new();

    /// <summary>Where logs go.</summary>
    /// <value>Default <see langword="null"/>: no logging.</value>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>
    /// The most HTTP connections the server keeps open at once (Kestrel's <c>MaxConcurrentConnections</c>; upgraded
    /// connections are limited to the same number); more are closed at once.
    /// </summary>
    /// <value>
    /// Default <see langword="null"/>: derived from the process's soft <c>RLIMIT_NOFILE</c> like
    /// <see cref="CrocRelayOptions.MaxConnections"/> (half of what is left after the reserve, between 8 and 10,000).
    /// </value>
    public int? MaxConnections { get; set; }

    /// <summary>
    /// The most HTTP connections open at once from one IP address (IPv6: one <see cref="CrocRelayOptions.IPv6PrefixLength"/>
    /// prefix); more are closed at once. A client uses one or two.
    /// </summary>
    /// <value>Default 64.</value>
    public int MaxConnectionsPerAddress { get; set; } = 64;

    /// <summary>How long an HTTP connection may stay open without a request (Kestrel's <c>KeepAliveTimeout</c>, also its <c>RequestHeadersTimeout</c>).</summary>
    /// <value>Default 10 seconds.</value>
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The TLS certificate of an <c>https://</c> <see cref="Url"/>, with its private key. Wins over <see cref="CertificatePath"/>.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public X509Certificate2? Certificate { get; set; }

    /// <summary>
    /// The TLS certificate of an <c>https://</c> <see cref="Url"/> as a file: PKCS#12 (<c>.pfx</c>, with its key), or PEM
    /// (the key in the same file, or in <see cref="CertificateKeyPath"/>). Read once, at start.
    /// </summary>
    /// <value>Default <see langword="null"/>.</value>
    public string? CertificatePath { get; set; }

    /// <summary>The PEM private key of a PEM <see cref="CertificatePath"/>, when it is in a file of its own.</summary>
    /// <value>Default <see langword="null"/>: the key is in <see cref="CertificatePath"/>.</value>
    public string? CertificateKeyPath { get; set; }

    /// <summary>The password of a PKCS#12 <see cref="CertificatePath"/> or of an encrypted PEM key. Never logged or quoted.</summary>
    /// <value>Default <see langword="null"/>: not encrypted.</value>
    public string? CertificatePassword { get; set; }

    /// <summary>
    /// Further configuration of the relay's services, run right after <c>AddCrocRelay</c>: for example a shared channel
    /// store, <c>relay =&gt; relay.AddRedisChannelStore("localhost:6379")</c> (package Croc.Relay.Redis), so several
    /// servers serve the same channels.
    /// </summary>
    /// <value>Default <see langword="null"/>: the in-memory store and limits of one node.</value>
    public Action<ICrocRelayBuilder>? ConfigureRelay { get; set; }

    /// <summary>The relay's clock for channel expiry, hello and long-poll timeouts (not used by Kestrel itself).</summary>
    /// <value>Default <see langword="null"/>: <see cref="TimeProvider.System"/>.</value>
    public TimeProvider? TimeProvider { get; set; }
}

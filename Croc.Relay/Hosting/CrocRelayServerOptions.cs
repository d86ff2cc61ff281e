using Microsoft.Extensions.Logging;

namespace CrocNet.Relay;

/// <summary>Settings of a standalone <see cref="CrocRelayServer"/>.</summary>
public sealed class CrocRelayServerOptions
{
    /// <summary>The HTTP URL the server listens on; port <c>0</c> takes an ephemeral port (see <see cref="CrocRelayServer.BaseAddress"/>).</summary>
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

    /// <summary>The relay's clock for channel expiry, hello and long-poll timeouts (not used by Kestrel itself).</summary>
    /// <value>Default <see langword="null"/>: <see cref="TimeProvider.System"/>.</value>
    public TimeProvider? TimeProvider { get; set; }
}

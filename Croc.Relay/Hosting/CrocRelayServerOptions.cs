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

    /// <summary>The relay's clock for channel expiry, hello and long-poll timeouts (not used by Kestrel itself).</summary>
    /// <value>Default <see langword="null"/>: <see cref="TimeProvider.System"/>.</value>
    public TimeProvider? TimeProvider { get; set; }
}

namespace CrocNet.Relay.Protocol;

/// <summary>
/// The relay's fixed timings (the configurable ones are on <see cref="CrocRelayOptions"/>). Every one runs on the relay's
/// injected <see cref="TimeProvider"/>, so tests drive them with a fake clock.
/// </summary>
internal static class RelayTimings
{
    /// <summary>How long an HTTP request body may take to arrive in full before it is answered <c>400 bad_request</c>.</summary>
    public static readonly TimeSpan BodyReadTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How long a refused TCP connection is given to receive its <c>error</c> line before it is closed.</summary>
    public static readonly TimeSpan RefusalLinger = TimeSpan.FromSeconds(1);

    /// <summary>How long an accept loop pauses after a failure such as running out of file descriptors.</summary>
    public static readonly TimeSpan AcceptBackoff = TimeSpan.FromMilliseconds(100);

    /// <summary>The most often a table of per-address buckets is pruned.</summary>
    public static readonly TimeSpan PruneInterval = TimeSpan.FromSeconds(1);
}

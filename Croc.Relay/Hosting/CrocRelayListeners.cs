using CrocNet.Relay.Channels;

namespace CrocNet.Relay;

/// <summary>
/// The relay's TCP stapling listeners as bound. Resolve it from the host's services once the host has started, e.g. to
/// learn the ports when <see cref="CrocRelayOptions.Ports"/> asks for port <c>0</c>.
/// </summary>
/// <example>
/// <code>
/// await app.StartAsync();
/// var ports = app.Services.GetRequiredService&lt;CrocRelayListeners&gt;().Ports;
/// </code>
/// </example>
public sealed class CrocRelayListeners
{
    private readonly ChannelRegistry _registry;

    internal CrocRelayListeners(ChannelRegistry registry) => _registry = registry;

    /// <summary>The TCP ports bound, in the order of <see cref="CrocRelayOptions.Ports"/>; empty until the host has started.</summary>
    public IReadOnlyList<int> Ports => _registry.Ports;
}

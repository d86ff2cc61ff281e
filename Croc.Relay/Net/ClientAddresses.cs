using System.Net;
using Microsoft.AspNetCore.Http;

namespace CrocNet.Relay.Net;

/// <summary>
/// The client address of an HTTP request or a WebSocket leg, as the IP rule and the per-address limits see it: the
/// connection's peer, normalised (IPv4-mapped IPv6 as IPv4).
/// </summary>
internal sealed class ClientAddresses
{
    private readonly IPNetworkList _trusted;

    public ClientAddresses(CrocRelayOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _trusted = new IPNetworkList(options.TrustedProxies ?? []);
    }

    /// <summary>Whether <paramref name="peer"/> is a proxy the operator trusts to report client addresses.</summary>
    public bool IsTrustedProxy(IPAddress peer) => _trusted.Contains(peer);

    /// <summary>The client's address for a request; <see cref="IPAddress.None"/> when the host does not know its peer.</summary>
#pragma warning disable CA1822 // Reading forwarded headers from trusted proxies (in progress) uses the instance.
    public IPAddress FromHttp(HttpContext context)
#pragma warning restore CA1822
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Connection.RemoteIpAddress is { } address ? RelayAddress.Normalize(address) : IPAddress.None;
    }
}

using System.Net;

namespace CrocNet.Relay.Net;

/// <summary>
/// A fixed list of IP addresses and networks (the trusted proxies), parsed once: <c>10.0.0.0/8</c>, <c>::1</c>,
/// <c>192.168.1.7</c>. IPv4-mapped IPv6 addresses match their IPv4 form.
/// </summary>
internal sealed class IPNetworkList
{
    private readonly IPNetwork[] _networks;

    public IPNetworkList(IEnumerable<string> entries)
    {
        var networks = new List<IPNetwork>();
        foreach (var entry in entries)
        {
            if (!TryParseEntry(entry, out var network))
            {
                throw new FormatException($"'{entry}' is not an IP address or a CIDR network.");
            }

            networks.Add(network);
        }

        _networks = [.. networks];
    }

    public static IPNetworkList Empty { get; } = new([]);

    public bool IsEmpty => _networks.Length == 0;

    /// <summary>Parses an address (a network of one) or a CIDR network.</summary>
    public static bool TryParseEntry(string? entry, out IPNetwork network)
    {
        network = default;
        if (string.IsNullOrWhiteSpace(entry))
        {
            return false;
        }

        var text = entry.Trim();
        if (!text.Contains('/', StringComparison.Ordinal))
        {
            if (!IPAddress.TryParse(text, out var address))
            {
                return false;
            }

            address = RelayAddress.Normalize(address);
            network = new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
            return true;
        }

        if (!IPNetwork.TryParse(text, out var parsed))
        {
            return false;
        }

        network = parsed;
        return true;
    }

    public bool Contains(IPAddress address)
    {
        address = RelayAddress.Normalize(address);
        foreach (var network in _networks)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }

        return false;
    }
}

using System.Net;

namespace CrocNet.Relay.Net;

/// <summary>How the relay names a client's address: for the IP rule, and for every per-address limit.</summary>
internal static class RelayAddress
{
    /// <summary>An IPv4-mapped IPv6 address becomes the plain IPv4 address; anything else is returned as is.</summary>
    public static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>
    /// The key per-address limits count under: the normalised IPv4 address, or the IPv6 address cut to its first
    /// <paramref name="ipv6PrefixLength"/> bits (one /64 is usually one customer, who holds very many addresses).
    /// </summary>
    public static IPAddress LimitKey(IPAddress address, int ipv6PrefixLength)
    {
        address = Normalize(address);
        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6 || ipv6PrefixLength >= 128)
        {
            return address;
        }

        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        var whole = ipv6PrefixLength / 8;
        var bits = ipv6PrefixLength % 8;
        if (bits != 0)
        {
            bytes[whole] &= (byte)(0xFF << (8 - bits));
            whole++;
        }

        bytes[whole..].Clear();
        return new IPAddress(bytes);
    }
}

/// <summary>Counts something per address key under one limit (connections, waiting slots). Thread-safe.</summary>
internal sealed class AddressCounter
{
    private readonly Dictionary<IPAddress, int> _counts = [];
    private readonly Lock _lock = new();
    private int _total;

    /// <summary>The sum over every address.</summary>
    public int Total
    {
        get
        {
            lock (_lock)
            {
                return _total;
            }
        }
    }

    /// <summary>The count of one address key.</summary>
    public int Of(IPAddress key)
    {
        lock (_lock)
        {
            return _counts.GetValueOrDefault(key);
        }
    }

    /// <summary>Takes one unit for <paramref name="key"/> unless that key holds <paramref name="perKey"/> or all keys hold <paramref name="total"/>.</summary>
    public bool TryAcquire(IPAddress key, int perKey, int total = int.MaxValue)
    {
        lock (_lock)
        {
            var count = _counts.GetValueOrDefault(key);
            if (count >= perKey || _total >= total)
            {
                return false;
            }

            _counts[key] = count + 1;
            _total++;
            return true;
        }
    }

    /// <summary>Gives back one unit of <paramref name="key"/> (nothing happens when it holds none).</summary>
    public void Release(IPAddress key)
    {
        lock (_lock)
        {
            if (!_counts.TryGetValue(key, out var count))
            {
                return;
            }

            _total--;
            if (count <= 1)
            {
                _counts.Remove(key);
            }
            else
            {
                _counts[key] = count - 1;
            }
        }
    }
}

using System.Net;
using CrocNet.Relay.Net;
using Microsoft.AspNetCore.Connections;

namespace CrocNet.Relay.Hosting;

/// <summary>
/// The HTTP connection limits of a <see cref="CrocRelayServer"/>: Kestrel enforces the relay-wide one, this connection
/// middleware the per-address one (a connection over it is closed before a byte is read). Trusted proxies
/// (<see cref="CrocRelayOptions.TrustedProxies"/>) are exempt from the per-address limit.
/// </summary>
internal sealed class HttpConnectionLimit
{
    private readonly AddressCounter _open = new();
    private long _refused;

    private readonly IPNetworkList _trusted;

    public HttpConnectionLimit(int total, int perAddress, int ipv6PrefixLength, IPNetworkList? trustedProxies = null)
    {
        Total = total;
        PerAddress = perAddress;
        Ipv6PrefixLength = ipv6PrefixLength;
        _trusted = trustedProxies ?? IPNetworkList.Empty;
    }

    public int Total { get; }

    public int PerAddress { get; }

    private int Ipv6PrefixLength { get; }

    /// <summary>How many connections the middleware holds open now (for tests and diagnostics).</summary>
    public int Open => _open.Total;

    /// <summary>How many connections were closed at once because their address held <see cref="PerAddress"/>.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    public ConnectionDelegate Middleware(ConnectionDelegate next) => async connection =>
    {
        var key = connection.RemoteEndPoint is IPEndPoint remote ? RelayAddress.LimitKey(remote.Address, Ipv6PrefixLength) : IPAddress.None;

        // A trusted reverse proxy carries every client's connections: only Kestrel's relay-wide limit applies to it.
        var perAddress = connection.RemoteEndPoint is IPEndPoint peer && !_trusted.IsEmpty && _trusted.Contains(peer.Address) ? int.MaxValue : PerAddress;
        if (!_open.TryAcquire(key, perAddress))
        {
            Interlocked.Increment(ref _refused);
            connection.Abort(new ConnectionAbortedException("Too many connections from this address."));
            return;
        }

        try
        {
            await next(connection).ConfigureAwait(false);
        }
        finally
        {
            _open.Release(key);
        }
    };
}

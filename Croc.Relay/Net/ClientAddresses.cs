using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using CrocNet.Relay.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace CrocNet.Relay.Net;

/// <summary>
/// The client address of an HTTP request or a WebSocket leg, as the IP rule and the per-address limits see it: the
/// connection's peer, normalised (IPv4-mapped IPv6 as IPv4) — or, when that peer is a trusted proxy
/// (<see cref="CrocRelayOptions.TrustedProxies"/>), the address the proxies forwarded. Forwarded addresses are read
/// from the right (the hop nearest the relay first), skipping trusted proxies; the first untrusted address is the
/// client. An entry that cannot be read stops the walk at the last address that could be trusted, so a malformed or
/// obfuscated entry never lets a client choose its address.
/// </summary>
internal sealed class ClientAddresses
{
    /// <summary>The most forwarded hops read per request; a longer chain stops at the last trustworthy one.</summary>
    internal const int MaxHops = 32;

    /// <summary>The most distinct untrusted peers hinted about (a line each); past it, no more hints.</summary>
    internal const int MaxHintedPeers = 256;

    private const string XForwardedFor = "X-Forwarded-For";
    private const string Forwarded = "Forwarded";

    private readonly IPNetworkList _trusted;
    private readonly bool _rfc7239;
    private readonly ConcurrentDictionary<IPAddress, byte> _hinted = new();

    public ClientAddresses(CrocRelayOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _trusted = new IPNetworkList(options.TrustedProxies ?? []);
        _rfc7239 = options.ForwardedHeader == Forwarded;
    }

    /// <summary>Whether <paramref name="peer"/> is a proxy the operator trusts to report client addresses.</summary>
    public bool IsTrustedProxy(IPAddress peer) => !_trusted.IsEmpty && _trusted.Contains(peer);

    /// <summary>The client's address for a request; <see cref="IPAddress.None"/> when the host does not know its peer.</summary>
    public IPAddress FromHttp(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Connection.RemoteIpAddress is not { } remote)
        {
            return IPAddress.None;
        }

        var peer = RelayAddress.Normalize(remote);
        return IsTrustedProxy(peer) ? Resolve(peer, context.Request.Headers) : peer;
    }

    /// <summary>
    /// The client behind trusted proxy <paramref name="peer"/>, from the one header the proxies write
    /// (<see cref="CrocRelayOptions.ForwardedHeader"/>: <c>X-Forwarded-For</c>, or RFC 7239 <c>Forwarded</c>; every
    /// header line, comma lists), read from the right. The other header is never read: the proxy passes on whatever
    /// a client put there.
    /// </summary>
    public IPAddress Resolve(IPAddress peer, IHeaderDictionary headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        var values = headers[_rfc7239 ? Forwarded : XForwardedFor];
        return StringValues.IsNullOrEmpty(values) ? peer : Walk(peer, values, _rfc7239);
    }

    /// <summary>
    /// Logs, once per untrusted peer (at most <see cref="MaxHintedPeers"/> peers), that its requests carry forwarded
    /// headers the relay ignores: behind a proxy that is not in <see cref="CrocRelayOptions.TrustedProxies"/> every client
    /// looks like the proxy, and transfers between two machines fail with <c>ip_limit</c>.
    /// </summary>
    public void HintUntrustedForwarding(HttpContext context, RelayLog log)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(log);
        if (context.Connection.RemoteIpAddress is not { } remote)
        {
            return;
        }

        var headers = context.Request.Headers;
        var header = headers.ContainsKey(Forwarded) ? Forwarded : headers.ContainsKey(XForwardedFor) ? XForwardedFor : null;
        var peer = RelayAddress.Normalize(remote);
        if (header is null || IsTrustedProxy(peer) || _hinted.ContainsKey(peer) || _hinted.Count >= MaxHintedPeers || !_hinted.TryAdd(peer, 0))
        {
            return;
        }

        log.UntrustedForwardedHeaders(header, peer.ToString());
    }

    private IPAddress Walk(IPAddress peer, StringValues lines, bool rfc7239)
    {
        var client = peer;
        var hops = 0;
        var elements = new List<Range>();
        for (var line = lines.Count - 1; line >= 0; line--)
        {
            var text = (lines[line] ?? string.Empty).AsSpan();
            Split(text, elements);
            for (var i = elements.Count - 1; i >= 0; i--)
            {
                var element = text[elements[i]].Trim();
                if (element.IsEmpty)
                {
                    // "a,,b" or a trailing comma: nothing to read, but nothing forged either.
                    continue;
                }

                if (++hops > MaxHops || !TryParseHop(element, rfc7239, out var address))
                {
                    return client;
                }

                if (!IsTrustedProxy(address))
                {
                    return address;
                }

                // Another trusted proxy: the client is further left.
                client = address;
            }
        }

        return client;
    }

    /// <summary>The comma-separated elements of one header line; a comma inside a quoted string separates nothing.</summary>
    private static void Split(ReadOnlySpan<char> text, List<Range> elements)
    {
        elements.Clear();
        var quoted = false;
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '"')
            {
                quoted = !quoted;
            }
            else if (c == '\\' && quoted)
            {
                i++;
            }
            else if (c == ',' && !quoted)
            {
                elements.Add(start..i);
                start = i + 1;
            }
        }

        elements.Add(start..text.Length);
    }

    private static bool TryParseHop(ReadOnlySpan<char> element, bool rfc7239, out IPAddress address)
    {
        address = IPAddress.None;
        if (!rfc7239)
        {
            return TryParseNode(element, out address);
        }

        // forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] ); only "for" names the client.
        ReadOnlySpan<char> node = default;
        var found = false;
        foreach (var range in element.Split(';'))
        {
            var pair = element[range].Trim();
            var equals = pair.IndexOf('=');
            if (equals <= 0 || !pair[..equals].Trim().Equals("for", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            if (found)
            {
                return false;
            }

            found = true;
            node = pair[(equals + 1)..].Trim();
        }

        if (!found)
        {
            return false;
        }

        if (node.Length >= 2 && node[0] == '"' && node[^1] == '"')
        {
            node = node[1..^1];
            if (node.Contains('\\'))
            {
                return false;
            }
        }

        // "unknown" and obfuscated identifiers ("_hidden") name no address: the walk stops there.
        return TryParseNode(node, out address);
    }

    /// <summary>An address with an optional port: <c>192.0.2.7</c>, <c>192.0.2.7:4711</c>, <c>2001:db8::1</c>, <c>[2001:db8::1]:4711</c>.</summary>
    private static bool TryParseNode(ReadOnlySpan<char> node, out IPAddress address)
    {
        address = IPAddress.None;
        // A zone ("%eth0") names a link of the proxy's, not a client.
        if (node.IsEmpty || node.Length > 64 || node.Contains('%'))
        {
            return false;
        }

        ReadOnlySpan<char> host;
        if (node[0] == '[')
        {
            var close = node.IndexOf(']');
            if (close < 0 || !ValidPort(node[(close + 1)..], optional: true))
            {
                return false;
            }

            host = node[1..close];
            if (!IPAddress.TryParse(host, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                return false;
            }

            address = v6;
        }
        else if (node.IndexOf(':') is var colon && colon >= 0 && node.LastIndexOf(':') == colon)
        {
            // One colon: IPv4 with a port.
            host = node[..colon];
            if (!ValidPort(node[colon..], optional: false) || !TryParseIPv4(host, out address))
            {
                return false;
            }
        }
        else if (colon >= 0)
        {
            if (!IPAddress.TryParse(node, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                return false;
            }

            address = v6;
        }
        else if (!TryParseIPv4(node, out address))
        {
            return false;
        }

        address = RelayAddress.Normalize(address);
        return true;
    }

    /// <summary>Only the dotted quad: the parser's lenient forms (<c>127.1</c>, <c>0x7f.1</c>) are not addresses here.</summary>
    internal static bool TryParseIPv4(ReadOnlySpan<char> text, out IPAddress address)
    {
        address = IPAddress.None;
        var parts = 0;
        foreach (var range in text.Split('.'))
        {
            var part = text[range];
            if (++parts > 4 || part.Length is 0 or > 3 || !IsDigits(part) || (part.Length > 1 && part[0] == '0') || int.Parse(part, System.Globalization.CultureInfo.InvariantCulture) > 255)
            {
                return false;
            }
        }

        if (parts != 4 || !IPAddress.TryParse(text, out var parsed))
        {
            return false;
        }

        address = parsed;
        return true;
    }

    private static bool ValidPort(ReadOnlySpan<char> suffix, bool optional)
    {
        if (suffix.IsEmpty)
        {
            return optional;
        }

        // ":4711", or RFC 7239's obfuscated port (":_abc"), which is harmless: the port is not used.
        if (suffix[0] != ':' || suffix.Length == 1)
        {
            return false;
        }

        var port = suffix[1..];
        return port[0] == '_' || (port.Length <= 5 && IsDigits(port) && int.Parse(port, System.Globalization.CultureInfo.InvariantCulture) <= 65535);
    }

    private static bool IsDigits(ReadOnlySpan<char> text)
    {
        foreach (var c in text)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }

        return true;
    }
}

using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace CrocNet.Relay.Net;

/// <summary>
/// The relay password (<see cref="CrocRelayOptions.Password"/>): an open relay allows everyone; a private one allows a
/// request or leg only when it presents the password. The comparison takes the same time whatever is presented: both
/// sides are hashed to a fixed length first, then compared in constant time. The password is never logged.
/// </summary>
internal sealed class RelayAccess
{
    /// <summary>The scheme of the <c>Authorization</c> header that carries the password.</summary>
    public const string Scheme = "Bearer";

    private readonly byte[]? _digest;

    public RelayAccess(string? password) => _digest = password is null ? null : Digest(password);

    /// <summary>Whether the relay is open (has no password).</summary>
    public bool IsOpen => _digest is null;

    /// <summary>Whether <paramref name="presented"/> (a hello's <c>auth</c>) opens the relay.</summary>
    public bool Allows(string? presented)
    {
        if (_digest is null)
        {
            return true;
        }

        // Hash even what is absent, so a missing password costs the same as a wrong one.
        var digest = Digest(presented ?? string.Empty);
        return CryptographicOperations.FixedTimeEquals(digest, _digest) && presented is not null;
    }

    /// <summary>Whether an HTTP request (a route or a WebSocket leg's upgrade) carries <c>Authorization: Bearer &lt;password&gt;</c>.</summary>
    public bool Allows(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return _digest is null || Allows(BearerToken(request.Headers[HeaderNames.Authorization].ToString()));
    }

    private static string? BearerToken(string header)
    {
        // "Bearer <token>", the scheme case-insensitive (RFC 9110 section 11.1); one header value only.
        if (header.Length <= Scheme.Length + 1 || !header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) || header[Scheme.Length] != ' ')
        {
            return null;
        }

        var token = header[(Scheme.Length + 1)..].Trim();
        return token.Length == 0 ? null : token;
    }

    private static byte[] Digest(string value) => SHA256.HashData(Encoding.UTF8.GetBytes(value));
}

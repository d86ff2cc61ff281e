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
    private readonly byte[]? _password;

    public RelayAccess(string? password)
    {
        _digest = password is null ? null : Digest(password);
        _password = password is null ? null : Encoding.UTF8.GetBytes(password);
    }

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

    /// <summary>
    /// Whether a TCP hello's <c>auth</c> proves the password for this leg. A TCP leg is not encrypted, so the password
    /// itself never travels there: the hello carries <see cref="LegProof"/>, an HMAC of the channel and uuid under the
    /// password, which opens only this participant's legs (and those need its uuid anyway). Compared in constant time.
    /// </summary>
    public bool AllowsLeg(string? proof, string channel, string uuid)
    {
        if (_password is null)
        {
            return true;
        }

        var expected = Encoding.ASCII.GetBytes(LegProof(_password, channel, uuid));
        var presented = Encoding.ASCII.GetBytes(proof ?? string.Empty);
        return CryptographicOperations.FixedTimeEquals(SHA256.HashData(presented), SHA256.HashData(expected)) && proof is not null;
    }

    /// <summary>The <c>auth</c> of a TCP hello: base64 of HMAC-SHA256(password, "croc leg\n" + channel + "\n" + uuid).</summary>
    public static string LegProof(ReadOnlySpan<byte> password, string channel, string uuid)
        => Convert.ToBase64String(HMACSHA256.HashData(password, Encoding.UTF8.GetBytes("croc leg\n" + channel + "\n" + uuid)));

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

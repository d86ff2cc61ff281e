using System.Security.Cryptography;
using System.Text;

namespace CrocNet.Crypto;

/// <summary>Which way a stream flows.</summary>
internal enum StreamDirection
{
    SenderToRecipient,
    RecipientToSender,
}

/// <summary>
/// Derives one AES-256 key per (direction, connection) from the PAKE session key Ke, so a frame
/// spliced onto another connection or reflected back to its author fails authentication.
/// </summary>
internal static class FrameKeys
{
    private static readonly byte[] Salt = Encoding.ASCII.GetBytes("croc/1 data keys");

    public static byte[] Derive(ReadOnlySpan<byte> sessionKey, StreamDirection direction, int connection) =>
        Derive(sessionKey, Info(direction, connection));

    /// <summary>
    /// The key of one direction of a re-dialed leg: the info also names both sides' fresh leg nonces (lower-case hex,
    /// the sender's first), so each writer's key is new on every leg and its sequence numbers may start at 0 again.
    /// </summary>
    public static byte[] DeriveLeg(ReadOnlySpan<byte> sessionKey, StreamDirection direction, int connection, ReadOnlySpan<byte> senderNonce, ReadOnlySpan<byte> recipientNonce) =>
        Derive(sessionKey, string.Create(
            System.Globalization.CultureInfo.InvariantCulture,
            $"{Info(direction, connection)}|{Convert.ToHexStringLower(senderNonce)}|{Convert.ToHexStringLower(recipientNonce)}"));

    /// <summary><c>croc/1|&lt;dir&gt;|&lt;connection&gt;</c>: what every data key's info starts with.</summary>
    private static string Info(StreamDirection direction, int connection)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(connection);
        return string.Create(
            System.Globalization.CultureInfo.InvariantCulture,
            $"croc/1|{(direction == StreamDirection.SenderToRecipient ? "s2r" : "r2s")}|{connection}");
    }

    private static byte[] Derive(ReadOnlySpan<byte> sessionKey, string info)
    {
        var key = new byte[32];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, sessionKey, key, Salt, Encoding.ASCII.GetBytes(info));
        return key;
    }
}

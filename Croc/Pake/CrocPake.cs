using System.Security.Cryptography;
using System.Text;

namespace CrocNet.Pake;

/// <summary>Croc protocol version 1's use of SPAKE2: fixed identities, the AAD and the salted password scalar.</summary>
internal static class CrocPake
{
    /// <summary>Party A's identity in the transcript.</summary>
    internal const string SenderIdentity = "croc-sender";

    /// <summary>Party B's identity in the transcript.</summary>
    internal const string RecipientIdentity = "croc-recipient";

    /// <summary>The protocol label that prefixes the AAD and the salt.</summary>
    internal const string ProtocolLabel = "croc/1|";

    internal static readonly Spake2Identities Identities = new(SenderIdentity, RecipientIdentity);

    /// <summary>Starts SPAKE2 for one side of a croc transfer.</summary>
    /// <param name="suite">The curve both sides use (a different one fails confirmation through the AAD).</param>
    /// <param name="role">This side.</param>
    /// <param name="secret">The code's secret, the PAKE password.</param>
    /// <param name="channel">The relay channel (the code's first part); it salts w and is in the AAD.</param>
    internal static Spake2 Start(Spake2Suite suite, Spake2Role role, string secret, string channel)
    {
        ArgumentNullException.ThrowIfNull(suite);
        ArgumentNullException.ThrowIfNull(secret);
        ArgumentNullException.ThrowIfNull(channel);

        var password = Encoding.UTF8.GetBytes(secret);
        var w = Array.Empty<byte>();
        try
        {
            w = Spake2Password.DeriveW(suite, password, Salt(channel));
            return Spake2.Start(suite, role, w, Identities, Aad(suite, channel));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(password);
            CryptographicOperations.ZeroMemory(w);
        }
    }

    /// <summary>Derives this transfer's w (the costly Argon2id step), so it can run while the relay round trips happen.</summary>
    internal static byte[] DeriveW(Spake2Suite suite, string secret, string channel)
    {
        var password = Encoding.UTF8.GetBytes(secret);
        try
        {
            return Spake2Password.DeriveW(suite, password, Salt(channel));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(password);
        }
    }

    /// <summary>Starts SPAKE2 with a w from <see cref="DeriveW"/>.</summary>
    internal static Spake2 Start(Spake2Suite suite, Spake2Role role, ReadOnlySpan<byte> w, string channel) =>
        Spake2.Start(suite, role, w, Identities, Aad(suite, channel));

    /// <summary>SHA-256(UTF-8("croc/1|" + channel)): ties w to the channel so no guess is reusable across channels.</summary>
    internal static byte[] Salt(string channel) => SHA256.HashData(Encoding.UTF8.GetBytes(ProtocolLabel + channel));

    /// <summary>UTF-8("croc/1|&lt;curve&gt;|&lt;channel&gt;").</summary>
    internal static byte[] Aad(Spake2Suite suite, string channel) => Encoding.UTF8.GetBytes(ProtocolLabel + suite.Name + "|" + channel);
}

using System.Security.Cryptography;
using CrocNet.Pake;
using BigInteger = Org.BouncyCastle.Math.BigInteger;

namespace CrocNet.Tests.Pake;

internal static class PakeTestData
{
    public static readonly Spake2Identities Ids = new("alice", "bob");

    public static readonly byte[] Aad = "test aad"u8.ToArray();

    public static IEnumerable<Spake2Suite> Suites => Spake2Suite.All;

    /// <summary>A random w below the order, without Argon2id, so handshake tests stay fast.</summary>
    public static byte[] RandomW(Spake2Suite suite)
    {
        var w = new BigInteger(1, RandomNumberGenerator.GetBytes(suite.ScalarLength + 16)).Mod(suite.Order).ToByteArrayUnsigned();
        var padded = new byte[suite.ScalarLength];
        w.CopyTo(padded, padded.Length - w.Length);
        return padded;
    }

    public static (Spake2 Sender, Spake2 Recipient) StartPair(Spake2Suite suite, byte[] wSender, byte[] wRecipient) =>
        (Spake2.Start(suite, Spake2Role.Sender, wSender, Ids, Aad), Spake2.Start(suite, Spake2Role.Recipient, wRecipient, Ids, Aad));
}

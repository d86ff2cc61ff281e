using System.Security.Cryptography;
using CrocNet.Pake;
using BigInteger = Org.BouncyCastle.Math.BigInteger;

namespace CrocNet.Tests.Pake;

[TestFixture]
public sealed class Spake2PasswordTests
{
    private static readonly byte[] Password = "autumn-rocket-violin"u8.ToArray();

    // SHA-256("croc/1|k7f2q9xm").
    private static readonly byte[] Salt = Convert.FromHexString("0357d782d20da626912106aa9b28461167b8921b445a07b62d73676b3e721cac");

    // Known answers computed independently with python-cryptography 48.0.0 (OpenSSL's Argon2id):
    // Argon2id(v1.3, m = 7168 KiB, t = 5, p = 1, out = order length + 16 bytes) as a big-endian integer, mod the order.
    [TestCase("p256", "f7e3ff07c0bd36360d2bd99bd4536c1eddd7c9249499b754c83e06f126769a4e")]
    [TestCase("p384", "bd865f6f3645109a4ddb5888664ddde52d3dced595b4cbb8a485ba4296d5316afa00982cdbbc2d232a442245a1fd0687")]
    [TestCase("p521", "00f4bfa8f382bd4ea982e39a3e3842fe40c0f75072ed861553a519e0c5a6e9c4e2098150f25a68325f0b4d0a2b12c045a05f433d3f1765407ee8ac4757c3c87fd06d")]
    [TestCase("siec", "3bbce7325aa54b7b0a4f15429068c7321634491ef5fad247d61947ae1873ec1e")]
    public void DeriveW_KnownAnswer_MatchesIndependentArgon2id(string curve, string expectedHex)
    {
        var suite = Spake2Suite.Get(curve);
        var w = Spake2Password.DeriveW(suite, Password, Salt);

        Assert.That(Convert.ToHexStringLower(w), Is.EqualTo(expectedHex));
        Assert.That(w, Has.Length.EqualTo(suite.ScalarLength));
        Assert.That(new BigInteger(1, w).CompareTo(suite.Order), Is.LessThan(0));
    }

    [Test]
    public void DeriveW_SameInputs_IsDeterministic()
    {
        var first = Spake2Password.DeriveW(Spake2Suite.P256, Password, Salt);
        var second = Spake2Password.DeriveW(Spake2Suite.P256, Password, Salt);
        Assert.That(second, Is.EqualTo(first));
    }

    [Test]
    public void DeriveW_OtherSalt_Differs()
    {
        var reference = Spake2Password.DeriveW(Spake2Suite.P256, Password, Salt);
        var otherSalt = (byte[])Salt.Clone();
        otherSalt[0] ^= 1;
        Assert.That(Spake2Password.DeriveW(Spake2Suite.P256, Password, otherSalt), Is.Not.EqualTo(reference));
    }

    [Test]
    public void DeriveW_OtherPassword_Differs()
    {
        var reference = Spake2Password.DeriveW(Spake2Suite.P256, Password, Salt);
        Assert.That(Spake2Password.DeriveW(Spake2Suite.P256, "autumn-rocket-violim"u8, Salt), Is.Not.EqualTo(reference));
    }

    [Test]
    public void DeriveW_ShortSalt_ThrowsArgument()
    {
        Assert.That(() => Spake2Password.DeriveW(Spake2Suite.P256, Password, new byte[7]), Throws.ArgumentException.With.Message.Contains("salt"));
    }

    [Test]
    public void DeriveW_Cost_IsProtocolVersionOneConstant()
    {
        // Changing any of these breaks interoperability with every existing peer: it needs a new protocol version.
        Assert.That((Spake2Password.MemoryKiB, Spake2Password.Iterations, Spake2Password.Parallelism, Spake2Password.ExtraBytes), Is.EqualTo((7168, 5, 1, 16)));
    }

    [Test]
    public void DeriveW_Output_IsUsableAsSpake2Scalar()
    {
        var w = Spake2Password.DeriveW(Spake2Suite.Siec, RandomNumberGenerator.GetBytes(12), Salt);
        using var run = Spake2.Start(Spake2Suite.Siec, Spake2Role.Sender, w, PakeTestData.Ids, default);
        Assert.That(run.Message.Length, Is.EqualTo(Spake2Suite.Siec.CompressedPointLength));
    }
}

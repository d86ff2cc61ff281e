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
    // Argon2id(v1.3, m = 19456 KiB, t = 2, p = 1, out = order length + 16 bytes) as a big-endian integer, mod the order.
    [TestCase("p256", "5daa821c13f9ebb8d7ed50220089fabba4f02799419d2d8ed0e989b7d7fe2653")]
    [TestCase("p384", "48127103dae506eaf379762c374d2e246b55bfe7ec47ee988ec1daa554276c19498d5fc89d2d7f0b76d4264ee09959c4")]
    [TestCase("p521", "007406206ed1a2d7721815f57d962f357dd3286f389f3a75545aa3ed4d174b989b93c5f801fd3d421935503873383f2eb13027b616dbfd16a56bbaa674a3fbc0fa7b")]
    [TestCase("siec", "06e5426e4faa1e506a7c9aa5ecab90787bc1cf69f90704892d1ee26b27393d31")]
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
        Assert.That((Spake2Password.MemoryKiB, Spake2Password.Iterations, Spake2Password.Parallelism, Spake2Password.ExtraBytes), Is.EqualTo((19456, 2, 1, 16)));
    }

    [Test]
    public void DeriveW_Output_IsUsableAsSpake2Scalar()
    {
        var w = Spake2Password.DeriveW(Spake2Suite.Siec, RandomNumberGenerator.GetBytes(12), Salt);
        using var run = Spake2.Start(Spake2Suite.Siec, Spake2Role.Sender, w, PakeTestData.Ids, default);
        Assert.That(run.Message.Length, Is.EqualTo(Spake2Suite.Siec.CompressedPointLength));
    }
}

using System.Security.Cryptography;
using System.Text.Json;
using CrocNet.Pake;
using BigInteger = Org.BouncyCastle.Math.BigInteger;

namespace CrocNet.Tests.Pake;

[TestFixture]
internal sealed class Spake2SuiteTests
{
    private static IEnumerable<TestCaseData> MnCases()
    {
        using var rfc = Spake2Vectors.Load(Spake2Vectors.Rfc);
        using var derived = Spake2Vectors.Load(Spake2Vectors.Derived);
        var table = rfc.RootElement.GetProperty("M_N");
        yield return Case(Spake2Suite.P256, table.GetProperty("P-256"));
        yield return Case(Spake2Suite.P384, table.GetProperty("P-384"));
        yield return Case(Spake2Suite.P521, table.GetProperty("P-521"));
        yield return Case(Spake2Suite.Siec, derived.RootElement.GetProperty("proposed_siec_M_N"));

        static TestCaseData Case(Spake2Suite suite, JsonElement e) => new TestCaseData(
            suite,
            e.GetProperty("M").GetProperty("compressed").GetString(),
            e.GetProperty("M").GetProperty("uncompressed").GetString(),
            e.GetProperty("N").GetProperty("compressed").GetString(),
            e.GetProperty("N").GetProperty("uncompressed").GetString()).SetArgDisplayNames(suite.Name);
    }

    [Test]
    public void DecodePeerPoint_SiecCompressedPoints_SameAsBouncyCastlesDecoding()
    {
        var suite = Spake2Suite.Siec;
        var parities = new HashSet<byte>();
        for (var i = 0; i < 40; i++)
        {
            var k = new BigInteger(1, RandomNumberGenerator.GetBytes(32)).Mod(suite.Order);
            var point = Spake2Suite.MultiplyFixed(suite.G, k).Normalize();
            var compressed = point.GetEncoded(true);
            parities.Add(compressed[0]);

            var ours = suite.DecodePeerPoint(compressed);

            Assert.That(ours.Equals(point), Is.True);
            Assert.That(ours.Equals(suite.Curve.DecodePoint(compressed)), Is.True, "the generic decoder agrees");
        }

        Assert.That(parities, Is.EquivalentTo(new byte[] { 0x02, 0x03 }), "both y parities were decoded");
    }

    [Test]
    public void DecodePeerPoint_SiecXWithoutAPoint_ProtocolError()
    {
        var suite = Spake2Suite.Siec;
        var p = suite.Curve.Field.Characteristic;
        var halfOrder = p.Subtract(BigInteger.One).ShiftRight(1);
        var x = BigInteger.One;
        // The first x for which x³ + 19 is not a square: no curve point has it.
        while (x.Multiply(x).Multiply(x).Add(BigInteger.ValueOf(19)).Mod(p).ModPow(halfOrder, p).Equals(BigInteger.One))
        {
            x = x.Add(BigInteger.One);
        }

        byte[] encoded = [0x02, .. x.ToByteArrayUnsigned().PadLeftTo(32)];

        Assert.Throws<CrocProtocolException>(() => suite.DecodePeerPoint(encoded));
    }

    [TestCase(0x02)]
    [TestCase(0x03)]
    public void DecodePeerPoint_SiecXAtOrAboveP_RefusedAsNoFieldElement(byte prefix)
    {
        // x = 5 + p: reduced mod p it would be the generator's x, so only the range check can refuse it.
        var suite = Spake2Suite.Siec;
        var p = suite.Curve.Field.Characteristic;
        byte[] encoded = [prefix, .. p.Add(BigInteger.ValueOf(5)).ToByteArrayUnsigned().PadLeftTo(32)];

        var ex = Assert.Throws<CrocProtocolException>(() => suite.DecodePeerPoint(encoded));

        Assert.That(ex!.InnerException?.Message, Does.Contain("not a field element"));
    }

    [TestCaseSource(nameof(MnCases))]
    public void MAndN_EverySuite_MatchTheVectorFiles(Spake2Suite suite, string mCompressed, string mUncompressed, string nCompressed, string nUncompressed)
    {
        Assert.Multiple(() =>
        {
            Assert.That(Convert.ToHexStringLower(suite.M.GetEncoded(true)), Is.EqualTo(mCompressed));
            Assert.That(Convert.ToHexStringLower(suite.M.GetEncoded(false)), Is.EqualTo(mUncompressed));
            Assert.That(Convert.ToHexStringLower(suite.N.GetEncoded(true)), Is.EqualTo(nCompressed));
            Assert.That(Convert.ToHexStringLower(suite.N.GetEncoded(false)), Is.EqualTo(nUncompressed));
        });
    }

    [TestCaseSource(typeof(PakeTestData), nameof(PakeTestData.Suites))]
    public void Group_EverySuite_GeneratorMAndNHavePrimeOrderAndCofactorOne(Spake2Suite suite)
    {
        Assert.Multiple(() =>
        {
            Assert.That(suite.Order.IsProbablePrime(64), Is.True);
            Assert.That(suite.Curve.Cofactor, Is.EqualTo(BigInteger.One));
            Assert.That(suite.G.Multiply(suite.Order).IsInfinity, Is.True);
            Assert.That(suite.M.Multiply(suite.Order).IsInfinity, Is.True);
            Assert.That(suite.N.Multiply(suite.Order).IsInfinity, Is.True);
            Assert.That(suite.M.IsValid() && suite.N.IsValid() && !suite.M.Equals(suite.N), Is.True);
        });
    }

    [Test]
    public void Siec_Parameters_AreTheSiec255Curve()
    {
        var s = Spake2Suite.Siec;
        Assert.Multiple(() =>
        {
            Assert.That(s.Curve.Field.Characteristic.ToString(), Is.EqualTo("28948022309329048855892746252183396360603931420023084536990047309120118726721"));
            Assert.That(s.Order.ToString(), Is.EqualTo("28948022309329048855892746252183396360263649053102146073526672701688283398081"));
            Assert.That(s.Curve.A.ToBigInteger().SignValue, Is.Zero);
            Assert.That(s.Curve.B.ToBigInteger().IntValue, Is.EqualTo(19));
            Assert.That(s.G.AffineXCoord.ToBigInteger().IntValue, Is.EqualTo(5));
            Assert.That(s.G.AffineYCoord.ToBigInteger().IntValue, Is.EqualTo(12));
            Assert.That(s.Hash, Is.EqualTo(HashAlgorithmName.SHA256));
        });
    }

    [TestCase("p256", "SPAKE2-P256-SHA256-HKDF-HMAC", 32, 33, 16)]
    [TestCase("p384", "SPAKE2-P384-SHA512-HKDF-HMAC", 48, 49, 32)]
    [TestCase("p521", "SPAKE2-P521-SHA512-HKDF-HMAC", 66, 67, 32)]
    [TestCase("siec", "SPAKE2-SIEC255-SHA256-HKDF-HMAC", 32, 33, 16)]
    public void Get_KnownName_ReturnsSuiteWithItsSizes(string name, string suiteName, int scalarLength, int pointLength, int keyLength)
    {
        var suite = Spake2Suite.Get(name);
        Assert.Multiple(() =>
        {
            Assert.That(suite.Name, Is.EqualTo(name));
            Assert.That(suite.ToString(), Is.EqualTo(name));
            Assert.That(suite.SuiteName, Is.EqualTo(suiteName));
            Assert.That(suite.ScalarLength, Is.EqualTo(scalarLength));
            Assert.That(suite.CompressedPointLength, Is.EqualTo(pointLength));
            Assert.That(suite.SessionKeyLength, Is.EqualTo(keyLength));
            Assert.That(Spake2Suite.TryGet(name, out var again) && ReferenceEquals(again, suite), Is.True);
        });
    }

    [TestCase(null)]
    [TestCase("")]
    [TestCase("P256")]
    [TestCase("p-256")]
    [TestCase("ed25519")]
    public void TryGet_UnknownName_ReturnsFalse(string? name)
    {
        Assert.That(Spake2Suite.TryGet(name, out var suite), Is.False);
        Assert.That(suite, Is.Null);
    }

    [Test]
    public void Get_UnknownName_ThrowsArgumentExceptionListingNames()
    {
        Assert.That(() => Spake2Suite.Get("p257"), Throws.ArgumentException.With.Message.Contains("p256, p384, p521, siec"));
    }

    [Test]
    public void Names_MatchAllInOrder()
    {
        Assert.That(Spake2Suite.All.Select(s => s.Name), Is.EqualTo(Spake2Suite.Names));
    }
}

internal static class ByteArrayPadding
{
    public static byte[] PadLeftTo(this byte[] bytes, int length)
    {
        var padded = new byte[length];
        bytes.CopyTo(padded, length - bytes.Length);
        return padded;
    }
}

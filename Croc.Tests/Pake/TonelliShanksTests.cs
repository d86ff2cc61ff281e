using System.Security.Cryptography;
using CrocNet.Pake;
using BigInteger = Org.BouncyCastle.Math.BigInteger;

namespace CrocNet.Tests.Pake;

[TestFixture]
public sealed class TonelliShanksTests
{
    private static readonly BigInteger SiecPrime = new("28948022309329048855892746252183396360603931420023084536990047309120118726721");

    [TestCase(5)]      // p - 1 = 1 · 2^2
    [TestCase(17)]     // 2^4: the deepest loop for its size
    [TestCase(41)]     // 5 · 2^3
    [TestCase(97)]     // 3 · 2^5
    [TestCase(257)]    // 2^8
    public void Sqrt_SmallPrime_EveryResidueRootedEveryNonResidueRefused(int prime)
    {
        var p = BigInteger.ValueOf(prime);
        var sqrt = new TonelliShanks(p);
        var squares = Enumerable.Range(0, prime).Select(v => v * v % prime).ToHashSet();
        for (var a = 0; a < prime; a++)
        {
            var root = sqrt.Sqrt(BigInteger.ValueOf(a));
            if (squares.Contains(a))
            {
                Assert.That(root, Is.Not.Null, $"{a} is a square mod {prime}");
                Assert.That(root!.Multiply(root).Mod(p).IntValue, Is.EqualTo(a));
            }
            else
            {
                Assert.That(root, Is.Null, $"{a} is not a square mod {prime}");
            }
        }
    }

    [Test]
    public void Sqrt_SiecPrime_AgreesWithEulersCriterion()
    {
        var sqrt = new TonelliShanks(SiecPrime);
        var halfOrder = SiecPrime.Subtract(BigInteger.One).ShiftRight(1);
        int residues = 0, others = 0;
        for (var i = 0; i < 200; i++)
        {
            var a = new BigInteger(1, RandomNumberGenerator.GetBytes(32)).Mod(SiecPrime);
            var root = sqrt.Sqrt(a);
            if (a.ModPow(halfOrder, SiecPrime).Equals(BigInteger.One))
            {
                residues++;
                Assert.That(root, Is.Not.Null);
                Assert.That(root!.Multiply(root).Mod(SiecPrime), Is.EqualTo(a));
            }
            else
            {
                others++;
                Assert.That(root, Is.Null);
            }
        }

        Assert.That(residues, Is.GreaterThan(50), "both kinds were drawn");
        Assert.That(others, Is.GreaterThan(50), "both kinds were drawn");
    }

    [TestCase(7)]
    [TestCase(11)]
    [TestCase(4)]
    [TestCase(1)]
    [TestCase(9)]
    public void Constructor_ModulusNotAPrimeOneModFour_Throws(int modulus)
        => Assert.Throws<ArgumentException>(() => _ = new TonelliShanks(BigInteger.ValueOf(modulus)));
}

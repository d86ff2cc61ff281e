using System.Text;
using CrocNet.Pake;
using BigInteger = Org.BouncyCastle.Math.BigInteger;

namespace CrocNet.Tests.Pake;

/// <summary>Replays RFC 9382 appendix B and the project's derived vectors with fixed w, x and y.</summary>
[TestFixture]
internal sealed class Spake2VectorTests
{
    private static IEnumerable<TestCaseData> Vectors() => Spake2Vectors.Cases();

    [Test]
    public void Vectors_Files_ContainEveryExpectedVector()
    {
        Assert.That(Spake2Vectors.All(Spake2Vectors.Rfc).Count(), Is.EqualTo(4), "RFC 9382 appendix B has four P-256 vectors");
        Assert.That(
            Spake2Vectors.All(Spake2Vectors.Derived).Select(v => v.SuiteName),
            Is.EquivalentTo(new[] { "SPAKE2-P256-SHA256-HKDF-HMAC", "SPAKE2-P384-SHA256-HKDF-HMAC", "SPAKE2-P384-SHA512-HKDF-HMAC", "SPAKE2-P521-SHA512-HKDF-HMAC" }));
    }

    [TestCaseSource(nameof(Vectors))]
    public void StartWithScalar_Vector_ReproducesEveryIntermediate(Spake2Vector v)
    {
        var suite = v.Suite();
        var ids = new Spake2Identities(v.Text("A"), v.Text("B"));
        Assert.That(Encoding.UTF8.GetBytes(ids.A), Is.EqualTo(v.Bytes("A_hex")));
        Assert.That(Encoding.UTF8.GetBytes(ids.B), Is.EqualTo(v.Bytes("B_hex")));
        var aad = v.Bytes("AAD_hex");

        using var sender = Spake2.StartWithScalar(suite, Spake2Role.Sender, v.Bytes("w"), ids, aad, v.Bytes("x"));
        using var recipient = Spake2.StartWithScalar(suite, Spake2Role.Recipient, v.Bytes("w"), ids, aad, v.Bytes("y"));

        // x*P and y*P are not printed by the RFC; the JSON derives them, and they pin the generator.
        Assert.That(suite.G.Multiply(new BigInteger(1, v.Bytes("x"))).GetEncoded(false), Is.EqualTo(v.Bytes("xP")));
        Assert.That(suite.G.Multiply(new BigInteger(1, v.Bytes("y"))).GetEncoded(false), Is.EqualTo(v.Bytes("yP")));

        // Messages go out compressed; the vectors print them uncompressed.
        Assert.That(sender.Message.ToArray(), Is.EqualTo(Compress(suite, v.Bytes("pA"))));
        Assert.That(recipient.Message.ToArray(), Is.EqualTo(Compress(suite, v.Bytes("pB"))));

        // The sender takes pB in the vector's uncompressed form, the recipient pA compressed: both encodings are exercised.
        using var senderKeys = sender.Finish(v.Bytes("pB"));
        using var recipientKeys = recipient.Finish(sender.Message.Span);

        foreach (var keys in new[] { senderKeys, recipientKeys })
        {
            var t = keys.Trace!;
            Assert.Multiple(() =>
            {
                Assert.That(t.PA, Is.EqualTo(v.Bytes("pA")), "pA");
                Assert.That(t.PB, Is.EqualTo(v.Bytes("pB")), "pB");
                Assert.That(t.K, Is.EqualTo(v.Bytes("K")), "K");
                Assert.That(t.Transcript, Is.EqualTo(v.Bytes("TT")), "TT");
                Assert.That(t.HashTT, Is.EqualTo(v.Bytes("HashTT")), "Hash(TT)");
                Assert.That(keys.SessionKey.ToArray(), Is.EqualTo(v.Bytes("Ke")), "Ke");
                Assert.That(t.Ka, Is.EqualTo(v.Bytes("Ka")), "Ka");
                Assert.That(t.KcA, Is.EqualTo(v.Bytes("KcA")), "KcA");
                Assert.That(t.KcB, Is.EqualTo(v.Bytes("KcB")), "KcB");
                Assert.That(t.CA, Is.EqualTo(v.Bytes("cA")), "cA");
                Assert.That(t.CB, Is.EqualTo(v.Bytes("cB")), "cB");
            });
        }

        Assert.That(senderKeys.Confirmation.ToArray(), Is.EqualTo(v.Bytes("cA")));
        Assert.That(recipientKeys.Confirmation.ToArray(), Is.EqualTo(v.Bytes("cB")));
        Assert.DoesNotThrow(() => senderKeys.VerifyPeerConfirmation(v.Bytes("cB")));
        Assert.DoesNotThrow(() => recipientKeys.VerifyPeerConfirmation(v.Bytes("cA")));
    }

    [TestCaseSource(nameof(Vectors))]
    public void StartWithScalar_VectorWithOtherPassword_DiffersFromVector(Spake2Vector v)
    {
        // Guards against a test that passes because the trace ignores its inputs.
        var suite = v.Suite();
        var w = v.Bytes("w");
        w[^1] ^= 1;
        using var sender = Spake2.StartWithScalar(suite, Spake2Role.Sender, w, new(v.Text("A"), v.Text("B")), v.Bytes("AAD_hex"), v.Bytes("x"));
        using var keys = sender.Finish(v.Bytes("pB"));

        Assert.That(sender.Message.ToArray(), Is.Not.EqualTo(Compress(suite, v.Bytes("pA"))));
        Assert.That(keys.SessionKey.ToArray(), Is.Not.EqualTo(v.Bytes("Ke")));
        Assert.That(() => keys.VerifyPeerConfirmation(v.Bytes("cB")), Throws.TypeOf<CrocAuthenticationException>());
    }

    private static byte[] Compress(Spake2Suite suite, byte[] uncompressed) =>
        suite.Curve.DecodePoint(uncompressed).GetEncoded(true);
}

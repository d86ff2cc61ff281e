using CrocNet.Pake;
using BigInteger = Org.BouncyCastle.Math.BigInteger;

namespace CrocNet.Tests.Pake;

[TestFixture]
internal sealed class Spake2Tests
{
    private static IEnumerable<Spake2Suite> Suites => PakeTestData.Suites;

    [TestCaseSource(nameof(Suites))]
    public void Finish_SamePassword_BothRolesAgreeAndConfirmationsVerify(Spake2Suite suite)
    {
        var w = PakeTestData.RandomW(suite);
        var (sender, recipient) = PakeTestData.StartPair(suite, w, w);
        using (sender)
        using (recipient)
        {
            Assert.That(sender.Message.Length, Is.EqualTo(suite.CompressedPointLength));
            Assert.That(sender.Message.Span[0], Is.AnyOf((byte)0x02, (byte)0x03));
            Assert.That(recipient.Message.ToArray(), Is.Not.EqualTo(sender.Message.ToArray()));

            using var senderKeys = sender.Finish(recipient.Message.Span);
            using var recipientKeys = recipient.Finish(sender.Message.Span);

            Assert.That(senderKeys.SessionKey.Length, Is.EqualTo(suite.SessionKeyLength));
            Assert.That(senderKeys.SessionKey.ToArray(), Is.EqualTo(recipientKeys.SessionKey.ToArray()));
            Assert.That(senderKeys.Confirmation.ToArray(), Is.Not.EqualTo(recipientKeys.Confirmation.ToArray()));
            Assert.That(senderKeys.Role, Is.EqualTo(Spake2Role.Sender));
            Assert.That(recipientKeys.Suite, Is.SameAs(suite));
            Assert.DoesNotThrow(() => senderKeys.VerifyPeerConfirmation(recipientKeys.Confirmation));
            Assert.DoesNotThrow(() => recipientKeys.VerifyPeerConfirmation(senderKeys.Confirmation));
        }
    }

    [TestCaseSource(nameof(Suites))]
    public void Start_TwoRuns_UseFreshScalars(Spake2Suite suite)
    {
        var w = PakeTestData.RandomW(suite);
        using var a = Spake2.Start(suite, Spake2Role.Sender, w, PakeTestData.Ids, PakeTestData.Aad);
        using var b = Spake2.Start(suite, Spake2Role.Sender, w, PakeTestData.Ids, PakeTestData.Aad);
        Assert.That(a.Message.ToArray(), Is.Not.EqualTo(b.Message.ToArray()));
    }

    [TestCaseSource(nameof(Suites))]
    public void VerifyPeerConfirmation_WrongPassword_ThrowsAuthenticationOnBothSides(Spake2Suite suite)
    {
        var (sender, recipient) = PakeTestData.StartPair(suite, PakeTestData.RandomW(suite), PakeTestData.RandomW(suite));
        using (sender)
        using (recipient)
        {
            using var senderKeys = sender.Finish(recipient.Message.Span);
            using var recipientKeys = recipient.Finish(sender.Message.Span);

            Assert.That(senderKeys.SessionKey.ToArray(), Is.Not.EqualTo(recipientKeys.SessionKey.ToArray()));
            Assert.That(() => senderKeys.VerifyPeerConfirmation(recipientKeys.Confirmation), Throws.TypeOf<CrocAuthenticationException>()
                .With.Property(nameof(CrocException.Code)).EqualTo(CrocErrorCode.AuthenticationFailed));
            Assert.That(() => recipientKeys.VerifyPeerConfirmation(senderKeys.Confirmation), Throws.TypeOf<CrocAuthenticationException>());
        }
    }

    [TestCaseSource(nameof(Suites))]
    public void VerifyPeerConfirmation_DifferentIdentitiesOrAad_ThrowsAuthentication(Spake2Suite suite)
    {
        var w = PakeTestData.RandomW(suite);
        foreach (var (ids, aad) in new[] { (new Spake2Identities("alice", "carol"), PakeTestData.Aad), (PakeTestData.Ids, "other aad"u8.ToArray()) })
        {
            using var sender = Spake2.Start(suite, Spake2Role.Sender, w, PakeTestData.Ids, PakeTestData.Aad);
            using var recipient = Spake2.Start(suite, Spake2Role.Recipient, w, ids, aad);
            using var senderKeys = sender.Finish(recipient.Message.Span);
            using var recipientKeys = recipient.Finish(sender.Message.Span);
            Assert.That(() => senderKeys.VerifyPeerConfirmation(recipientKeys.Confirmation), Throws.TypeOf<CrocAuthenticationException>());
        }
    }

    [TestCaseSource(nameof(Suites))]
    public void VerifyPeerConfirmation_Tampered_ThrowsAuthentication(Spake2Suite suite)
    {
        var w = PakeTestData.RandomW(suite);
        var (sender, recipient) = PakeTestData.StartPair(suite, w, w);
        using (sender)
        using (recipient)
        {
            using var senderKeys = sender.Finish(recipient.Message.Span);
            using var recipientKeys = recipient.Finish(sender.Message.Span);
            var good = recipientKeys.Confirmation.ToArray();

            for (var i = 0; i < good.Length; i += 7)
            {
                var bad = (byte[])good.Clone();
                bad[i] ^= 0x80;
                Assert.That(() => senderKeys.VerifyPeerConfirmation(bad), Throws.TypeOf<CrocAuthenticationException>(), $"bit flip at {i}");
            }

            Assert.That(() => senderKeys.VerifyPeerConfirmation(good.AsSpan(0, good.Length - 1)), Throws.TypeOf<CrocAuthenticationException>(), "truncated");
            Assert.That(() => senderKeys.VerifyPeerConfirmation([.. good, 0]), Throws.TypeOf<CrocAuthenticationException>(), "extended");
            Assert.That(() => senderKeys.VerifyPeerConfirmation([]), Throws.TypeOf<CrocAuthenticationException>(), "empty");
            Assert.That(() => senderKeys.VerifyPeerConfirmation(senderKeys.Confirmation), Throws.TypeOf<CrocAuthenticationException>(), "own confirmation reflected");
            Assert.DoesNotThrow(() => senderKeys.VerifyPeerConfirmation(good));
        }
    }

    private static IEnumerable<TestCaseData> InvalidPoints()
    {
        foreach (var suite in Spake2Suite.All)
        {
            var valid = suite.G.Multiply(BigInteger.ValueOf(7)).Normalize();
            var compressed = valid.GetEncoded(true);
            var uncompressed = valid.GetEncoded(false);

            yield return Case(suite, "empty", []);
            yield return Case(suite, "infinity 0x00", [0x00]);
            yield return Case(suite, "infinity 0x00 padded to point length", new byte[compressed.Length]);
            yield return Case(suite, "truncated compressed", compressed[..^1]);
            yield return Case(suite, "truncated uncompressed", uncompressed[..^1]);
            yield return Case(suite, "compressed with one byte too many", [.. compressed, 0]);
            yield return Case(suite, "prefix only", compressed[..1]);
            yield return Case(suite, "bad prefix 0x05", [0x05, .. compressed[1..]]);
            yield return Case(suite, "bad prefix 0x01", [0x01, .. compressed[1..]]);
            yield return Case(suite, "hybrid prefix 0x06", [0x06, .. uncompressed[1..]]);
            yield return Case(suite, "hybrid prefix 0x07", [0x07, .. uncompressed[1..]]);
            yield return Case(suite, "uncompressed prefix with compressed length", [0x04, .. compressed[1..]]);
            yield return Case(suite, "compressed prefix with uncompressed length", [0x02, .. uncompressed[1..]]);
            yield return Case(suite, "x not on curve", NotOnCurveX(suite));
            yield return Case(suite, "x above field prime", [0x02, .. Enumerable.Repeat((byte)0xff, suite.FieldLength)]);
            var offCurve = (byte[])uncompressed.Clone();
            offCurve[^1] ^= 0x01;
            yield return Case(suite, "uncompressed off curve", offCurve);
        }

        static TestCaseData Case(Spake2Suite suite, string name, byte[] bytes) =>
            new TestCaseData(suite, bytes).SetArgDisplayNames(suite.Name, name);
    }

    [TestCaseSource(nameof(InvalidPoints))]
    public void Finish_InvalidPeerPoint_ThrowsProtocolForBothRoles(Spake2Suite suite, byte[] peerMessage)
    {
        var w = PakeTestData.RandomW(suite);
        foreach (var role in new[] { Spake2Role.Sender, Spake2Role.Recipient })
        {
            using var run = Spake2.Start(suite, role, w, PakeTestData.Ids, PakeTestData.Aad);
            Assert.That(() => run.Finish(peerMessage), Throws.TypeOf<CrocProtocolException>()
                .With.Property(nameof(CrocException.Code)).EqualTo(CrocErrorCode.ProtocolViolation));
        }
    }

    [TestCaseSource(nameof(Suites))]
    public void Finish_ReflectedOwnMessage_ThrowsProtocol(Spake2Suite suite)
    {
        var w = PakeTestData.RandomW(suite);
        using var compressed = Spake2.Start(suite, Spake2Role.Sender, w, PakeTestData.Ids, PakeTestData.Aad);
        Assert.That(() => compressed.Finish(compressed.Message.Span), Throws.TypeOf<CrocProtocolException>().With.Message.Contains("reflection"));

        using var uncompressed = Spake2.Start(suite, Spake2Role.Recipient, w, PakeTestData.Ids, PakeTestData.Aad);
        var own = suite.Curve.DecodePoint(uncompressed.Message.ToArray()).GetEncoded(false);
        Assert.That(() => uncompressed.Finish(own), Throws.TypeOf<CrocProtocolException>().With.Message.Contains("reflection"));
    }

    [TestCaseSource(nameof(Suites))]
    public void Finish_PeerMessageIsWTimesBlind_ThrowsProtocolForIdentityK(Spake2Suite suite)
    {
        // pB = w*N makes pB - w*N the identity; only someone who knows w can send it, but K must still not be O.
        var w = PakeTestData.RandomW(suite);
        using var sender = Spake2.Start(suite, Spake2Role.Sender, w, PakeTestData.Ids, PakeTestData.Aad);
        var evil = suite.N.Multiply(new BigInteger(1, w)).GetEncoded(true);
        Assert.That(() => sender.Finish(evil), Throws.TypeOf<CrocProtocolException>().With.Message.Contains("identity"));
    }

    [Test]
    public void Finish_CalledTwice_ThrowsInvalidOperation()
    {
        var suite = Spake2Suite.P256;
        var w = PakeTestData.RandomW(suite);
        var (sender, recipient) = PakeTestData.StartPair(suite, w, w);
        using (sender)
        using (recipient)
        {
            using var keys = sender.Finish(recipient.Message.Span);
            Assert.That(() => sender.Finish(recipient.Message.Span), Throws.InvalidOperationException);
        }
    }

    [Test]
    public void Finish_AfterRejectedMessage_ThrowsInvalidOperation()
    {
        var suite = Spake2Suite.P256;
        var w = PakeTestData.RandomW(suite);
        var (sender, recipient) = PakeTestData.StartPair(suite, w, w);
        using (sender)
        using (recipient)
        {
            Assert.That(() => sender.Finish([0x00]), Throws.TypeOf<CrocProtocolException>());
            Assert.That(() => sender.Finish(recipient.Message.Span), Throws.InvalidOperationException, "a run is single-use even after a bad message");
        }
    }

    [Test]
    public void Finish_AfterDispose_ThrowsObjectDisposed()
    {
        var suite = Spake2Suite.P256;
        var w = PakeTestData.RandomW(suite);
        var (sender, recipient) = PakeTestData.StartPair(suite, w, w);
        using (recipient)
        {
            sender.Dispose();
            sender.Dispose();
            Assert.That(() => sender.Finish(recipient.Message.Span), Throws.TypeOf<ObjectDisposedException>());
        }
    }

    [Test]
    public void Keys_AfterDispose_ThrowObjectDisposedAndAreZeroed()
    {
        var suite = Spake2Suite.P256;
        var w = PakeTestData.RandomW(suite);
        var (sender, recipient) = PakeTestData.StartPair(suite, w, w);
        using (sender)
        using (recipient)
        {
            var keys = sender.Finish(recipient.Message.Span);
            var keyView = keys.SessionKey.ToArray();
            Assert.That(keyView, Has.Some.Not.Zero);
            keys.Dispose();
            Assert.That(() => keys.SessionKey.ToArray(), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => keys.Confirmation.ToArray(), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => keys.VerifyPeerConfirmation(new byte[32]), Throws.TypeOf<ObjectDisposedException>());
        }
    }

    [Test]
    public void Start_WrongWLength_ThrowsArgument()
    {
        Assert.That(() => Spake2.Start(Spake2Suite.P256, Spake2Role.Sender, new byte[31], PakeTestData.Ids, default), Throws.ArgumentException);
        Assert.That(() => Spake2.Start(Spake2Suite.P384, Spake2Role.Sender, new byte[32], PakeTestData.Ids, default), Throws.ArgumentException);
    }

    [TestCaseSource(nameof(Suites))]
    public void Start_WNotBelowOrder_ThrowsArgument(Spake2Suite suite)
    {
        var order = suite.Order.ToByteArrayUnsigned();
        var w = new byte[suite.ScalarLength];
        order.CopyTo(w, w.Length - order.Length);
        Assert.That(() => Spake2.Start(suite, Spake2Role.Sender, w, PakeTestData.Ids, default), Throws.ArgumentException.With.Message.Contains("order"));
    }

    [Test]
    public void Start_UnknownRole_ThrowsArgument()
    {
        Assert.That(() => Spake2.Start(Spake2Suite.P256, (Spake2Role)7, new byte[32], PakeTestData.Ids, default), Throws.ArgumentException);
    }

    private static byte[] NotOnCurveX(Spake2Suite suite)
    {
        // The first x whose x^3 + ax + b has no square root: no point of the curve has that x.
        for (var i = 1; ; i++)
        {
            var x = suite.Curve.FromBigInteger(BigInteger.ValueOf(i));
            var rhs = x.Square().Add(suite.Curve.A).Multiply(x).Add(suite.Curve.B);
            if (rhs.Sqrt() is null)
            {
                var encoded = new byte[suite.CompressedPointLength];
                encoded[0] = 0x02;
                x.GetEncoded().CopyTo(encoded, 1);
                return encoded;
            }
        }
    }
}

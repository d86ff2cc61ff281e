using System.Security.Cryptography;
using System.Text;
using CrocNet.Pake;

namespace CrocNet.Tests.Pake;

[TestFixture]
public sealed class CrocPakeTests
{
    private const string Secret = "autumn-rocket-violin";
    private const string Channel = "k7f2q9xm";

    [TestCase("p256")]
    [TestCase("siec")]
    public void Start_SameCodeBothSides_ConfirmationsVerify(string curve)
    {
        var suite = Spake2Suite.Get(curve);
        using var sender = CrocPake.Start(suite, Spake2Role.Sender, Secret, Channel);
        using var recipient = CrocPake.Start(suite, Spake2Role.Recipient, Secret, Channel);
        using var recipientKeys = recipient.Finish(sender.Message.Span);
        using var senderKeys = sender.Finish(recipient.Message.Span);

        Assert.DoesNotThrow(() => senderKeys.VerifyPeerConfirmation(recipientKeys.Confirmation));
        Assert.DoesNotThrow(() => recipientKeys.VerifyPeerConfirmation(senderKeys.Confirmation));
        Assert.That(senderKeys.SessionKey.ToArray(), Is.EqualTo(recipientKeys.SessionKey.ToArray()));
    }

    [Test]
    public void Start_ChannelMismatch_FailsConfirmation()
    {
        using var sender = CrocPake.Start(Spake2Suite.P256, Spake2Role.Sender, Secret, Channel);
        using var recipient = CrocPake.Start(Spake2Suite.P256, Spake2Role.Recipient, Secret, "k7f2q9xn");
        using var recipientKeys = recipient.Finish(sender.Message.Span);
        using var senderKeys = sender.Finish(recipient.Message.Span);

        Assert.That(() => senderKeys.VerifyPeerConfirmation(recipientKeys.Confirmation), Throws.TypeOf<CrocAuthenticationException>());
        Assert.That(() => recipientKeys.VerifyPeerConfirmation(senderKeys.Confirmation), Throws.TypeOf<CrocAuthenticationException>());
    }

    [Test]
    public void Start_SecretMismatch_FailsConfirmation()
    {
        using var sender = CrocPake.Start(Spake2Suite.P256, Spake2Role.Sender, Secret, Channel);
        using var recipient = CrocPake.Start(Spake2Suite.P256, Spake2Role.Recipient, "autumn-rocket-viola", Channel);
        using var recipientKeys = recipient.Finish(sender.Message.Span);
        using var senderKeys = sender.Finish(recipient.Message.Span);

        Assert.That(() => senderKeys.VerifyPeerConfirmation(recipientKeys.Confirmation), Throws.TypeOf<CrocAuthenticationException>());
    }

    [Test]
    public void Aad_CurveMismatchWithSameW_FailsConfirmation()
    {
        // The curve name in the AAD alone must split the keys, even if everything else matched.
        var w = PakeTestData.RandomW(Spake2Suite.P256);
        using var sender = Spake2.Start(Spake2Suite.P256, Spake2Role.Sender, w, CrocPake.Identities, CrocPake.Aad(Spake2Suite.P256, Channel));
        using var recipient = Spake2.Start(Spake2Suite.P256, Spake2Role.Recipient, w, CrocPake.Identities, CrocPake.Aad(Spake2Suite.Siec, Channel));
        using var recipientKeys = recipient.Finish(sender.Message.Span);
        using var senderKeys = sender.Finish(recipient.Message.Span);

        Assert.That(() => senderKeys.VerifyPeerConfirmation(recipientKeys.Confirmation), Throws.TypeOf<CrocAuthenticationException>());
    }

    [Test]
    public void Start_CurveMismatch_FailsBeforeAnyKeyIsTrusted()
    {
        // p256 and siec points are both 33 bytes: the foreign point is either rejected or yields a failing confirmation.
        using var sender = CrocPake.Start(Spake2Suite.P256, Spake2Role.Sender, Secret, Channel);
        using var recipient = CrocPake.Start(Spake2Suite.Siec, Spake2Role.Recipient, Secret, Channel);

        Assert.That(
            () =>
            {
                using var recipientKeys = recipient.Finish(sender.Message.Span);
                using var senderKeys = sender.Finish(recipient.Message.Span);
                senderKeys.VerifyPeerConfirmation(recipientKeys.Confirmation);
            },
            Throws.InstanceOf<CrocException>().With.Property(nameof(CrocException.Code)).AnyOf(CrocErrorCode.ProtocolViolation, CrocErrorCode.AuthenticationFailed));
    }

    [Test]
    public void AadAndSalt_FollowProtocolMd()
    {
        Assert.That(Encoding.UTF8.GetString(CrocPake.Aad(Spake2Suite.P384, Channel)), Is.EqualTo("croc/1|p384|k7f2q9xm"));
        Assert.That(CrocPake.Salt(Channel), Is.EqualTo(SHA256.HashData("croc/1|k7f2q9xm"u8)));
        Assert.That(CrocPake.Identities, Is.EqualTo(new Spake2Identities("croc-sender", "croc-recipient")));
    }
}

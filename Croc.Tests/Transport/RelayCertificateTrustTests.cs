using System.Net.Security;
using CrocNet.Transport;

namespace CrocNet.Tests.Transport;

/// <summary>Which certificates an instance that trusts one extra certificate accepts: that one, what it issued, and what the system trusts.</summary>
public class RelayCertificateTrustTests
{
    [Test]
    public void Accepts_ExactlyTheTrustedSelfSignedCertificate()
    {
        using var relay = TestCertificates.SelfSigned();
        using var other = TestCertificates.SelfSigned();
        using var trusted = TestCertificates.PublicPart(relay);

        Assert.That(RelayCertificateTrust.Accepts(trusted, relay, null, SslPolicyErrors.RemoteCertificateChainErrors), Is.True);
        Assert.That(RelayCertificateTrust.Accepts(trusted, other, null, SslPolicyErrors.RemoteCertificateChainErrors), Is.False, "the same name, another key");
        Assert.That(RelayCertificateTrust.Accepts(trusted, null, null, SslPolicyErrors.RemoteCertificateNotAvailable), Is.False);
    }

    [Test]
    public void Accepts_CertificateIssuedByTheTrustedRoot_OnlyWhenTheNameMatches()
    {
        var (root, server) = TestCertificates.IssuedByPrivateCa();
        var (otherRoot, otherServer) = TestCertificates.IssuedByPrivateCa();
        using (root)
        using (server)
        using (otherRoot)
        using (otherServer)
        {
            Assert.That(RelayCertificateTrust.Accepts(root, server, null, SslPolicyErrors.RemoteCertificateChainErrors), Is.True);
            Assert.That(
                RelayCertificateTrust.Accepts(root, server, null, SslPolicyErrors.RemoteCertificateChainErrors | SslPolicyErrors.RemoteCertificateNameMismatch),
                Is.False,
                "a trust root does not excuse a wrong host name");
            Assert.That(RelayCertificateTrust.Accepts(root, otherServer, null, SslPolicyErrors.RemoteCertificateChainErrors), Is.False, "another CA's certificate");
        }
    }

    [Test]
    public void Accepts_WhatTheSystemAccepts_Unchanged()
    {
        using var relay = TestCertificates.SelfSigned();
        using var unrelated = TestCertificates.SelfSigned();

        Assert.That(RelayCertificateTrust.Accepts(TestCertificates.PublicPart(unrelated), relay, null, SslPolicyErrors.None), Is.True);
    }
}

using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace CrocNet.Transport;

/// <summary>
/// The HTTP handler of an instance that trusts one extra relay certificate (<c>TrustRelayCertificate</c>): a certificate
/// the system accepts is accepted as always; otherwise the relay's certificate is accepted when it is exactly the trusted
/// one, or when the trusted one is the root its chain builds to and the host name matches.
/// </summary>
internal static class RelayCertificateTrust
{
    public static SocketsHttpHandler CreateHandler(X509Certificate2 trusted)
    {
        var handler = new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            ConnectTimeout = TimeSpan.FromSeconds(10),
        };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, chain, errors) => Accepts(trusted, certificate, chain, errors);
        return handler;
    }

    internal static bool Accepts(X509Certificate2 trusted, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }

        if (certificate is null)
        {
            return false;
        }

        if (certificate.GetRawCertData().AsSpan().SequenceEqual(trusted.RawData))
        {
            // The very certificate the caller named: its name and chain were the caller's to judge.
            return true;
        }

        if ((errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != 0)
        {
            // A wrong host name (or no certificate) is not something a trust root can fix.
            return false;
        }

        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.Add(trusted);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain is not null)
        {
            foreach (var element in chain.ChainElements)
            {
                custom.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return custom.Build(leaf);
    }
}

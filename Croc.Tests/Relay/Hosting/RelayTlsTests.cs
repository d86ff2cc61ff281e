using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CrocNet.Relay;
using Microsoft.Extensions.Options;
using static CrocNet.Tests.Relay.RelayTestKit;

namespace CrocNet.Tests.Relay.Hosting;

/// <summary>HTTPS on <see cref="CrocRelayServer"/>: a certificate object, a PFX, a PEM pair; clear errors for bad settings.</summary>
[CancelAfter(30_000)]
public class RelayTlsTests
{
    private const string Password = "pfx-secret-7f3a";
    private DirectoryInfo _folder = null!;

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("croc-tls-");

    [TearDown]
    public void TearDown() => _folder.Delete(recursive: true);

    private static X509Certificate2 CreateCertificate() => Transport.TestCertificates.SelfSigned();

    /// <summary>An HTTP client that trusts exactly <paramref name="trusted"/> (as its own root), nothing else.</summary>
    internal static HttpClient TrustingClient(Uri baseAddress, X509Certificate2 trusted)
    {
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                {
                    if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
                    {
                        return false;
                    }

                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.Add(trusted);
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    return chain.Build(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
                },
            },
        };
        return new HttpClient(handler) { BaseAddress = baseAddress };
    }

    private static async Task AssertServesAsync(CrocRelayServer relay, X509Certificate2 trusted, CancellationToken cancellationToken)
    {
        Assert.That(relay.BaseAddress.Scheme, Is.EqualTo("https"));
        using var client = TrustingClient(relay.BaseAddress, trusted);
        var joined = await OkAsync(PostAsync(client, "join", new { role = "sender" }, cancellationToken));
        Assert.That(joined.Str("channel"), Is.Not.Empty);
    }

    [Test]
    public async Task StartAsync_HttpsWithCertificate_ServesTls(CancellationToken cancellationToken)
    {
        using var certificate = CreateCertificate();
        await using var relay = await StartRelayAsync(cancellationToken, o =>
        {
            o.Url = "https://127.0.0.1:0";
            o.Certificate = certificate;
        });
        await AssertServesAsync(relay, certificate, cancellationToken);

        // Another certificate is not trusted: the client trusts exactly the one it was given.
        using var other = CreateCertificate();
        using var stranger = TrustingClient(relay.BaseAddress, other);
        Assert.That(() => stranger.GetAsync("join", cancellationToken), Throws.InstanceOf<HttpRequestException>());
    }

    [Test]
    public async Task StartAsync_PfxWithPassword_ServesTls(CancellationToken cancellationToken)
    {
        using var certificate = CreateCertificate();
        var path = Path.Combine(_folder.FullName, "relay.pfx");
        await File.WriteAllBytesAsync(path, certificate.Export(X509ContentType.Pkcs12, Password), cancellationToken);
        await using var relay = await StartRelayAsync(cancellationToken, o =>
        {
            o.Url = "https://127.0.0.1:0";
            o.CertificatePath = path;
            o.CertificatePassword = Password;
        });
        await AssertServesAsync(relay, certificate, cancellationToken);
    }

    [Test]
    public async Task StartAsync_PemCertificateAndKey_ServesTls(CancellationToken cancellationToken)
    {
        using var certificate = CreateCertificate();
        var certPath = Path.Combine(_folder.FullName, "relay.crt");
        var keyPath = Path.Combine(_folder.FullName, "relay.key");
        await File.WriteAllTextAsync(certPath, certificate.ExportCertificatePem(), cancellationToken);
        await File.WriteAllTextAsync(keyPath, certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem(), cancellationToken);
        await using (var relay = await StartRelayAsync(cancellationToken, o =>
        {
            o.Url = "https://127.0.0.1:0";
            o.CertificatePath = certPath;
            o.CertificateKeyPath = keyPath;
        }))
        {
            await AssertServesAsync(relay, certificate, cancellationToken);
        }

        // The key in the same PEM file as the certificate.
        var both = Path.Combine(_folder.FullName, "relay.pem");
        await File.WriteAllTextAsync(both, certificate.ExportCertificatePem() + "\n" + certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem(), cancellationToken);
        await using (var relay = await StartRelayAsync(cancellationToken, o =>
        {
            o.Url = "https://127.0.0.1:0";
            o.CertificatePath = both;
        }))
        {
            await AssertServesAsync(relay, certificate, cancellationToken);
        }
    }

    private static string StartError(Action<CrocRelayServerOptions> configure, CancellationToken cancellationToken)
    {
        var error = Assert.ThrowsAsync<OptionsValidationException>(() => StartRelayAsync(cancellationToken, configure));
        return error!.Message;
    }

    [Test]
    public void StartAsync_HttpsWithoutCertificate_NamesTheSettings(CancellationToken cancellationToken)
        => Assert.That(StartError(o => o.Url = "https://127.0.0.1:0", cancellationToken), Does.Contain("CertificatePath").And.Contain("Certificate,"));

    [Test]
    public void StartAsync_MissingCertificateFile_NamesTheSetting(CancellationToken cancellationToken)
    {
        var missing = Path.Combine(_folder.FullName, "nothere.pfx");
        Assert.That(
            StartError(o => { o.Url = "https://127.0.0.1:0"; o.CertificatePath = missing; }, cancellationToken),
            Does.Contain("CertificatePath").And.Contain(missing).And.Contain("does not exist"));
        Assert.That(
            StartError(o => { o.Url = "https://127.0.0.1:0"; o.CertificatePath = missing; o.CertificateKeyPath = missing + ".key"; }, cancellationToken),
            Does.Contain("does not exist"));
    }

    [Test]
    public async Task StartAsync_WrongPasswordOrGarbage_NamesTheSettingNeverThePassword(CancellationToken cancellationToken)
    {
        using var certificate = CreateCertificate();
        var path = Path.Combine(_folder.FullName, "relay.pfx");
        await File.WriteAllBytesAsync(path, certificate.Export(X509ContentType.Pkcs12, Password), cancellationToken);
        var wrong = StartError(o => { o.Url = "https://127.0.0.1:0"; o.CertificatePath = path; o.CertificatePassword = "not-" + Password; }, cancellationToken);
        Assert.That(wrong, Does.Contain("CertificatePath").And.Contain("CertificatePassword").And.Not.Contain(Password));

        var garbage = Path.Combine(_folder.FullName, "garbage.pfx");
        await File.WriteAllTextAsync(garbage, "not a certificate", cancellationToken);
        Assert.That(StartError(o => { o.Url = "https://127.0.0.1:0"; o.CertificatePath = garbage; }, cancellationToken), Does.Contain("CertificatePath"));
    }

    [Test]
    public async Task StartAsync_CertificateWithoutKey_IsRefused(CancellationToken cancellationToken)
    {
        using var certificate = CreateCertificate();
        using var publicOnly = X509CertificateLoader.LoadCertificate(certificate.RawData);
        Assert.That(StartError(o => { o.Url = "https://127.0.0.1:0"; o.Certificate = publicOnly; }, cancellationToken), Does.Contain("private key"));

        var certPath = Path.Combine(_folder.FullName, "only.crt");
        await File.WriteAllTextAsync(certPath, certificate.ExportCertificatePem(), cancellationToken);
        Assert.That(StartError(o => { o.Url = "https://127.0.0.1:0"; o.CertificatePath = certPath; }, cancellationToken), Does.Contain("CertificatePath"));
    }

    [Test]
    public void StartAsync_CertificateWithHttpUrl_IsRefused(CancellationToken cancellationToken)
    {
        using var certificate = CreateCertificate();
        Assert.That(StartError(o => o.Certificate = certificate, cancellationToken), Does.Contain("https://"));
    }
}

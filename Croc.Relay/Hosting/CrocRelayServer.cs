using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Hosting;
using CrocNet.Relay.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CrocNet.Relay;

/// <summary>
/// A complete relay in one call: a minimal Kestrel application with <c>AddCrocRelay</c> and <c>MapCrocRelay</c>.
/// Used by tests, by the command line's embedded relay and by anyone who wants a relay without writing a host.
/// </summary>
/// <example>
/// <code>
/// await using var relay = await CrocRelayServer.StartAsync(o => o.Url = "http://127.0.0.1:0");
/// Console.WriteLine($"{relay.BaseAddress} ports {string.Join(",", relay.Ports)}");
/// </code>
/// </example>
public sealed class CrocRelayServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly X509Certificate2? _ownedCertificate;
    private int _disposed;

    private CrocRelayServer(WebApplication app, Uri baseAddress, IReadOnlyList<int> ports, X509Certificate2? ownedCertificate)
    {
        _app = app;
        _ownedCertificate = ownedCertificate;
        BaseAddress = baseAddress;
        Ports = ports;
    }

    /// <summary>
    /// The relay's base URL as bound, ending in <c>/</c>: its scheme (<c>https</c> with a certificate), and a wildcard host
    /// (<c>0.0.0.0</c>, <c>[::]</c>) reported as <c>127.0.0.1</c>, which reaches it.
    /// </summary>
    public Uri BaseAddress { get; }

    /// <summary>The TCP stapling ports actually bound.</summary>
    public IReadOnlyList<int> Ports { get; }

    /// <summary>The server's services (for diagnostics and tests).</summary>
    public IServiceProvider Services => _app.Services;

    /// <summary>Builds, validates and starts a relay; returns once it accepts HTTP requests and TCP connections.</summary>
    /// <param name="configure">Changes the server options; <see langword="null"/> keeps the defaults.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <returns>The running server; dispose it to stop.</returns>
    /// <exception cref="OptionsValidationException">
    /// The relay options are invalid, or an <c>https://</c> URL has no certificate, or its certificate cannot be read.
    /// </exception>
    public static async Task<CrocRelayServer> StartAsync(Action<CrocRelayServerOptions>? configure = null, CancellationToken cancellationToken = default)
    {
        var options = new CrocRelayServerOptions();
        configure?.Invoke(options);
        ArgumentNullException.ThrowIfNull(options.Relay, "options.Relay");
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Url, "options.Url");
        CrocRelayOptionsValidator.ThrowIfInvalid(options.Relay);
        ThrowIfInvalid(options);
        var https = options.Url.StartsWith("https://", StringComparison.OrdinalIgnoreCase);
        var owned = https && options.Certificate is null ? LoadCertificate(options) : null;
        var certificate = options.Certificate ?? owned;
        try
        {
            return await StartAsync(options, certificate, owned, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            owned?.Dispose();
            throw;
        }
    }

    private static async Task<CrocRelayServer> StartAsync(CrocRelayServerOptions options, X509Certificate2? certificate, X509Certificate2? owned, CancellationToken cancellationToken)
    {

        // The empty builder reads no environment or files: the server is exactly what the options say.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore();
        var connections = new HttpConnectionLimit(
            options.MaxConnections ?? FileDescriptorBudget.DefaultConnections(FileDescriptorBudget.Limit, MaxDefaultConnections),
            options.MaxConnectionsPerAddress,
            options.Relay.IPv6PrefixLength,
            new IPNetworkList(options.Relay.TrustedProxies ?? []));
        builder.Services.AddSingleton(connections);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            // Every connection holds a file descriptor: bound them relay-wide (Kestrel) and per address (middleware),
            // and do not keep idle ones for long.
            kestrel.Limits.MaxConcurrentConnections = connections.Total;
            kestrel.Limits.MaxConcurrentUpgradedConnections = connections.Total;
            kestrel.Limits.KeepAliveTimeout = options.KeepAliveTimeout;
            kestrel.Limits.RequestHeadersTimeout = options.KeepAliveTimeout;
            kestrel.ConfigureEndpointDefaults(listen => listen.Use(connections.Middleware));
            if (certificate is not null)
            {
                kestrel.ConfigureHttpsDefaults(tls => tls.ServerCertificate = certificate);
            }
        });
        if (certificate is not null)
        {
            // The core Kestrel leaves https:// URLs out unless asked (it keeps TLS out of trimmed apps that need none).
            builder.WebHost.UseKestrelHttpsConfiguration();
        }

        builder.WebHost.UseUrls(options.Url);
        builder.Services.AddRoutingCore();
        builder.Services.AddSingleton(options.LoggerFactory ?? NullLoggerFactory.Instance);
        builder.Services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        builder.Services.AddSingleton(new RelayClock(options.TimeProvider ?? TimeProvider.System));
        var relay = options.Relay;
        builder.Services.AddCrocRelay(o => Copy(relay, o));

        var app = builder.Build();
        app.UseRouting();
        app.MapCrocRelay(options.PathBase);
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        var bound = new Uri(app.Urls.First());
        var host = bound.Host is "0.0.0.0" or "[::]" or "+" or "*" ? "127.0.0.1" : bound.Host;
        var baseAddress = new UriBuilder(bound.Scheme, host, bound.Port, options.PathBase.TrimEnd('/') + "/").Uri;
        var ports = app.Services.GetRequiredService<CrocRelayListeners>().Ports;
        return new CrocRelayServer(app, baseAddress, ports, owned);
    }

    /// <summary>Stops accepting, ends every channel and connection, and waits for the server to stop.</summary>
    /// <param name="cancellationToken">Makes the stop less graceful.</param>
    /// <returns>A task that completes when the server has stopped.</returns>
    public Task StopAsync(CancellationToken cancellationToken = default) => _app.StopAsync(cancellationToken);

    /// <summary>Stops the server (if running) and releases it.</summary>
    /// <returns>A task that completes when the server is gone.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            await _app.StopAsync().ConfigureAwait(false);
        }
        finally
        {
            await _app.DisposeAsync().ConfigureAwait(false);
            _ownedCertificate?.Dispose();
        }
    }

    /// <summary>The cap on the derived default of <see cref="CrocRelayServerOptions.MaxConnections"/>.</summary>
    internal const int MaxDefaultConnections = 10_000;

    private static void ThrowIfInvalid(CrocRelayServerOptions options)
    {
        var failures = new List<string>();
        if (options.MaxConnections is < 1 or > 1_000_000)
        {
            failures.Add(FormattableString.Invariant($"MaxConnections must be between 1 and 1000000, or unset; {options.MaxConnections} is not."));
        }

        if (options.MaxConnectionsPerAddress is < 1 or > 1_000_000)
        {
            failures.Add(FormattableString.Invariant($"MaxConnectionsPerAddress must be between 1 and 1000000; {options.MaxConnectionsPerAddress} is not."));
        }

        if (options.KeepAliveTimeout < TimeSpan.FromSeconds(1) || options.KeepAliveTimeout > TimeSpan.FromMinutes(10))
        {
            failures.Add(FormattableString.Invariant($"KeepAliveTimeout must be between 00:00:01 and 00:10:00; {options.KeepAliveTimeout} is not."));
        }

        var https = options.Url.StartsWith("https://", StringComparison.OrdinalIgnoreCase);
        var tls = options.Certificate is not null || options.CertificatePath is not null || options.CertificateKeyPath is not null || options.CertificatePassword is not null;
        if (https && options.Certificate is null && string.IsNullOrWhiteSpace(options.CertificatePath))
        {
            failures.Add("Url is https:// but no certificate is set: set Certificate, or CertificatePath (a .pfx, or a PEM certificate with CertificateKeyPath).");
        }
        else if (!https && tls)
        {
            failures.Add("A certificate is set (Certificate, CertificatePath, CertificateKeyPath or CertificatePassword) but Url is not https://: use an https:// Url, or drop the certificate settings.");
        }

        if (options.Certificate is { HasPrivateKey: false })
        {
            failures.Add("Certificate has no private key: TLS needs the certificate together with its key.");
        }

        if (failures.Count > 0)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(CrocRelayServerOptions), failures);
        }
    }

    /// <summary>Reads <see cref="CrocRelayServerOptions.CertificatePath"/>; every failure names the setting, never the password.</summary>
    private static X509Certificate2 LoadCertificate(CrocRelayServerOptions options)
    {
        var path = options.CertificatePath!;
        var keyPath = options.CertificateKeyPath;
        string? failure = null;
        X509Certificate2? loaded = null;
        try
        {
            if (!File.Exists(path))
            {
                failure = $"CertificatePath '{path}' does not exist.";
            }
            else if (keyPath is not null && !File.Exists(keyPath))
            {
                failure = $"CertificateKeyPath '{keyPath}' does not exist.";
            }
            else if (keyPath is not null || IsPem(path))
            {
                using var pem = options.CertificatePassword is { } password
                    ? X509Certificate2.CreateFromEncryptedPemFile(path, password, keyPath)
                    : X509Certificate2.CreateFromPemFile(path, keyPath);

                // A key read from PEM is ephemeral; TLS on some platforms needs it stored, so round-trip it once.
                loaded = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
            }
            else
            {
                loaded = X509CertificateLoader.LoadPkcs12FromFile(path, options.CertificatePassword);
            }
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            failure = keyPath is null
                ? $"CertificatePath '{path}' could not be read as a PKCS#12 (.pfx) or PEM certificate with its key ({e.GetType().Name}); check the file and CertificatePassword."
                : $"CertificatePath '{path}' with CertificateKeyPath '{keyPath}' could not be read as a PEM certificate and key ({e.GetType().Name}); check the files and CertificatePassword.";
        }

        if (failure is null && loaded is { HasPrivateKey: false })
        {
            failure = $"CertificatePath '{path}' holds no private key: use a .pfx with its key, or set CertificateKeyPath.";
        }

        if (failure is not null)
        {
            loaded?.Dispose();
            throw new OptionsValidationException(Options.DefaultName, typeof(CrocRelayServerOptions), [failure]);
        }

        return loaded!;
    }

    private static bool IsPem(string path)
    {
        Span<byte> start = stackalloc byte[64];
        using var file = File.OpenRead(path);
        var read = file.ReadAtLeast(start, start.Length, throwOnEndOfStream: false);
        return System.Text.Encoding.ASCII.GetString(start[..read]).TrimStart().StartsWith("-----BEGIN", StringComparison.Ordinal);
    }

    // Every setting, one by one (reflection would not survive trimming); a test fails when a new one is missing here.
    private static void Copy(CrocRelayOptions from, CrocRelayOptions to)
    {
        to.Ports = [.. from.Ports];
        to.ListenAddress = from.ListenAddress;
        to.AdvertisedHost = from.AdvertisedHost;
        to.ChannelExpiry = from.ChannelExpiry;
        to.ClosedRetention = from.ClosedRetention;
        to.HelloTimeout = from.HelloTimeout;
        to.MaxChannels = from.MaxChannels;
        to.MaxBodySize = from.MaxBodySize;
        to.MaxWaitingConnections = from.MaxWaitingConnections;
        to.MaxWait = from.MaxWait;
        to.PipeBufferSize = from.PipeBufferSize;
        to.HandshakeExpiry = from.HandshakeExpiry;
        to.MaxChannelsPerAddress = from.MaxChannelsPerAddress;
        to.MaxPendingHellos = from.MaxPendingHellos;
        to.MaxPendingHellosPerAddress = from.MaxPendingHellosPerAddress;
        to.WaitingTimeout = from.WaitingTimeout;
        to.PipeIdleTimeout = from.PipeIdleTimeout;
        to.MaxWaitingConnectionsPerAddress = from.MaxWaitingConnectionsPerAddress;
        to.MaxConnections = from.MaxConnections;
        to.MaxConnectionsPerAddress = from.MaxConnectionsPerAddress;
        to.IPv6PrefixLength = from.IPv6PrefixLength;
        to.MaxJoinsPerMinute = from.MaxJoinsPerMinute;
        to.MaxFailedLookupsPerMinute = from.MaxFailedLookupsPerMinute;
        to.Lanes = from.Lanes;
        to.WebSockets = from.WebSockets;
        to.WebSocketKeepAliveInterval = from.WebSocketKeepAliveInterval;
        to.TrustedProxies = [.. from.TrustedProxies ?? []];
        to.ForwardedHeader = from.ForwardedHeader;
        to.ProxyProtocol = from.ProxyProtocol;
        to.Password = from.Password;
        to.ReconnectWindow = from.ReconnectWindow;
        to.MaxReattachments = from.MaxReattachments;
    }
}

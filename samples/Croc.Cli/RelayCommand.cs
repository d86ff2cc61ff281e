using System.CommandLine;
using System.Net.Sockets;
using CrocNet.Relay;
using Microsoft.Extensions.Logging;

namespace CrocNet.Cli;

/// <summary><c>croc relay</c>: a standalone relay until Ctrl+C.</summary>
internal static class RelayCommand
{
    public static Command Create(CliConsole console)
    {
        var command = new Command("relay", "Run a relay on this machine until Ctrl+C. Every setting is also read from a CROC_* environment variable or a --config JSON file.")
        {
            CrocCli.QuietOption, CrocCli.DebugOption,
        };
        RelaySettings.AddTo(command);
        command.SetAction((parse, ct) => CrocCli.GuardAsync(console, parse, loggerFactory => RunAsync(console, parse, loggerFactory, ct), ct));
        return command;
    }

    private static async Task<int> RunAsync(CliConsole console, ParseResult parse, ILoggerFactory? debugLogging, CancellationToken cancellationToken)
    {
        // Every setting is read and checked before anything listens.
        var settings = new CrocRelayServerOptions();
        RelaySettings.Apply(settings, parse, console.GetEnvironmentVariable);
        var bind = LocalRelay.ParseUrl(settings.Url, "--listen");
        settings.Relay.ListenAddress = LocalRelay.ListenAddressFor(bind);
        CheckTls(bind, settings);

        // A relay logs to the console at Information (Warning with --quiet, Debug with --debug).
        using var ownLogging = debugLogging is null
            ? CrocCli.CreateLoggerFactory(parse.GetValue(CrocCli.QuietOption) ? LogLevel.Warning : LogLevel.Information, console.IsErrorTerminal)
            : null;
        settings.LoggerFactory = debugLogging ?? ownLogging!;

        CrocRelayServer server;
        try
        {
            server = await CrocRelayServer.StartAsync(o => Copy(settings, o), cancellationToken);
        }
        catch (Microsoft.Extensions.Options.OptionsValidationException ex)
        {
            // The relay's own limits (e.g. MaxChannels 1 to 10,000,000): named as in the settings table.
            throw new CliException(ExitCodes.Usage, $"The relay settings are invalid: {string.Join(" ", ex.Failures.Select(InSettingNames))} (settings are named as in the --config file; see croc relay --help).");
        }
        catch (Exception ex) when (InUse(ex) is { } socket)
        {
            throw new CliException(
                ExitCodes.Relay,
                $"Cannot listen on {settings.Url} with TCP ports {string.Join(",", settings.Relay.Ports)}: {socket.Message} (another croc relay or croc send?). Choose others with --listen and --ports.");
        }

        await using (server)
        {
            // The addresses actually bound (the port a :0 request got), not the loopback form used to reach them.
            var bound = new UriBuilder(server.BaseAddress) { Host = bind.Host }.Uri;
            var advertised = settings.Relay.AdvertisedHost is { Length: > 0 } host
                ? new UriBuilder(server.BaseAddress) { Host = host }.Uri
                : LocalRelay.Advertise(bind, server.BaseAddress);
            await console.Error.WriteLineAsync($"relay listening at {bound} ({Describe(server, settings)}); press Ctrl+C to stop.");
            await console.Error.WriteLineAsync($"others use: --relay {advertised.GetLeftPart(UriPartial.Path).TrimEnd('/')}{ClientHints(bound, settings)}");
            await console.Error.FlushAsync(CancellationToken.None);
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // Ctrl+C is how a relay is meant to stop: a clean exit.
            }
        }

        await console.Error.WriteLineAsync("relay stopped.");
        return ExitCodes.Success;
    }

    /// <summary>
    /// An https:// listen needs a certificate, and a certificate needs an https:// listen: said in the flags' words
    /// before anything starts.
    /// </summary>
    private static void CheckTls(Uri bind, CrocRelayServerOptions settings)
    {
        var https = bind.Scheme == Uri.UriSchemeHttps;
        if (https && string.IsNullOrWhiteSpace(settings.CertificatePath))
        {
            throw new CliException(
                ExitCodes.Usage,
                $"--listen {settings.Url} is https:// but no certificate is given: pass --certificate <file> (a .pfx, or a PEM certificate with --certificate-key <file>), or CROC_CERTIFICATE; or listen on http:// behind a TLS reverse proxy.");
        }

        if (!https && (settings.CertificatePath is not null || settings.CertificateKeyPath is not null || settings.CertificatePassword is not null))
        {
            throw new CliException(
                ExitCodes.Usage,
                $"A certificate is given (--certificate, --certificate-key or --certificate-password) but --listen {settings.Url} is not https://: listen on https://, or drop the certificate settings.");
        }
    }

    /// <summary>What the startup line says about the listeners: TCP ports, WebSocket legs, TLS and access (never the password).</summary>
    private static string Describe(CrocRelayServer server, CrocRelayServerOptions settings)
    {
        var tcp = server.Ports.Count > 0 ? $"TCP ports {string.Join(",", server.Ports)} on {settings.Relay.ListenAddress}" : "no TCP ports";
        var ws = settings.Relay.WebSockets ? $"WebSocket legs on {settings.PathBase.TrimEnd('/')}/staple" : "WebSocket legs off";
        var tls = server.BaseAddress.Scheme == Uri.UriSchemeHttps ? "https" : "plain http";
        var access = settings.Relay.Password is { Length: > 0 } ? "private: relay password set" : "open: no relay password";
        return $"{tcp}; {ws}; {tls}; {access}";
    }

    /// <summary>What clients add to --relay: the password's variable (never its value), and the certificate if self-signed.</summary>
    private static string ClientHints(Uri bound, CrocRelayServerOptions settings) =>
        (settings.Relay.Password is { Length: > 0 } ? " with CROC_RELAY_PASSWORD set to the relay password" : string.Empty)
        + (bound.Scheme == Uri.UriSchemeHttps ? " (and --relay-cert <certificate file> if the certificate is self-signed)" : string.Empty);

    /// <summary>The server's setting names in a failure, as the --config file and the flags name them.</summary>
    private static string InSettingNames(string failure) => failure
        .Replace("CertificateKeyPath", "CertificateKey (--certificate-key)", StringComparison.Ordinal)
        .Replace("CertificatePath", "Certificate (--certificate)", StringComparison.Ordinal)
        .Replace("CertificatePassword", "CertificatePassword (--certificate-password)", StringComparison.Ordinal);

    private static void Copy(CrocRelayServerOptions from, CrocRelayServerOptions to)
    {
        to.Url = from.Url;
        to.PathBase = from.PathBase;
        to.Relay = from.Relay;
        to.LoggerFactory = from.LoggerFactory;
        to.MaxConnections = from.MaxConnections;
        to.MaxConnectionsPerAddress = from.MaxConnectionsPerAddress;
        to.KeepAliveTimeout = from.KeepAliveTimeout;
        to.CertificatePath = from.CertificatePath;
        to.CertificateKeyPath = from.CertificateKeyPath;
        to.CertificatePassword = from.CertificatePassword;
    }

    private static SocketException? InUse(Exception? ex)
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            if (ex is SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse or SocketError.AccessDenied or SocketError.AddressNotAvailable } socket)
            {
                return socket;
            }
        }

        return null;
    }
}

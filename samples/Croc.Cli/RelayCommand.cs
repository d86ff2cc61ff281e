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
            throw new CliException(ExitCodes.Usage, $"The relay settings are invalid: {string.Join(" ", ex.Failures)} (settings are named as in the --config file; see croc relay --help).");
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
            await console.Error.WriteLineAsync($"relay listening at {bound} (TCP ports {string.Join(",", server.Ports)} on {settings.Relay.ListenAddress}); press Ctrl+C to stop.");
            await console.Error.WriteLineAsync($"others use: --relay {advertised.GetLeftPart(UriPartial.Path).TrimEnd('/')}");
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

    private static void Copy(CrocRelayServerOptions from, CrocRelayServerOptions to)
    {
        to.Url = from.Url;
        to.PathBase = from.PathBase;
        to.Relay = from.Relay;
        to.LoggerFactory = from.LoggerFactory;
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

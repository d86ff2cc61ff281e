using System.CommandLine;
using CrocNet.Relay;
using Microsoft.Extensions.Logging;

namespace CrocNet.Cli;

/// <summary><c>croc relay</c>: a standalone relay until Ctrl+C.</summary>
internal static class RelayCommand
{
    public static Command Create(CliConsole console)
    {
        var listen = new Option<string>("--listen", "--url")
        {
            Description = "The HTTP address to listen on.",
            DefaultValueFactory = _ => LocalRelay.DefaultUrl,
        };
        var ports = new Option<string>("--ports")
        {
            Description = "The TCP ports for the data connections: a range (9010-9013) or a list (9010,9011).",
            DefaultValueFactory = _ => LocalRelay.DefaultPorts,
        };
        var host = new Option<string?>("--host") { Description = "The host name or address clients should use for the TCP ports (default: the relay URL's host)." };
        var command = new Command("relay", "Run a relay on this machine until Ctrl+C.") { listen, ports, host, CrocCli.QuietOption, CrocCli.DebugOption };
        command.SetAction((parse, ct) => CrocCli.GuardAsync(
            console,
            parse,
            loggerFactory => RunAsync(console, parse, parse.GetValue(listen)!, parse.GetValue(ports)!, parse.GetValue(host), loggerFactory, ct),
            ct));
        return command;
    }

    private static async Task<int> RunAsync(CliConsole console, ParseResult parse, string url, string portList, string? host, ILoggerFactory? debugLogging, CancellationToken cancellationToken)
    {
        var bind = LocalRelay.ParseUrl(url, "--listen");
        var ports = LocalRelay.ParsePorts(portList, "--ports");
        // A relay logs to the console at Information (Warning with --quiet, Debug with --debug).
        using var ownLogging = debugLogging is null
            ? CrocCli.CreateLoggerFactory(parse.GetValue(CrocCli.QuietOption) ? LogLevel.Warning : LogLevel.Information)
            : null;
        var loggerFactory = debugLogging ?? ownLogging!;

        await using var server = await CrocRelayServer.StartAsync(
            o =>
            {
                o.Url = url;
                o.Relay.Ports = ports;
                o.Relay.ListenAddress = LocalRelay.ListenAddressFor(bind);
                o.Relay.AdvertisedHost = host;
                o.LoggerFactory = loggerFactory;
            },
            cancellationToken);

        var advertised = host is { Length: > 0 }
            ? new UriBuilder(server.BaseAddress) { Host = host }.Uri
            : LocalRelay.Advertise(bind, server.BaseAddress);
        await console.Error.WriteLineAsync($"relay listening at {server.BaseAddress} (TCP ports {string.Join(",", server.Ports)}); press Ctrl+C to stop.");
        await console.Error.WriteLineAsync($"others use: --relay {advertised.GetLeftPart(UriPartial.Authority)}");
        await console.Error.FlushAsync(CancellationToken.None);
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Ctrl+C is how a relay is meant to stop: a clean exit.
        }

        await console.Error.WriteLineAsync("relay stopped.");
        return ExitCodes.Success;
    }
}

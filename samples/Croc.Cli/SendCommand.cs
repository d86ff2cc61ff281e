using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using CrocNet.Cli.Discovery;
using Spectre.Console;

namespace CrocNet.Cli;

/// <summary><c>croc send</c>: files and folders, a text, or standard input.</summary>
internal static class SendCommand
{
    public static Command Create(CliConsole console)
    {
        var paths = new Argument<string[]>("paths")
        {
            Description = "Files and folders to send; '-' (or nothing, when data is piped in) sends standard input.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var text = new Option<string?>("--text") { Description = "Send this text instead of files." };
        var name = new Option<string>("--name")
        {
            Description = "The file name the recipient gets for standard input.",
            DefaultValueFactory = _ => "stdin",
        };
        var code = new Option<string?>("--code")
        {
            Description = "Use this code instead of a generated one, <channel>-<secret> (default: CROC_SECRET, else generated).",
        };
        var command = new Command("send", "Send files, folders, a text or standard input; prints the code the other side needs.")
        {
            paths, text, name, code, CrocCli.CurveOption,
        };
        CrocCli.AddTransferOptions(command);
        command.SetAction((parse, ct) => CrocCli.GuardAsync(
            console,
            parse,
            loggerFactory => RunAsync(console, parse, parse.GetValue(paths) ?? [], parse.GetValue(text), parse.GetValue(name)!, parse.GetValue(code), loggerFactory, ct),
            ct));
        return command;
    }

    private static async Task<int> RunAsync(
        CliConsole console, ParseResult parse, string[] paths, string? text, string name, string? code, Microsoft.Extensions.Logging.ILoggerFactory? loggerFactory, CancellationToken cancellationToken)
    {
        // Everything the command line says is checked before a relay starts or anything goes on the network.
        var content = Content(console, paths, text, name);
        var codeSource = code is not null ? "--code" : "CROC_SECRET";
        code ??= console.GetEnvironmentVariable("CROC_SECRET") is { Length: > 0 } secret ? secret : null;
        if (code is not null)
        {
            CheckCode(code, codeSource);
        }

        var discoveryPort = parse.GetValue(CrocCli.DiscoveryPortOption);
        if (discoveryPort is < 0 or > 65535)
        {
            throw new CliException(ExitCodes.Usage, $"--discovery-port {discoveryPort} is not a port number (0-65535).");
        }

        var given = CrocCli.ExplicitRelay(parse, console) is { } explicitRelay ? LocalRelay.ParseRelay(explicitRelay) : null;
        var access = CrocCli.ReadRelayAccess(parse, console);
        var embeddedUrl = parse.GetValue(CrocCli.EmbeddedUrlOption)!;
        var embeddedPorts = LocalRelay.ParsePorts(parse.GetValue(CrocCli.EmbeddedPortsOption)!, "--embedded-ports");
        LocalRelay.ParseUrl(embeddedUrl, "--embedded-url");
        var display = new TransferDisplay(console, dataOnStdout: false, parse.GetValue(CrocCli.QuietOption), parse.GetValue(CrocCli.NoProgressOption));

        LocalRelay.Found relay;
        var embedded = false;
        if (given is not null)
        {
            relay = new LocalRelay.Found(null, given, given);
        }
        else
        {
            // A relay password makes this send's own relay private too.
            relay = await LocalRelay.StartOwnAsync(embeddedUrl, embeddedPorts, access.Password, loggerFactory, cancellationToken);
            embedded = true;
            display.Info(relay.MovedFrom is { } taken
                ? $"[grey]Port {taken.Port} or {Markup.Escape(string.Join(",", embeddedPorts))} is in use (another croc on this machine?): started this send's own relay on free ports instead, {Markup.Escape(relay.Advertised.ToString())} (TCP ports {Markup.Escape(string.Join(",", relay.Server!.Ports))}; it stops when this transfer ends).[/]"
                : $"[grey]Started a relay on this machine: {Markup.Escape(relay.Advertised.ToString())} (it stops when this transfer ends).[/]");
        }

        await using var server = relay.Server;
        var croc = Croc.New(o =>
        {
            o.WithRelay(relay.Relay).WithCurve(parse.GetValue(CrocCli.CurveOption)!);
            access.ApplyTo(o);
            if (loggerFactory is not null)
            {
                o.UseLoggerFactory(loggerFactory);
            }
        });

        await using var operation = await croc.StartSendAsync(content, new SendOptions { Code = code, Progress = display }, cancellationToken);
        // Started before the code is shown, so it is already answering when the recipient types it.
        await using var responder = embedded ? StartResponder(display, parse, relay, operation.Channel) : null;
        // The code is printed even with --quiet: without it the send is useless. It goes to the person, never to a log.
        display.Always("code: " + operation.Code);
        display.Info("On the other computer run:");
        display.Info("  [bold]" + Markup.Escape(ReceiveCommandLine(relay.Advertised, operation.Code, console.CommandName, OperatingSystem.IsWindows())) + "[/]");
        // The built-in relay is plain http: a certificate this side trusts is nothing the recipient needs for it.
        if (RecipientNeeds(embedded ? access with { Certificate = null } : access) is { } needs)
        {
            display.Info(Markup.Escape(needs));
        }
        await display.ShowUntilDoneAsync(operation.Completion, "sending");
        var result = await operation.Completion;
        display.Info(Markup.Escape(display.Summary("Sent", result, text)));
        return ExitCodes.Success;
    }

    /// <summary>
    /// Answers LAN discovery for this channel next to the relay on this machine. A taken UDP port only turns
    /// discovery off (the printed command still names the relay), it does not stop the send.
    /// </summary>
    private static DiscoveryResponder? StartResponder(TransferDisplay display, ParseResult parse, LocalRelay.Found relay, string channel)
    {
        var port = parse.GetValue(CrocCli.DiscoveryPortOption);
        // The relay's own bind address: a relay only on loopback is only discoverable on loopback.
        var bind = LocalRelay.ListenAddressFor(LocalRelay.ParseUrl(parse.GetValue(CrocCli.EmbeddedUrlOption)!, "--embedded-url"));
        var address = IPAddress.TryParse(bind, out var parsed) ? parsed : IPAddress.Any;
        try
        {
            var responder = DiscoveryResponder.Start(new IPEndPoint(address, port), channel, relay.Advertised);
            display.Info($"[grey]Receivers on the local network can find it without --relay (UDP port {responder.LocalEndPoint.Port}).[/]");
            return responder;
        }
        catch (SocketException ex)
        {
            display.Info($"[grey]LAN discovery is off (UDP port {port}: {Markup.Escape(ex.Message)}): use the command shown below as printed.[/]");
            return null;
        }
    }

    /// <summary>
    /// The command the recipient runs: <c>--relay</c> only when their default would not find this relay. On
    /// Linux and macOS the code goes in <c>CROC_SECRET</c>, so it stays out of the recipient's process list
    /// (croc's CVE-2023-43621); Windows shows no other user's command lines, so there the code is the argument.
    /// </summary>
    internal static string ReceiveCommandLine(Uri relay, string code, string command = "croc", bool windows = false)
    {
        var isDefault = Uri.Compare(relay, new Uri(CrocOptions.DefaultRelay), UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;
        var address = relay.GetLeftPart(UriPartial.Path).TrimEnd('/');
        var receive = isDefault ? $"{command} receive" : $"{command} receive --relay {address}";
        return windows ? $"{receive} {code}" : $"CROC_SECRET={code} {receive}";
    }

    /// <summary>
    /// What the recipient needs besides the printed command to reach the same relay: the password's variable (never its
    /// value) and the certificate this side trusted.
    /// </summary>
    internal static string? RecipientNeeds(CrocCli.RelayAccess access) =>
        (access.Password is not null, access.Certificate is not null) switch
        {
            (true, true) => "The relay is private and its certificate self-signed: the recipient also needs CROC_RELAY_PASSWORD set to the relay's password, and --relay-cert with the same certificate file.",
            (true, false) => "The relay is private: the recipient also needs CROC_RELAY_PASSWORD set to the relay's password.",
            (false, true) => "The relay's certificate is self-signed: the recipient also needs --relay-cert with the same certificate file.",
            _ => null,
        };

    /// <summary>A malformed code is a usage error naming where it came from (the library would call it an option).</summary>
    internal static void CheckCode(string code, string source)
    {
        try
        {
            Codes.CodePhrase.Parse(code);
        }
        catch (CrocException ex)
        {
            throw new CliException(ExitCodes.Usage, $"{source} is not a usable code: {ex.Message}");
        }
    }

    private static SendContent Content(CliConsole console, string[] paths, string? text, string name)
    {
        if (text is not null)
        {
            if (text.Length == 0)
            {
                throw new CliException(ExitCodes.Usage, "--text is empty: give the text to send, e.g. --text \"meet at 10\".");
            }

            return paths.Length == 0
                ? SendContent.FromText(text)
                : throw new CliException(ExitCodes.Usage, "Send either --text or files, not both.");
        }

        if (paths is ["-"] || (paths.Length == 0 && !console.IsInputInteractive))
        {
            // Streamed as it is read: no temporary copy, the length is learned at the end.
            return SendContent.FromStream(console.Input, name);
        }

        if (paths.Length == 0)
        {
            throw new CliException(ExitCodes.Usage, "Nothing to send: give files or folders, --text \"...\", or pipe data in (croc send - < file).");
        }

        if (paths.Contains("-"))
        {
            throw new CliException(ExitCodes.Usage, "'-' (standard input) cannot be combined with other paths.");
        }

        foreach (var path in paths)
        {
            if (!File.Exists(path) && !Directory.Exists(path))
            {
                throw new CliException(ExitCodes.Usage, $"There is no file or folder at '{path}'.");
            }
        }

        return SendContent.FromPaths(paths);
    }
}

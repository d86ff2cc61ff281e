using System.CommandLine;
using System.Net;
using CrocNet.Cli.Discovery;
using CrocNet.Codes;
using Spectre.Console;

namespace CrocNet.Cli;

/// <summary><c>croc receive</c>: into a folder, or one file or text to standard output.</summary>
internal static class ReceiveCommand
{
    /// <summary>How long a recipient waits for a channel that does not exist (yet).</summary>
    internal static readonly TimeSpan ChannelGrace = TimeSpan.FromSeconds(5);

    private const int ListedEntries = 10;

    public static Command Create(CliConsole console)
    {
        var code = new Argument<string?>("code")
        {
            Description = "The code the sender printed (default: CROC_SECRET, else asked for).",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var output = new Option<string?>("--out", "-o") { Description = "The folder to write into (default: the current folder)." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace files that already exist (default: refuse the transfer)." };
        var yes = new Option<bool>("--yes", "-y") { Description = "Accept without asking." };
        var stdout = new Option<bool>("--stdout") { Description = "Write the single file (or text) to standard output; nothing else goes there." };
        var raw = new Option<bool>("--raw")
        {
            Description = "Print a received text exactly as sent, even to a terminal (by default its control characters are shown as \\uXXXX there, so it cannot send escape sequences to the terminal).",
        };
        var command = new Command("receive", "Receive what a sender offers, after showing it and asking.")
        {
            code, output, overwrite, yes, stdout, raw,
        };
        CrocCli.AddTransferOptions(command);
        command.SetAction((parse, ct) => CrocCli.GuardAsync(
            console,
            parse,
            loggerFactory => RunAsync(console, parse, new Settings(parse.GetValue(code), parse.GetValue(output), parse.GetValue(overwrite), parse.GetValue(yes), parse.GetValue(stdout), parse.GetValue(raw)), loggerFactory, ct),
            ct));
        return command;
    }

    private sealed record Settings(string? Code, string? Output, bool Overwrite, bool Yes, bool Stdout, bool Raw);

    private static async Task<int> RunAsync(CliConsole console, ParseResult parse, Settings settings, Microsoft.Extensions.Logging.ILoggerFactory? loggerFactory, CancellationToken cancellationToken)
    {
        // Everything the command line says is checked before anything goes on the network.
        if (settings.Stdout && settings.Output is not null)
        {
            throw new CliException(ExitCodes.Usage, "--stdout and --out cannot be used together.");
        }

        var outputDirectory = settings.Stdout ? null : Path.GetFullPath(settings.Output ?? Directory.GetCurrentDirectory());
        var given = CrocCli.ExplicitRelay(parse, console) is { } explicitRelay ? LocalRelay.ParseRelay(explicitRelay) : null;
        var access = CrocCli.ReadRelayAccess(parse, console);
        var targets = given is null ? DiscoveryTargets(parse) : [];
        var display = new TransferDisplay(console, dataOnStdout: settings.Stdout, parse.GetValue(CrocCli.QuietOption), parse.GetValue(CrocCli.NoProgressOption));
        var code = await ReadCodeAsync(console, display, settings.Code, cancellationToken);
        SendCommand.CheckCode(code, settings.Code is { Length: > 0 } ? "The code given" : console.GetEnvironmentVariable("CROC_SECRET") is { Length: > 0 } ? "CROC_SECRET" : "The code entered");
        var relay = given ?? await FindRelayAsync(display, parse, code, targets, cancellationToken);

        var croc = Croc.New(o =>
        {
            // The code came from a sender who is already waiting: a channel that is still missing after a short
            // grace is a typo, and the person should hear so in seconds, not half a minute.
            o.WithRelay(relay).WithChannelWaitTimeout(ChannelGrace);
            access.ApplyTo(o);
            if (loggerFactory is not null)
            {
                o.UseLoggerFactory(loggerFactory);
            }
        });
        var receive = new ReceiveOptions
        {
            OutputDirectory = outputDirectory,
            Overwrite = settings.Overwrite ? CrocOverwritePolicy.Overwrite : CrocOverwritePolicy.Fail,
            ConfirmOffer = (offer, ct) =>
            {
                display.Subject = offer.FileCount == 1 ? offer.Entries.First(e => !e.IsDirectory).RelativePath : $"{offer.FileCount} files";
                return ConfirmAsync(console, display, settings, outputDirectory, offer, ct);
            },
            Progress = display,
        };

        var transfer = settings.Stdout
            ? croc.ReceiveToStreamAsync(code, console.Output, receive, cancellationToken)
            : croc.ReceiveAsync(code, receive, cancellationToken);
        await display.ShowUntilDoneAsync(transfer, "receiving");
        var result = await transfer;
        await console.Output.FlushAsync(CancellationToken.None);

        if (result.Text is { } text && !settings.Stdout)
        {
            // The sender chose these characters: on a terminal they are shown, not obeyed (unless --raw).
            await console.OutputText.WriteLineAsync(console.IsOutputTerminal && !settings.Raw ? TerminalText.Neutralise(text) : text);
            await console.OutputText.FlushAsync(CancellationToken.None);
        }
        else if (result.Text is null)
        {
            display.Info(Markup.Escape(display.Summary("Received", result) + (outputDirectory is null ? "." : $" into {outputDirectory}.")));
        }

        return ExitCodes.Success;
    }

    private static async Task<string> ReadCodeAsync(CliConsole console, TransferDisplay display, string? given, CancellationToken cancellationToken)
    {
        if (given is { Length: > 0 })
        {
            return given;
        }

        if (console.GetEnvironmentVariable("CROC_SECRET") is { Length: > 0 } secret)
        {
            return secret;
        }

        if (!console.IsInputInteractive)
        {
            throw new CliException(ExitCodes.Usage, "No code given: pass it as an argument or in the CROC_SECRET environment variable.");
        }

        var line = await display.PromptAsync("Enter the code: ", cancellationToken);
        return line is { Length: > 0 } && line.Trim() is { Length: > 0 } typed
            ? typed
            : throw new CliException(ExitCodes.Usage, "No code entered.");
    }

    /// <summary>
    /// --relay, CROC_RELAY, else a relay running on this machine, else the sender's relay found on the local
    /// network; otherwise a plain instruction.
    /// </summary>
    private static async Task<Uri> FindRelayAsync(TransferDisplay display, ParseResult parse, string code, IReadOnlyList<IPEndPoint> targets, CancellationToken cancellationToken)
    {
        var channel = CodePhrase.Parse(code).Channel;
        var local = LocalRelay.LoopbackOf(parse.GetValue(CrocCli.EmbeddedUrlOption)!);
        if (await LocalRelay.AnswersAsync(local, cancellationToken))
        {
            return local;
        }

        display.Info("[grey]Looking for the sender on the local network…[/]");
        if (await DiscoveryClient.FindAsync(channel, targets, DiscoveryClient.DefaultTimeout, cancellationToken) is { } found)
        {
            display.Info($"[grey]Found the sender's relay: {Markup.Escape(found.ToString())}.[/]");
            return found;
        }

        throw new CliException(
            ExitCodes.Relay,
            $"No relay given, none is running on this machine ({local.GetLeftPart(UriPartial.Authority)}), and no sender answered on the local network. "
            + "Pass the relay the sender printed, e.g. croc receive --relay http://192.168.1.20:9009 <code>.");
    }

    /// <summary>Where the discovery query goes: every broadcast address, or the one hidden --discovery-target.</summary>
    private static IReadOnlyList<IPEndPoint> DiscoveryTargets(ParseResult parse)
    {
        if (parse.GetValue(CrocCli.DiscoveryTargetOption) is { } target)
        {
            return IPEndPoint.TryParse(target, out var endPoint) && endPoint.Port > 0
                ? [endPoint]
                : throw new CliException(ExitCodes.Usage, $"--discovery-target '{target}' is not an address:port such as 127.0.0.1:9009.");
        }

        var port = parse.GetValue(CrocCli.DiscoveryPortOption);
        return port is > 0 and <= 65535
            ? DiscoveryClient.BroadcastTargets(port)
            : throw new CliException(ExitCodes.Usage, $"--discovery-port {port} is not a port number (1-65535).");
    }

    private static async ValueTask<bool> ConfirmAsync(CliConsole console, TransferDisplay display, Settings settings, string? outputDirectory, TransferOffer offer, CancellationToken cancellationToken)
    {
        Describe(display, offer, outputDirectory);
        if (settings.Yes)
        {
            return true;
        }

        if (!console.IsInputInteractive)
        {
            // Thrown (not "false") so the message says why. Not a CrocException: the advice is for this side only,
            // the sender just hears that the transfer was declined.
            throw new CliException(
                ExitCodes.Refused,
                "Not accepting without confirmation: standard input is not a terminal, so croc cannot ask. Pass --yes to accept.");
        }

        var answer = (await display.PromptAsync("Accept? [y/N] ", cancellationToken))?.Trim();
        return answer is not null && (answer.Equals("y", StringComparison.OrdinalIgnoreCase) || answer.Equals("yes", StringComparison.OrdinalIgnoreCase));
    }

    private static void Describe(TransferDisplay display, TransferOffer offer, string? outputDirectory)
    {
        if (offer.Text is { } text)
        {
            display.Info($"Incoming text ({text.EnumerateRunes().Count()} characters).");
            return;
        }

        var folders = offer.Entries.Count(e => e.IsDirectory);
        var size = offer.Entries.Any(e => e.Length < 0) ? "size unknown until the end" : TransferDisplay.Size(offer.TotalBytes);
        var where = outputDirectory is null ? "standard output" : outputDirectory;
        display.Info(Markup.Escape($"Incoming: {offer.FileCount} file(s){(folders > 0 ? $" in {folders} folder(s)" : string.Empty)}, {size}, into {where}:"));
        foreach (var entry in offer.Entries.Where(e => !e.IsDirectory).Take(ListedEntries))
        {
            var length = entry.Length < 0 ? "?" : TransferDisplay.Size(entry.Length);
            display.Info(Markup.Escape($"  {entry.RelativePath} ({length})"));
        }

        if (offer.FileCount > ListedEntries)
        {
            display.Info(Markup.Escape($"  … and {offer.FileCount - ListedEntries} more"));
        }
    }
}

using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using Microsoft.Extensions.Logging;

namespace CrocNet.Cli;

/// <summary>The <c>croc</c> command line, runnable in-process against any streams.</summary>
public static partial class CrocCli
{
    internal static readonly Option<string?> RelayOption = new("--relay")
    {
        Description = "The relay URL, e.g. http://relay.example:9009 (default: CROC_RELAY; send: a built-in relay; receive: the relay on this machine, else the sender's, found on the local network).",
    };

    internal static readonly Option<string?> RelayPasswordOption = new("--relay-password")
    {
        Description = "The password of a private relay (default: CROC_RELAY_PASSWORD; prefer the environment variable: a flag shows in the process list). Never printed or logged.",
        HelpName = "password",
    };

    internal static readonly Option<string?> RelayCertOption = new("--relay-cert")
    {
        Description = "A certificate file (PEM or DER) to trust for an https:// relay with a self-signed or private certificate (default: CROC_RELAY_CERT).",
        HelpName = "file",
    };

    internal static readonly Option<string?> TransportOption = new("--transport")
    {
        Description = "How data connections reach the relay: auto (TCP ports when offered and reachable, else WebSocket), tcp or websocket (default: CROC_TRANSPORT, else auto).",
        HelpName = "auto|tcp|websocket",
    };

    internal static readonly Option<string> CurveOption = new("--curve")
    {
        Description = "The SPAKE2 curve to propose (the recipient follows the sender).",
        DefaultValueFactory = _ => "p256",
    };

    internal static readonly Option<bool> QuietOption = new("--quiet", "-q")
    {
        Description = "Print only errors (send still prints the code line).",
    };

    internal static readonly Option<bool> NoProgressOption = new("--no-progress")
    {
        Description = "Do not draw the progress line.",
    };

    internal static readonly Option<bool> DebugOption = new("--debug")
    {
        Description = "Log at Debug level to standard error and show stack traces.",
    };

    // Hidden: where the built-in relay binds (send) and where receive looks for one; tests move it off port 9009.
    internal static readonly Option<string> EmbeddedUrlOption = new("--embedded-url")
    {
        DefaultValueFactory = _ => LocalRelay.DefaultUrl,
        Hidden = true,
    };

    internal static readonly Option<string> EmbeddedPortsOption = new("--embedded-ports")
    {
        DefaultValueFactory = _ => LocalRelay.DefaultPorts,
        Hidden = true,
    };

    // Hidden: the UDP port of LAN discovery (send: where it answers, 0 = any free port, printed; receive: where it asks).
    internal static readonly Option<int> DiscoveryPortOption = new("--discovery-port")
    {
        DefaultValueFactory = _ => Discovery.DiscoveryDatagram.DefaultPort,
        Hidden = true,
    };

    // Hidden: receive asks this one address:port instead of broadcasting; tests keep discovery on loopback.
    internal static readonly Option<string?> DiscoveryTargetOption = new("--discovery-target")
    {
        Hidden = true,
    };

    static CrocCli() => CurveOption.AcceptOnlyFromAmong("p256", "p384", "p521", "siec");

    /// <summary>Runs the command line against the given streams (tests use this).</summary>
    /// <param name="args">The arguments, without the program name.</param>
    /// <param name="stdin">Standard input (treated as not interactive).</param>
    /// <param name="stdout">Standard output (treated as not a terminal).</param>
    /// <param name="stderr">Standard error.</param>
    /// <param name="cancellationToken">Ctrl+C: cancels the transfer; the exit code is then 130.</param>
    /// <returns>The process exit code (see <see cref="ExitCodes"/>).</returns>
    public static Task<int> RunAsync(string[] args, Stream stdin, Stream stdout, TextWriter stderr, CancellationToken cancellationToken = default) =>
        RunAsync(args, new CliConsole { Input = stdin, Output = stdout, Error = stderr }, cancellationToken);

    /// <summary>Runs the command line against <paramref name="console"/>.</summary>
    /// <param name="args">The arguments, without the program name.</param>
    /// <param name="console">The streams, terminal flags and environment.</param>
    /// <param name="cancellationToken">Ctrl+C: cancels the transfer; the exit code is then 130.</param>
    /// <returns>The process exit code (see <see cref="ExitCodes"/>).</returns>
    public static async Task<int> RunAsync(string[] args, CliConsole console, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(console);
        // Not a RootCommand: its name would be the executable's (Croc.Cli, dotnet), and help must say "croc".
        var root = new Command("croc", "croc: send files and folders end to end encrypted to another computer, with a short code. 'croc <code>' is short for 'croc receive <code>'.")
        {
            new HelpOption(), new VersionOption(),
        };
        root.Subcommands.Add(SendCommand.Create(console));
        root.Subcommands.Add(ReceiveCommand.Create(console));
        root.Subcommands.Add(RelayCommand.Create(console));
        args = WithReceiveShorthand(args, root);

        var help = root.Options.OfType<HelpOption>().Single();
        help.Action = new HelpWithEpilog((HelpAction)help.Action!);

        var configuration = new InvocationConfiguration
        {
            Output = console.OutputText,
            Error = console.Error,
            EnableDefaultExceptionHandler = false,
            // Program wires Ctrl+C to the token itself; the library then cleans up before we return.
            ProcessTerminationTimeout = null,
        };
        var exit = await root.Parse(args).InvokeAsync(configuration, cancellationToken);
        await console.OutputText.FlushAsync(CancellationToken.None);
        return exit;
    }

    /// <summary>
    /// <c>croc &lt;code&gt; [options]</c> means <c>croc receive &lt;code&gt; [options]</c>, as in croc: a first argument that is
    /// neither a command nor an option, and has the code's dash, is taken for a code.
    /// </summary>
    internal static string[] WithReceiveShorthand(string[] args, Command root) =>
        args is [var first, ..] && !first.StartsWith('-') && first.Contains('-', StringComparison.Ordinal)
        && !root.Subcommands.Any(c => c.Name == first || c.Aliases.Contains(first))
            ? ["receive", .. args]
            : args;

    /// <summary>The options every transfer command takes (added to each, so that help lists them where they apply).</summary>
    internal static void AddTransferOptions(Command command)
    {
        foreach (var option in new Option[] { RelayOption, RelayPasswordOption, RelayCertOption, TransportOption, QuietOption, NoProgressOption, DebugOption, EmbeddedUrlOption, EmbeddedPortsOption, DiscoveryPortOption, DiscoveryTargetOption })
        {
            command.Options.Add(option);
        }
    }

    /// <summary>Runs a command body, turning every failure into one <c>error:</c> line and its exit code.</summary>
    internal static async Task<int> GuardAsync(CliConsole console, ParseResult parse, Func<ILoggerFactory?, Task<int>> body, CancellationToken cancellationToken)
    {
        var debug = parse.GetValue(DebugOption);
        using var loggerFactory = debug ? CreateLoggerFactory(LogLevel.Debug, console.IsErrorTerminal) : null;
        try
        {
            return await body(loggerFactory);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Only a recipient has something to keep or not; a sender's files are untouched either way. A cancelled
            // receive places no file, but keeps what arrived of files larger than a chunk (hidden) for a later resume.
            await console.Error.WriteLineAsync(parse.CommandResult.Command.Name == "receive"
                ? "error: cancelled; no file was put in place (what arrived of large files is kept hidden, so receiving them again resumes)."
                : "error: cancelled.");
            return ExitCodes.Cancelled;
        }
        catch (Exception ex)
        {
            var message = ForCommandLine(ex);
            await console.Error.WriteLineAsync("error: " + message);
            if (debug)
            {
                await console.Error.WriteLineAsync(ex.ToString());
            }

            return ExitCodes.For(ex);
        }
        finally
        {
            await console.Error.FlushAsync(CancellationToken.None);
        }
    }

    /// <summary>
    /// One line for <paramref name="exception"/>, in the command line's words: the library's advice names its
    /// options ("allow overwriting"); here the flag is named.
    /// </summary>
    internal static string ForCommandLine(Exception exception)
    {
        var message = string.Join(" ", exception.Message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        if (exception is CrocException { Code: CrocErrorCode.FileExists })
        {
            message = message
                .Replace("allow overwriting to replace them.", "pass --overwrite to replace them.", StringComparison.Ordinal)
                .Replace("allow overwriting to replace it.", "pass --overwrite to replace it.", StringComparison.Ordinal);
        }

        if (exception is CrocException { Code: CrocErrorCode.RelayAccessDenied })
        {
            // The library's advice names its option; here the person needs the flag or the variable.
            message = message
                .Replace("Check RelayPassword with the relay's operator.", "Check CROC_RELAY_PASSWORD (or --relay-password) with the relay's operator.", StringComparison.Ordinal)
                .Replace("Set RelayPassword (WithRelayPassword).", "Set CROC_RELAY_PASSWORD (or pass --relay-password).", StringComparison.Ordinal);
        }

        // The library names its builder method; the person needs the flag or the variable.
        message = message.Replace("trust it with TrustRelayCertificate.", "trust it with --relay-cert <certificate file> (or CROC_RELAY_CERT).", StringComparison.Ordinal);

        if (exception is CrocException { Code: CrocErrorCode.RelayRefused })
        {
            message = message
                .Replace("and Transport is Tcp. Use Transport Auto or WebSocket.", "and --transport is tcp. Use --transport auto or websocket.", StringComparison.Ordinal)
                .Replace("and Transport is WebSocket. Use Transport Auto or Tcp.", "and --transport is websocket. Use --transport auto or tcp.", StringComparison.Ordinal);
        }

        if (exception is CrocException { Code: CrocErrorCode.RelayRefused } && message.Contains("(not_found)", StringComparison.Ordinal))
        {
            message += " If the relay is served under a path (e.g. /croc), give it in full: --relay http://host:9009/croc.";
        }

        // Time spans for people: "waited 30 s", not "waited 00:00:30".
        return ClockSpan().Replace(message, m => TransferDisplay.Duration(TimeSpan.Parse(m.Value, System.Globalization.CultureInfo.InvariantCulture)));
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"\b\d{2}:\d{2}:\d{2}(\.\d+)?\b")]
    private static partial System.Text.RegularExpressions.Regex ClockSpan();

    /// <summary>
    /// Console logs, all on standard error so that standard output only carries data; coloured only when standard
    /// error is a terminal (the console logger would otherwise judge by standard output, and colour a log file).
    /// The web host's own start-up chatter and its failure report are left out unless at Debug level: croc says
    /// what went wrong in its one error line.
    /// </summary>
    internal static ILoggerFactory CreateLoggerFactory(LogLevel level, bool colour) => LoggerFactory.Create(builder => builder
        .SetMinimumLevel(level)
        .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
        .AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
            o.ColorBehavior = colour ? Microsoft.Extensions.Logging.Console.LoggerColorBehavior.Enabled : Microsoft.Extensions.Logging.Console.LoggerColorBehavior.Disabled;
        })
        .AddFilter("Microsoft.AspNetCore", level <= LogLevel.Debug ? LogLevel.Information : LogLevel.Warning)
        .AddFilter("Microsoft.Hosting.Lifetime", level <= LogLevel.Debug ? LogLevel.Information : LogLevel.None)
        .AddFilter("Microsoft.Extensions.Hosting", level <= LogLevel.Debug ? LogLevel.Information : LogLevel.None));

    /// <summary>The relay from --relay or CROC_RELAY, if either is set.</summary>
    internal static string? ExplicitRelay(ParseResult parse, CliConsole console) =>
        parse.GetValue(RelayOption) is { Length: > 0 } relay ? relay
        : console.GetEnvironmentVariable("CROC_RELAY") is { Length: > 0 } env ? env
        : null;

    /// <summary>
    /// The relay password, trusted certificate and transport from their flags or environment variables, read and checked
    /// before anything goes on the network. The password is only ever handed to the library.
    /// </summary>
    internal static RelayAccess ReadRelayAccess(ParseResult parse, CliConsole console)
    {
        var password = parse.GetValue(RelayPasswordOption) is { Length: > 0 } flag ? flag
            : console.GetEnvironmentVariable("CROC_RELAY_PASSWORD") is { Length: > 0 } env ? env
            : null;

        var (certSource, certPath) = parse.GetValue(RelayCertOption) is { Length: > 0 } certFlag ? ("--relay-cert", certFlag)
            : console.GetEnvironmentVariable("CROC_RELAY_CERT") is { Length: > 0 } certEnv ? ("CROC_RELAY_CERT", certEnv)
            : (null, null);
        System.Security.Cryptography.X509Certificates.X509Certificate2? certificate = null;
        if (certPath is not null)
        {
            try
            {
                // PEM or DER; of a PEM file that also holds a key, only the certificate is read.
                certificate = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(certPath);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
            {
                throw new CliException(ExitCodes.Usage, $"{certSource} '{certPath}' cannot be read as a PEM or DER certificate ({ex.GetType().Name}: {ex.Message})");
            }
        }

        var (transportSource, transportText) = parse.GetValue(TransportOption) is { Length: > 0 } transportFlag ? ("--transport", transportFlag)
            : console.GetEnvironmentVariable("CROC_TRANSPORT") is { Length: > 0 } transportEnv ? ("CROC_TRANSPORT", transportEnv)
            : (null, "auto");
        var transport = transportText.Trim().ToLowerInvariant() switch
        {
            "auto" => CrocTransport.Auto,
            "tcp" => CrocTransport.Tcp,
            "websocket" or "ws" => CrocTransport.WebSocket,
            _ => throw new CliException(ExitCodes.Usage, $"{transportSource} '{transportText}' is not a transport: use auto, tcp or websocket."),
        };
        return new RelayAccess(password, certificate, transport);
    }

    /// <summary>How this side reaches the relay: its password (if private), a certificate to trust, the transport.</summary>
    internal sealed record RelayAccess(string? Password, System.Security.Cryptography.X509Certificates.X509Certificate2? Certificate, CrocTransport Transport)
    {
        public void ApplyTo(CrocOptionsBuilder builder)
        {
            builder.WithTransport(Transport);
            if (Password is not null)
            {
                builder.WithRelayPassword(Password);
            }

            if (Certificate is not null)
            {
                builder.TrustRelayCertificate(Certificate);
            }
        }

        // A record prints its members: this one never does, it holds the password.
        public override string ToString() => nameof(RelayAccess);
    }

    private sealed class HelpWithEpilog(HelpAction inner) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            var exit = inner.Invoke(parseResult);
            parseResult.InvocationConfiguration.Output.WriteLine(parseResult.CommandResult.Command.Name == "relay" ? ExitCodes.RelayEpilog : ExitCodes.Epilog);
            return exit;
        }
    }
}

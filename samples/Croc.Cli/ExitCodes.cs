namespace CrocNet.Cli;

/// <summary>The process exit codes scripts can rely on (also listed in <c>--help</c> and docs/cli.md).</summary>
public static class ExitCodes
{
    /// <summary>The transfer (or the relay's run) completed.</summary>
    public const int Success = 0;

    /// <summary>The command line was wrong: unknown option, missing code, nothing to send, malformed code.</summary>
    public const int Usage = 1;

    /// <summary>Key confirmation failed: the two sides used different codes.</summary>
    public const int AuthenticationFailed = 2;

    /// <summary>No relay could be reached, or the relay refused the request.</summary>
    public const int Relay = 3;

    /// <summary>The transfer failed: tampered data, a hash mismatch, a lost connection, a timeout.</summary>
    public const int TransferFailed = 4;

    /// <summary>The transfer was refused: an unsafe path, an existing file, or declined by the recipient.</summary>
    public const int Refused = 5;

    /// <summary>Cancelled with Ctrl+C.</summary>
    public const int Cancelled = 130;

    /// <summary>The help text's epilog.</summary>
    internal const string Epilog = """
        Exit codes:
          0    success
          1    usage error (bad option, missing or malformed code, nothing to send)
          2    authentication failed (the two sides used different codes)
          3    relay unreachable or refused (also: a private relay's password missing or wrong)
          4    transfer failed (tampered data, hash mismatch, connection lost, timeout)
          5    refused (unsafe path, file exists, declined by the recipient)
          130  cancelled (Ctrl+C)

        Environment:
          CROC_SECRET          the code, so it need not appear in the process list (send --code, receive [code])
          CROC_RELAY           the relay URL when --relay is not given
          CROC_RELAY_PASSWORD  a private relay's password (--relay-password; never printed)
          CROC_RELAY_CERT      a certificate file to trust for an https:// relay (--relay-cert)
          CROC_TRANSPORT       auto, tcp or websocket (--transport)
        """;

    /// <summary>The help text's epilog for <c>croc relay</c>.</summary>
    internal const string RelayEpilog = """
        Exit codes:
          0    stopped with Ctrl+C or SIGTERM
          1    usage error (bad option, environment variable or configuration file)
          3    cannot listen (an address or port is in use or not allowed)

        A private relay: set CROC_PASSWORD (prefer it to --password). An https:// --listen needs --certificate.
        """;

    /// <summary>Maps an exception to its exit code.</summary>
    internal static int For(Exception exception) => exception switch
    {
        CliException cli => cli.ExitCode,
        CrocAuthenticationException => AuthenticationFailed,
        CrocException { Code: CrocErrorCode.AuthenticationFailed } => AuthenticationFailed,
        CrocException { Code: CrocErrorCode.RelayRefused or CrocErrorCode.RelayUnreachable or CrocErrorCode.RelayUnavailable or CrocErrorCode.RelayAccessDenied } => Relay,
        CrocException { Code: CrocErrorCode.UnsafePath or CrocErrorCode.FileExists or CrocErrorCode.TransferRejected } => Refused,
        CrocException { Code: CrocErrorCode.InvalidCode or CrocErrorCode.SourceNotFound } => Usage,
        Microsoft.Extensions.Options.OptionsValidationException => Usage,
        CrocException => TransferFailed,
        HttpRequestException => Relay,
        FileNotFoundException or DirectoryNotFoundException or ArgumentException => Usage,
        _ => TransferFailed,
    };
}

/// <summary>An error the command line reports as one line with a chosen exit code.</summary>
internal sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

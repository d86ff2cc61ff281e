namespace CrocNet;

/// <summary>What went wrong, as a stable code a program can switch on.</summary>
public enum CrocErrorCode
{
    /// <summary>No more specific code applies.</summary>
    Unknown = 0,

    /// <summary>The two sides did not share the same code: key confirmation failed.</summary>
    AuthenticationFailed = 1,

    /// <summary>A peer or the relay sent something the protocol does not allow (bad point, bad frame, bad JSON).</summary>
    ProtocolViolation = 2,

    /// <summary>The relay refused a request (its error code is in <see cref="CrocRelayException.RelayCode"/>).</summary>
    RelayRefused = 3,

    /// <summary>The relay could not be reached, even after retries.</summary>
    RelayUnreachable = 4,

    /// <summary>The code phrase is malformed.</summary>
    InvalidCode = 5,

    /// <summary>Encrypted data failed authentication: it was altered, reordered, replayed or cut short.</summary>
    DataTampered = 6,

    /// <summary>A received file's end-to-end hash did not match the sender's.</summary>
    HashMismatch = 7,

    /// <summary>A received path would leave the output directory or is otherwise unsafe.</summary>
    UnsafePath = 8,

    /// <summary>A file that would be written already exists and the overwrite policy forbids replacing it.</summary>
    FileExists = 9,

    /// <summary>The other side rejected the transfer.</summary>
    TransferRejected = 10,

    /// <summary>The connection to the peer ended before the transfer completed.</summary>
    ConnectionLost = 11,

    /// <summary>A step took longer than its configured limit.</summary>
    Timeout = 12,

    /// <summary>A file or stream being sent could not be read, or changed (shrank, grew, vanished) while it was read.</summary>
    SourceChanged = 14,

    /// <summary>The recipient could not write to its output folder (disk full, permissions, a path too long for the file system).</summary>
    WriteFailed = 15,

    /// <summary>A file or folder to be sent does not exist.</summary>
    SourceNotFound = 16,

    /// <summary>The relay is private and the relay password (<see cref="CrocOptions.RelayPassword"/>) was missing or wrong.</summary>
    RelayAccessDenied = 17,

    /// <summary>The other side cancelled the transfer (its user pressed Ctrl+C, or its application cancelled).</summary>
    PeerCancelled = 18,

    /// <summary>
    /// The relay answered, but kept saying it cannot serve right now (<c>503 unavailable</c>: a scaled-out relay lost its
    /// channel store), even after retries. Transient: try again later.
    /// </summary>
    RelayUnavailable = 19,
}

/// <summary>
/// The base of every error a send or a receive fails with; each failure is one of its subclasses. Cancellation
/// stays <see cref="OperationCanceledException"/>, invalid options are an
/// <see cref="Microsoft.Extensions.Options.OptionsValidationException"/> and a misused argument an <see cref="ArgumentException"/>.
/// </summary>
public abstract class CrocException : Exception
{
    /// <summary>Creates an error with a code and a message.</summary>
    protected CrocException(CrocErrorCode code, string message, Exception? innerException = null)
        : base(message, innerException) => Code = code;

    /// <summary>What went wrong.</summary>
    public CrocErrorCode Code { get; }
}

/// <summary>The PAKE key confirmation failed: the two sides used different codes (or someone in the middle guessed wrong).</summary>
public sealed class CrocAuthenticationException : CrocException
{
    /// <summary>Creates the error.</summary>
    public CrocAuthenticationException()
        : this("Key confirmation failed: the other side used a different code. Check the code and try again.") { }

    /// <summary>Creates the error with a message.</summary>
    public CrocAuthenticationException(string message) : base(CrocErrorCode.AuthenticationFailed, message) { }

    /// <summary>Creates the error with a message and a cause.</summary>
    public CrocAuthenticationException(string message, Exception innerException)
        : base(CrocErrorCode.AuthenticationFailed, message, innerException) { }
}

/// <summary>A peer or the relay broke the protocol: a malformed point, frame, message or state.</summary>
public sealed class CrocProtocolException : CrocException
{
    /// <summary>Creates the error.</summary>
    public CrocProtocolException() : this("The peer or the relay violated the protocol.") { }

    /// <summary>Creates the error with a message.</summary>
    public CrocProtocolException(string message) : base(CrocErrorCode.ProtocolViolation, message) { }

    /// <summary>Creates the error with a message and a cause.</summary>
    public CrocProtocolException(string message, Exception innerException)
        : base(CrocErrorCode.ProtocolViolation, message, innerException) { }
}

/// <summary>The relay refused a request or could not be reached.</summary>
public sealed class CrocRelayException : CrocException
{
    /// <summary>Creates the error.</summary>
    public CrocRelayException() : this(CrocErrorCode.RelayUnreachable, "The relay could not be reached.") { }

    /// <summary>Creates the error with a message.</summary>
    public CrocRelayException(string message) : this(CrocErrorCode.RelayUnreachable, message) { }

    /// <summary>Creates the error with a message and a cause.</summary>
    public CrocRelayException(string message, Exception innerException)
        : this(CrocErrorCode.RelayUnreachable, message, innerException: innerException) { }

    /// <summary>Creates the error with every detail.</summary>
    public CrocRelayException(CrocErrorCode code, string message, string? relayCode = null, int? statusCode = null, Exception? innerException = null)
        : base(code, message, innerException)
    {
        RelayCode = relayCode;
        StatusCode = statusCode;
    }

    /// <summary>The relay's snake_case error code (for example <c>no_channel</c> or <c>ip_limit</c>), when it answered.</summary>
    public string? RelayCode { get; }

    /// <summary>The HTTP status the relay answered with, when the refusal came as an HTTP reply; otherwise <see langword="null"/>.</summary>
    public int? StatusCode { get; }
}

/// <summary>A transfer's files failed: what is to be sent is missing or unreadable, or what is received was tampered with,
/// cut short, failed its digest, has an unsafe path, would replace an existing file, or could not be written.</summary>
public sealed class CrocTransferException : CrocException
{
    /// <summary>Creates the error.</summary>
    public CrocTransferException() : this(CrocErrorCode.Unknown, "The transfer failed.") { }

    /// <summary>Creates the error with a message.</summary>
    public CrocTransferException(string message) : this(CrocErrorCode.Unknown, message) { }

    /// <summary>Creates the error with a message and a cause.</summary>
    public CrocTransferException(string message, Exception innerException)
        : this(CrocErrorCode.Unknown, message, innerException) { }

    /// <summary>Creates the error with a code, a message and an optional cause.</summary>
    public CrocTransferException(CrocErrorCode code, string message, Exception? innerException = null)
        : base(code, message, innerException) { }
}

/// <summary>A step took longer than its limit: the other side never answered, the transfer stopped moving, or the
/// recipient did not decide in time. <see cref="CrocException.Code"/> is <see cref="CrocErrorCode.Timeout"/>.</summary>
public sealed class CrocTimeoutException : CrocException
{
    /// <summary>Creates the error.</summary>
    public CrocTimeoutException() : this("A step of the transfer took longer than its limit.") { }

    /// <summary>Creates the error with a message.</summary>
    public CrocTimeoutException(string message) : base(CrocErrorCode.Timeout, message) { }

    /// <summary>Creates the error with a message and a cause.</summary>
    public CrocTimeoutException(string message, Exception innerException) : base(CrocErrorCode.Timeout, message, innerException) { }
}

/// <summary>A code is malformed (<see cref="CrocErrorCode.InvalidCode"/>); the message says what is wrong without quoting the secret.</summary>
public sealed class CrocInvalidCodeException : CrocException
{
    /// <summary>Creates the error.</summary>
    public CrocInvalidCodeException() : this("The code is malformed.") { }

    /// <summary>Creates the error with a message.</summary>
    public CrocInvalidCodeException(string message) : base(CrocErrorCode.InvalidCode, message) { }

    /// <summary>Creates the error with a message and a cause.</summary>
    public CrocInvalidCodeException(string message, Exception innerException) : base(CrocErrorCode.InvalidCode, message, innerException) { }
}

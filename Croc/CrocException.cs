namespace CrocNet;

/// <summary>What went wrong, as a stable code a program can switch on.</summary>
public enum CrocErrorCode
{
    /// <summary>No more specific code applies.</summary>
    Unknown = 0,

    /// <summary>The two sides did not share the same code: key confirmation failed.</summary>
    AuthenticationFailed,

    /// <summary>A peer or the relay sent something the protocol does not allow (bad point, bad frame, bad JSON).</summary>
    ProtocolViolation,

    /// <summary>The relay refused a request (its error code is in <see cref="CrocRelayException.RelayCode"/>).</summary>
    RelayRefused,

    /// <summary>The relay could not be reached, even after retries.</summary>
    RelayUnreachable,

    /// <summary>The code phrase is malformed.</summary>
    InvalidCode,

    /// <summary>Encrypted data failed authentication: it was altered, reordered, replayed or cut short.</summary>
    DataTampered,

    /// <summary>A received file's end-to-end hash did not match the sender's.</summary>
    HashMismatch,

    /// <summary>A received path would leave the output directory or is otherwise unsafe.</summary>
    UnsafePath,

    /// <summary>A file that would be written already exists and the overwrite policy forbids replacing it.</summary>
    FileExists,

    /// <summary>The other side rejected the transfer.</summary>
    TransferRejected,

    /// <summary>The connection to the peer ended before the transfer completed.</summary>
    ConnectionLost,

    /// <summary>A step took longer than its configured limit.</summary>
    Timeout,

    /// <summary>The options are invalid.</summary>
    InvalidOptions,

    /// <summary>A file or stream being sent could not be read, or changed (shrank, grew, vanished) while it was read.</summary>
    SourceChanged,

    /// <summary>The recipient could not write to its output folder (disk full, permissions, a path too long for the file system).</summary>
    WriteFailed,
}

/// <summary>The base of every error the library throws on purpose. Cancellation stays <see cref="OperationCanceledException"/>.</summary>
public class CrocException : Exception
{
    /// <summary>Creates an error with a code and a message.</summary>
    public CrocException(CrocErrorCode code, string message, Exception? innerException = null)
        : base(message, innerException) => Code = code;

    /// <summary>Creates an error with code <see cref="CrocErrorCode.Unknown"/>.</summary>
    public CrocException() : this(CrocErrorCode.Unknown, "A Croc operation failed.") { }

    /// <summary>Creates an error with code <see cref="CrocErrorCode.Unknown"/>.</summary>
    public CrocException(string message) : this(CrocErrorCode.Unknown, message) { }

    /// <summary>Creates an error with code <see cref="CrocErrorCode.Unknown"/>.</summary>
    public CrocException(string message, Exception innerException) : this(CrocErrorCode.Unknown, message, innerException) { }

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

    /// <summary>The HTTP status the relay answered with, when it answered.</summary>
    public int? StatusCode { get; }
}

/// <summary>A transfer failed after the handshake: tampered or truncated data, a hash mismatch, an unsafe path, an existing file.</summary>
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

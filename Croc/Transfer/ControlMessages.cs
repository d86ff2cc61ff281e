using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using CrocNet.Crypto;
using CrocNet.Files;

namespace CrocNet.Transfer;

/// <summary>Reading and writing the small JSON control frames, and mapping errors to and from the wire.</summary>
internal static class ControlMessages
{
    public static ValueTask WriteAsync<T>(ReliableLane writer, FrameType type, T message, JsonTypeInfo<T> info, CancellationToken cancellationToken) =>
        writer.WriteAsync(type, JsonSerializer.SerializeToUtf8Bytes(message, info), cancellationToken);

    public static T Parse<T>(Frame frame, JsonTypeInfo<T> info)
    {
        try
        {
            return JsonSerializer.Deserialize(frame.Payload.Span, info)
                ?? throw new CrocProtocolException($"The peer sent an empty {frame.Type} message.");
        }
        catch (JsonException ex)
        {
            throw new CrocProtocolException($"The peer sent a malformed {frame.Type} message.", ex);
        }
    }

    /// <summary>
    /// Sends a control message if the connection can still carry one (no frame was cut part-way before it), within
    /// <see cref="Protocol.ProtocolTimings.ControlSend"/>; returns whether it was written. Never throws for the
    /// connection's failure: the peer may already be gone, and our own error is what matters.
    /// </summary>
    public static async Task<bool> TrySendAsync<T>(ReliableLane writer, FrameType type, T message, JsonTypeInfo<T> info, TimeProvider time)
    {
        if (writer.Interrupted)
        {
            return false;
        }

        try
        {
            using var timeout = new CancellationTokenSource(Protocol.ProtocolTimings.ControlSend, time);
            await WriteAsync(writer, type, message, info, timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is CrocException or IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    /// <summary>
    /// Tells the peer this side cancelled, then, once that is written, lets the peer read it and leave (at most
    /// <see cref="Protocol.ProtocolTimings.CancelGrace"/>) before the caller tears the channel down.
    /// </summary>
    public static async Task TrySendCancelledAsync(ReliableLane control, bool sender, TimeProvider time)
    {
        if (await TrySendAsync(control, FrameType.Abort, CancelledBy(sender), TransferJsonContext.Default.AbortMessage, time).ConfigureAwait(false))
        {
            await control.WaitForCloseAsync(Protocol.ProtocolTimings.CancelGrace, time).ConfigureAwait(false);
        }
    }

    /// <summary>The wire code for an error we report to the peer.</summary>
    public static string ToWire(CrocErrorCode code) => code switch
    {
        CrocErrorCode.DataTampered => "data_tampered",
        CrocErrorCode.HashMismatch => "hash_mismatch",
        CrocErrorCode.UnsafePath => "unsafe_path",
        CrocErrorCode.FileExists => "file_exists",
        CrocErrorCode.TransferRejected => "declined",
        CrocErrorCode.ProtocolViolation => "protocol",
        CrocErrorCode.SourceChanged => "source_changed",
        CrocErrorCode.Timeout => "timeout",
        CrocErrorCode.WriteFailed => "write_failed",
        _ => "failed",
    };

    /// <summary>The abort a side sends when its own user or application cancelled.</summary>
    public const string Cancelled = "cancelled";

    public static AbortMessage CancelledBy(bool sender) => new()
    {
        Code = Cancelled,
        Message = sender ? "The sender cancelled the transfer." : "The recipient cancelled the transfer.",
    };

    /// <summary>Turns the peer's abort into our typed error.</summary>
    public static CrocTransferException FromAbort(AbortMessage abort, bool peerIsRecipient)
    {
        var who = peerIsRecipient ? "The recipient" : "The sender";
        if (abort.Code == Cancelled)
        {
            // Authenticated like every frame: only the peer itself can say this, never the relay.
            return new CrocTransferException(CrocErrorCode.PeerCancelled, $"{who} cancelled the transfer.");
        }

        // The peer's words are untrusted text headed for a terminal.
        var text = ReceivePathValidator.Escape(abort.Message ?? "");
        var code = abort.Code switch
        {
            "data_tampered" => CrocErrorCode.DataTampered,
            "hash_mismatch" => CrocErrorCode.HashMismatch,
            "unsafe_path" or "file_exists" or "declined" => CrocErrorCode.TransferRejected,
            "protocol" => CrocErrorCode.ProtocolViolation,
            "source_changed" => CrocErrorCode.SourceChanged,
            "timeout" => CrocErrorCode.Timeout,
            _ => CrocErrorCode.ConnectionLost,
        };
        return new CrocTransferException(code, $"{who} stopped the transfer ({ReceivePathValidator.Escape(abort.Code ?? "")}): {text}");
    }
}

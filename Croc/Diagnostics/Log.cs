using Microsoft.Extensions.Logging;

namespace CrocNet.Diagnostics;

/// <summary>
/// Every log line the client writes, with stable event ids (1xxx). Channel names are public (the relay
/// knows them); codes, secrets, keys and relay tokens never appear here.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(CrocEventIds.Joined, LogLevel.Information, "Joined relay {Relay} as {Role} on channel {Channel} (curve {Curve}).")]
    public static partial void Joined(ILogger logger, string relay, string role, string channel, string curve);

    [LoggerMessage(CrocEventIds.WaitingForPeer, LogLevel.Debug, "Waiting for the other side on channel {Channel}.")]
    public static partial void WaitingForPeer(ILogger logger, string channel);

    [LoggerMessage(CrocEventIds.KeyConfirmed, LogLevel.Information, "Key confirmed on channel {Channel}.")]
    public static partial void KeyConfirmed(ILogger logger, string channel);

    [LoggerMessage(CrocEventIds.KeyConfirmationFailed, LogLevel.Warning, "Key confirmation failed on channel {Channel}: the codes differ.")]
    public static partial void KeyConfirmationFailed(ILogger logger, string channel);

    [LoggerMessage(CrocEventIds.Connected, LogLevel.Debug, "Connected {Count} data connection(s) to {Host} for channel {Channel}.")]
    public static partial void Connected(ILogger logger, int count, string host, string channel);

    [LoggerMessage(CrocEventIds.Stapled, LogLevel.Debug, "Channel {Channel} is stapled.")]
    public static partial void Stapled(ILogger logger, string channel);

    [LoggerMessage(CrocEventIds.Completed, LogLevel.Information, "Transfer on channel {Channel} completed: {Files} file(s), {Bytes} bytes in {Elapsed}.")]
    public static partial void Completed(ILogger logger, string channel, int files, long bytes, TimeSpan elapsed);

    [LoggerMessage(CrocEventIds.Failed, LogLevel.Warning, "Transfer on channel {Channel} failed: {ErrorCode}.")]
    public static partial void Failed(ILogger logger, string channel, CrocErrorCode errorCode, Exception exception);

    [LoggerMessage(CrocEventIds.Retrying, LogLevel.Warning, "Relay request failed ({Reason}); retry {Attempt} in {Delay}.")]
    public static partial void Retrying(ILogger logger, string reason, int attempt, TimeSpan delay);

    [LoggerMessage(CrocEventIds.WaitingForChannel, LogLevel.Debug, "Channel {Channel} does not exist yet; waiting for the sender.")]
    public static partial void WaitingForChannel(ILogger logger, string channel);

    [LoggerMessage(CrocEventIds.Cancelled, LogLevel.Information, "Transfer on channel {Channel} was cancelled.")]
    public static partial void Cancelled(ILogger logger, string channel);

    [LoggerMessage(CrocEventIds.CloseFailed, LogLevel.Debug, "Closing channel {Channel} failed: {Reason}.")]
    public static partial void CloseFailed(ILogger logger, string channel, string reason);

    [LoggerMessage(CrocEventIds.TcpFallback, LogLevel.Information, "Data connection {Lane} could not reach the relay's TCP port ({Reason}); using a WebSocket.")]
    public static partial void TcpFallback(ILogger logger, int lane, string reason);

    [LoggerMessage(CrocEventIds.TransportUsed, LogLevel.Information, "Channel {Channel} uses {Tcp} TCP and {WebSocket} WebSocket data connection(s).")]
    public static partial void TransportUsed(ILogger logger, string channel, int tcp, int webSocket);

    [LoggerMessage(CrocEventIds.LaneReconnecting, LogLevel.Warning, "Data connection {Lane} on channel {Channel} broke ({Reason}); dialing it again, attempt {Attempt}.")]
    public static partial void LaneReconnecting(ILogger logger, int lane, string channel, string reason, int attempt);

    [LoggerMessage(CrocEventIds.LaneReconnected, LogLevel.Information, "Data connection {Lane} on channel {Channel} is back; {Bytes} bytes sent again.")]
    public static partial void LaneReconnected(ILogger logger, int lane, string channel, long bytes);
}

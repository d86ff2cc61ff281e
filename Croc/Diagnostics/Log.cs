using Microsoft.Extensions.Logging;

namespace CrocNet.Diagnostics;

/// <summary>
/// Every log line the client writes, with stable event ids (1xxx). Channel names are public (the relay
/// knows them); codes, secrets, keys and relay tokens never appear here.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(1001, LogLevel.Information, "Joined relay {Relay} as {Role} on channel {Channel} (curve {Curve}).")]
    public static partial void Joined(ILogger logger, string relay, string role, string channel, string curve);

    [LoggerMessage(1002, LogLevel.Debug, "Waiting for the other side on channel {Channel}.")]
    public static partial void WaitingForPeer(ILogger logger, string channel);

    [LoggerMessage(1003, LogLevel.Information, "Key confirmed on channel {Channel}.")]
    public static partial void KeyConfirmed(ILogger logger, string channel);

    [LoggerMessage(1004, LogLevel.Warning, "Key confirmation failed on channel {Channel}: the codes differ.")]
    public static partial void KeyConfirmationFailed(ILogger logger, string channel);

    [LoggerMessage(1005, LogLevel.Debug, "Connected {Count} data connection(s) to {Host} for channel {Channel}.")]
    public static partial void Connected(ILogger logger, int count, string host, string channel);

    [LoggerMessage(1006, LogLevel.Debug, "Channel {Channel} is stapled.")]
    public static partial void Stapled(ILogger logger, string channel);

    [LoggerMessage(1007, LogLevel.Information, "Transfer on channel {Channel} completed: {Files} file(s), {Bytes} bytes in {Elapsed}.")]
    public static partial void Completed(ILogger logger, string channel, int files, long bytes, TimeSpan elapsed);

    [LoggerMessage(1008, LogLevel.Warning, "Transfer on channel {Channel} failed: {ErrorCode}.")]
    public static partial void Failed(ILogger logger, string channel, CrocErrorCode errorCode, Exception exception);

    [LoggerMessage(1009, LogLevel.Warning, "Relay request failed ({Reason}); retry {Attempt} in {Delay}.")]
    public static partial void Retrying(ILogger logger, string reason, int attempt, TimeSpan delay);

    [LoggerMessage(1010, LogLevel.Debug, "Channel {Channel} does not exist yet; waiting for the sender.")]
    public static partial void WaitingForChannel(ILogger logger, string channel);

    [LoggerMessage(1011, LogLevel.Information, "Transfer on channel {Channel} was cancelled.")]
    public static partial void Cancelled(ILogger logger, string channel);

    [LoggerMessage(1012, LogLevel.Debug, "Closing channel {Channel} failed: {Reason}.")]
    public static partial void CloseFailed(ILogger logger, string channel, string reason);
}

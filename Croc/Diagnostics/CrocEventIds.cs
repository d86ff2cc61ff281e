namespace CrocNet;

/// <summary>
/// The event ids of every log line the client writes (category <c>CrocNet.Croc</c>), for filters and alerts.
/// They never change meaning; secrets (codes, keys, relay tokens) are never part of any of them.
/// </summary>
public static class CrocEventIds
{
    /// <summary>Information: Joined relay {Relay} as {Role} on channel {Channel} (curve {Curve}).</summary>
    public const int Joined = 1001;

    /// <summary>Debug: Waiting for the other side on channel {Channel}.</summary>
    public const int WaitingForPeer = 1002;

    /// <summary>Information: Key confirmed on channel {Channel}.</summary>
    public const int KeyConfirmed = 1003;

    /// <summary>Warning: Key confirmation failed on channel {Channel}: the codes differ.</summary>
    public const int KeyConfirmationFailed = 1004;

    /// <summary>Debug: Connected {Count} data connection(s) to {Host} for channel {Channel}.</summary>
    public const int Connected = 1005;

    /// <summary>Debug: Channel {Channel} is stapled.</summary>
    public const int Stapled = 1006;

    /// <summary>Information: Transfer on channel {Channel} completed: {Files} file(s), {Bytes} bytes in {Elapsed}.</summary>
    public const int Completed = 1007;

    /// <summary>Warning: Transfer on channel {Channel} failed: {ErrorCode}.</summary>
    public const int Failed = 1008;

    /// <summary>Warning: Relay request failed ({Reason}); retry {Attempt} in {Delay}.</summary>
    public const int Retrying = 1009;

    /// <summary>Debug: Channel {Channel} does not exist yet; waiting for the sender.</summary>
    public const int WaitingForChannel = 1010;

    /// <summary>Information: Transfer on channel {Channel} was cancelled.</summary>
    public const int Cancelled = 1011;

    /// <summary>Debug: Closing channel {Channel} failed: {Reason}.</summary>
    public const int CloseFailed = 1012;

    /// <summary>Information: Data connection {Lane} could not reach the relay's TCP port ({Reason}); using a WebSocket.</summary>
    public const int TcpFallback = 1013;

    /// <summary>Information: Channel {Channel} uses {Tcp} TCP and {WebSocket} WebSocket data connection(s).</summary>
    public const int TransportUsed = 1014;

    /// <summary>Warning: Data connection {Lane} on channel {Channel} broke ({Reason}); dialing it again, attempt {Attempt}.</summary>
    public const int LaneReconnecting = 1015;

    /// <summary>Information: Data connection {Lane} on channel {Channel} is back; {Bytes} bytes sent again.</summary>
    public const int LaneReconnected = 1016;
}

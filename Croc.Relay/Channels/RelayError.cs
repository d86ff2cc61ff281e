using CrocNet.Relay.Protocol;

namespace CrocNet.Relay.Channels;

/// <summary>Why the relay refused a request or a connection; the wire form is <see cref="RelayErrors.ToWire"/> (the HTTP status is the hosting layer's choice).</summary>
internal enum RelayErrorCode
{
    BadRequest,
    IpLimit,
    BadUuid,
    NoChannel,
    Occupied,
    AlreadySet,
    NotReady,
    Closed,
    Capacity,
    Duplicate,
    ReconnectLimit,
    Timeout,
    Unauthorized,
}

/// <summary>A refusal: a stable code and a sentence for people. Never contains a secret.</summary>
internal readonly record struct RelayError(RelayErrorCode Code, string Message);

internal static class RelayErrors
{
    public static string ToWire(this RelayErrorCode code) => code switch
    {
        RelayErrorCode.BadRequest => RelayWire.Codes.BadRequest,
        RelayErrorCode.IpLimit => RelayWire.Codes.IpLimit,
        RelayErrorCode.BadUuid => RelayWire.Codes.BadUuid,
        RelayErrorCode.NoChannel => RelayWire.Codes.NoChannel,
        RelayErrorCode.Occupied => RelayWire.Codes.Occupied,
        RelayErrorCode.AlreadySet => RelayWire.Codes.AlreadySet,
        RelayErrorCode.NotReady => RelayWire.Codes.NotReady,
        RelayErrorCode.Closed => RelayWire.Codes.Closed,
        RelayErrorCode.Capacity => RelayWire.Codes.Capacity,
        RelayErrorCode.Duplicate => RelayWire.Codes.Duplicate,
        RelayErrorCode.ReconnectLimit => RelayWire.Codes.ReconnectLimit,
        RelayErrorCode.Timeout => RelayWire.Codes.Timeout,
        RelayErrorCode.Unauthorized => RelayWire.Codes.Unauthorized,
        _ => throw new ArgumentOutOfRangeException(nameof(code)),
    };

    public static RelayError BadRequest(string message) => new(RelayErrorCode.BadRequest, message);

    public static readonly RelayError IpLimit = new(RelayErrorCode.IpLimit, "This channel is already used from two other IP addresses.");
    public static readonly RelayError BadUuid = new(RelayErrorCode.BadUuid, "No channel has a participant with this uuid; check the channel and uuid, or start a new transfer.");
    public static readonly RelayError NoChannel = new(RelayErrorCode.NoChannel, "There is no such channel; check the code, or let the sender start first.");
    public static readonly RelayError Closed = new(RelayErrorCode.Closed, "The channel is closed or expired; start a new transfer.");
    public static readonly RelayError Capacity = new(RelayErrorCode.Capacity, "The relay is at capacity; try again later.");
    public static readonly RelayError JoinRate = new(RelayErrorCode.Capacity, "This address joined too often in the last minute; try again later.");
    public static readonly RelayError Unauthorized = new(RelayErrorCode.Unauthorized, "This relay is private: the request did not carry its password.");
    public static readonly RelayError Occupied = new(RelayErrorCode.Occupied, "This channel already has a sender; choose another channel name.");
}

/// <summary>Either a value or a refusal.</summary>
internal readonly struct Outcome<T>
    where T : class
{
    private Outcome(T? value, RelayError error)
    {
        Value = value;
        Error = error;
    }

    public T? Value { get; }

    public RelayError Error { get; }

    public bool IsSuccess => Value is not null;

    public static implicit operator Outcome<T>(T value) => new(value, default);

    public static implicit operator Outcome<T>(RelayError error) => new(null, error);
}

using CrocNet.Relay.Channels;
using CrocNet.Relay.Protocol;

namespace CrocNet.Relay.Staple;

/// <summary>
/// The hello of a WebSocket leg: its first message, text, at most <see cref="MaxLength"/> bytes,
/// <c>{"channel":"…","uuid":"…","lane":i}</c>. Unlike a TCP leg (whose lane is its port's), it must name its lane.
/// </summary>
internal static class WebSocketHello
{
    /// <summary>The longest hello message, in bytes.</summary>
    public const int MaxLength = RelayWire.Hello.MaxLength;

    /// <summary>Parses a complete hello message for a relay of <paramref name="lanes"/> lanes. Pure: bad input is a typed refusal.</summary>
    public static (Hello? Hello, RelayError Error) Parse(ReadOnlySpan<byte> message, int lanes)
    {
        if (message.Length > MaxLength)
        {
            return (null, TooLong);
        }

        var (hello, error) = HelloReader.Parse(message);
        if (hello is null)
        {
            return (null, error);
        }

        if (hello.Lane is not { } lane)
        {
            return (null, RelayErrors.BadRequest("The WebSocket hello needs its lane: {\"channel\":…,\"uuid\":…,\"lane\":i}."));
        }

        if (lane >= lanes)
        {
            return (null, RelayErrors.BadRequest(FormattableString.Invariant($"The hello's lane must be between 0 and {lanes - 1}.")));
        }

        return (hello, default);
    }

    /// <summary>The refusal of a hello longer than <see cref="MaxLength"/>.</summary>
    public static readonly RelayError TooLong = RelayErrors.BadRequest(FormattableString.Invariant($"The hello message is longer than {MaxLength} bytes."));

    /// <summary>The refusal of a leg whose first message is binary.</summary>
    public static readonly RelayError NotText = RelayErrors.BadRequest("The first message of a WebSocket leg is its hello, as text.");

    /// <summary>The refusal of a leg that closed before its hello.</summary>
    public static readonly RelayError Ended = RelayErrors.BadRequest("The WebSocket closed before its hello.");
}

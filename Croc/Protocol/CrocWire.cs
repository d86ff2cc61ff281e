namespace CrocNet.Protocol;

/// <summary>
/// The client's half of the wire contract between client and relay (docs/protocol.md), in one place: routes,
/// roles, error codes and the data-connection hello. The relay states the same names on its side; a contract test
/// holds the two together.
/// </summary>
internal static class CrocWire
{
    /// <summary>The relative route that joins a channel.</summary>
    public const string JoinRoute = "join";

    /// <summary>The relative route that reads or changes a channel.</summary>
    public const string ChannelRoute = "channel";

    /// <summary>The relative route of WebSocket legs (protocol 1.1): <c>GET {base}/staple</c>, upgraded.</summary>
    public const string StapleRoute = "staple";

    /// <summary>The longest long-poll (<c>wait</c>) the protocol allows, in seconds.</summary>
    public const int MaxWaitSeconds = 30;

    /// <summary>The most data connections (lanes) a relay may ask a client to open.</summary>
    public const int MaxLanes = 16;

    /// <summary>The longest hello reply line a client reads.</summary>
    public const int MaxHelloReplyLength = 128;

    /// <summary>The hello's JSON field names.</summary>
    public const string HelloChannel = "channel";

    /// <inheritdoc cref="HelloChannel"/>
    public const string HelloUuid = "uuid";

    /// <summary>A WebSocket leg's lane in its hello (a TCP leg's lane is its port's index).</summary>
    public const string HelloLane = "lane";

    /// <summary>The relay password in a TCP hello, when one is set (a WebSocket leg carries it on its upgrade request).</summary>
    public const string HelloAuth = "auth";

    /// <summary>
    /// <c>true</c> in the hello of a leg dialed again after a break (it will greet): the relay then counts the lane as
    /// past its first pair even when the pair was piped elsewhere (a node that stopped), and answers its peer
    /// <c>ok again</c>. Sent only when true; a relay that does not know it ignores it.
    /// </summary>
    public const string HelloAgain = "again";

    /// <summary>The scheme of the <c>Authorization</c> header that carries the relay password.</summary>
    public const string AuthorizationScheme = "Bearer";

    /// <summary>The largest WebSocket message a leg sends (protocol 1.1); message boundaries carry no meaning.</summary>
    public const int MaxWebSocketMessage = 64 * 1024;

    /// <summary>The relay's answer that accepts a data connection.</summary>
    public const string HelloOk = "ok";

    /// <summary>
    /// The relay's answer that accepts a data connection on a lane that already had a pair: the leg is greeted as a
    /// re-dialed one (LegHello and Resume) even when this side dialed it as a first one.
    /// </summary>
    public const string HelloOkAgain = "ok again";

    /// <summary>The prefix of the relay's answer that refuses a data connection.</summary>
    public const string HelloErrorPrefix = "error ";

    /// <summary>The relay's error codes the client acts on (the full list is in docs/protocol.md).</summary>
    public static class Errors
    {
        public const string BadRequest = "bad_request";
        public const string IpLimit = "ip_limit";
        public const string BadUuid = "bad_uuid";
        public const string NoChannel = "no_channel";
        public const string Occupied = "occupied";
        public const string AlreadySet = "already_set";
        public const string NotReady = "not_ready";
        public const string Closed = "closed";

        /// <summary>
        /// A hello refused because this participant already has a leg on the lane: the relay has not yet seen the old
        /// one go (a broken first try), so another dial a moment later is taken.
        /// </summary>
        public const string Duplicate = "duplicate";

        /// <summary>A hello refused because the channel has used up its re-attachments: the lane cannot be reconnected.</summary>
        public const string ReconnectLimit = "reconnect_limit";

        /// <summary>A private relay's answer to a request or leg without the right password (HTTP 401, or a hello's <c>error</c>).</summary>
        public const string Unauthorized = "unauthorized";

        /// <summary>The relay cannot reach its channel store (a scaled-out relay's Redis): HTTP 503, transient, retried.</summary>
        public const string Unavailable = "unavailable";

        /// <summary>Every code version 1.0 of the protocol defines for the HTTP routes.</summary>
        public static readonly string[] All = [BadRequest, IpLimit, BadUuid, NoChannel, Occupied, AlreadySet, NotReady, Closed];
    }

    /// <summary>A relay error code as the protocol shapes them (snake_case, short), or null for anything else.</summary>
    public static string? SafeCode(string? code) =>
        code is { Length: > 0 and <= 32 } && code.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_') ? code : null;
}

/// <summary>Which side of a channel a participant is.</summary>
internal enum ParticipantRole
{
    Sender,
    Recipient,
}

internal static class ParticipantRoles
{
    public static string ToWire(this ParticipantRole role) => role == ParticipantRole.Sender ? "sender" : "recipient";
}

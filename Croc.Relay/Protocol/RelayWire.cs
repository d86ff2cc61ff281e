namespace CrocNet.Relay.Protocol;

/// <summary>
/// Every name the relay puts on the wire or reads from it, in one place: routes, JSON fields, role values, error
/// codes, the TCP hello and its answers, the curve list. Changing one of these is a protocol change.
/// </summary>
internal static class RelayWire
{
    /// <summary>The HTTP routes, relative to the mapped prefix.</summary>
    public static class Routes
    {
        public const string Join = "/join";
        public const string Channel = "/channel";
        public const string Staple = "/staple";
    }

    /// <summary>JSON property names of the request bodies, the state and the error body.</summary>
    public static class Fields
    {
        public const string Channel = "channel";
        public const string Uuid = "uuid";
        public const string Role = "role";
        public const string Curve = "curve";
        public const string Rev = "rev";
        public const string X = "x";
        public const string Y = "y";
        public const string HhK = "hh_k";
        public const string HK = "h_k";
        public const string Stapled = "stapled";
        public const string Reconnecting = "reconnecting";
        public const string Closed = "closed";
        public const string Close = "close";
        public const string Ports = "ports";
        public const string Host = "host";
        public const string Lanes = "lanes";
        public const string Ws = "ws";
        public const string Wait = "wait";
        public const string Since = "since";
        public const string Error = "error";
        public const string Code = "code";
    }

    /// <summary>The values of <see cref="Fields.Role"/>.</summary>
    public static class Roles
    {
        public const string Sender = "sender";
        public const string Recipient = "recipient";
    }

    /// <summary>The error codes, in HTTP error bodies and in TCP <c>error &lt;code&gt;</c> lines.</summary>
    public static class Codes
    {
        public const string BadRequest = "bad_request";
        public const string IpLimit = "ip_limit";
        public const string BadUuid = "bad_uuid";
        public const string NoChannel = "no_channel";
        public const string Occupied = "occupied";
        public const string AlreadySet = "already_set";
        public const string NotReady = "not_ready";
        public const string Closed = "closed";
        public const string Capacity = "capacity";
        public const string Duplicate = "duplicate";

        /// <summary>A hello refused because its channel has used up its re-attachments (<c>MaxReattachments</c>).</summary>
        public const string ReconnectLimit = "reconnect_limit";

        public const string Timeout = "timeout";
        public const string Unauthorized = "unauthorized";

        /// <summary>The channel store (a shared one, e.g. Redis) cannot be reached: HTTP 503, transient.</summary>
        public const string Unavailable = "unavailable";
    }

    /// <summary>The TCP hello line <c>{"channel":"…","uuid":"…"}\n</c> and the relay's answers.</summary>
    public static class Hello
    {
        public const string Channel = Fields.Channel;
        public const string Uuid = Fields.Uuid;

        /// <summary>The lane of a WebSocket leg (a TCP leg's lane is its port's index).</summary>
        public const string Lane = "lane";

        /// <summary>The relay password in a TCP hello, when the relay has one.</summary>
        public const string Auth = "auth";

        /// <summary><c>true</c> when the leg replaces one that broke (its client will greet it); optional.</summary>
        public const string Again = "again";

        /// <summary>The longest hello line, newline included.</summary>
        public const int MaxLength = 1024;

        /// <summary>The answer to an accepted hello, newline included.</summary>
        public const string Ok = "ok\n";

        /// <summary>
        /// The answer to an accepted hello whose lane already had a pair (protocol 1.1, reconnecting): the other side
        /// greets this leg as a re-dialed one, so this side must too, even if it meant a first leg.
        /// </summary>
        public const string OkAgain = "ok again\n";

        /// <summary>The prefix of a refusal line: <c>error &lt;code&gt;\n</c>.</summary>
        public const string ErrorPrefix = "error ";
    }

    /// <summary>The SPAKE2 curves a channel may use, and the default.</summary>
    public static class Curves
    {
        public const string P256 = "p256";
        public const string P384 = "p384";
        public const string P521 = "p521";
        public const string Siec = "siec";
        public const string Default = P256;

        public static readonly IReadOnlyList<string> All = [P256, P384, P521, Siec];
    }
}

using System.ComponentModel.DataAnnotations;

namespace CrocNet.Relay;

/// <summary>
/// Settings of the relay. Bindable from configuration (the <c>CrocRelay</c> section by convention); every value is
/// validated when the relay starts, and invalid settings fail start-up with one aggregated message.
/// </summary>
public sealed class CrocRelayOptions
{
    /// <summary>The name of the configuration section the samples bind: <c>CrocRelay</c>.</summary>
    public const string SectionName = "CrocRelay";

    /// <summary>
    /// The TCP ports offered for stapling. Port <c>0</c> takes an ephemeral port; the channel state always reports the
    /// ports actually bound.
    /// </summary>
    /// <value>Default <c>9010, 9011, 9012, 9013</c>.</value>
    /// <remarks>
    /// <c>AddCrocRelay(IConfiguration)</c> replaces this list when the section has a <c>Ports</c> entry (the plain
    /// configuration binder would append to it).
    /// </remarks>
    [Required]
    public IList<int> Ports { get; set; } = [9010, 9011, 9012, 9013];

    /// <summary>The local address the TCP stapling listeners bind: an IPv4 or IPv6 literal.</summary>
    /// <value>Default <c>0.0.0.0</c> (every IPv4 interface).</value>
    [Required]
    public string ListenAddress { get; set; } = "0.0.0.0";

    /// <summary>
    /// A host name or address that clients should use for the TCP ports instead of the relay URL's host; it is put in
    /// the channel state as <c>host</c>.
    /// </summary>
    /// <value>Default <see langword="null"/>: the state has no <c>host</c>, clients use the relay URL's host.</value>
    public string? AdvertisedHost { get; set; }

    /// <summary>
    /// How long a channel may live; one not closed by then expires, and its connections are cut. A transfer in flight
    /// is never cut by this clock: while one of the channel's pairs is piped and still running, expiry waits until
    /// its TCP session ends (<see cref="PipeIdleTimeout"/> ends a stalled one).
    /// </summary>
    /// <value>Default 3 hours.</value>
    public TimeSpan ChannelExpiry { get; set; } = TimeSpan.FromHours(3);

    /// <summary>
    /// How long a channel may live while its key confirmation is incomplete (<c>h_k</c> not set yet); one still
    /// unconfirmed by then expires. Once <c>h_k</c> is set, <see cref="ChannelExpiry"/> applies, counted from creation.
    /// A value longer than <see cref="ChannelExpiry"/> acts as <see cref="ChannelExpiry"/>.
    /// </summary>
    /// <value>Default 10 minutes.</value>
    public TimeSpan HandshakeExpiry { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How long a closed or expired channel is remembered so that requests get <c>410 closed</c>, not <c>404 no_channel</c>.</summary>
    /// <value>Default 1 minute.</value>
    public TimeSpan ClosedRetention { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How long a new TCP connection has to send its complete hello line.</summary>
    /// <value>Default 5 seconds.</value>
    public TimeSpan HelloTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The most accepted TCP connections that have not sent their complete hello yet, relay-wide. When they are all
    /// taken, a connection from an address that holds fewer of them than the address holding the most takes the
    /// oldest slot of that address (whose connection is closed); otherwise the new connection is closed at once,
    /// without an answer. So addresses that hold slots with connections that never speak cannot shut others out.
    /// </summary>
    /// <value>Default 1,000.</value>
    [Range(1, 1_000_000)]
    public int MaxPendingHellos { get; set; } = 1_000;

    /// <summary>
    /// The most accepted TCP connections from one IP address that have not sent their complete hello yet; more are
    /// closed at once, without an answer.
    /// </summary>
    /// <value>Default 32.</value>
    [Range(1, 1_000_000)]
    public int MaxPendingHellosPerAddress { get; set; } = 32;

    /// <summary>
    /// How long an accepted TCP connection may wait for its peer; one still unpaired by then is closed and its slot
    /// freed.
    /// </summary>
    /// <value>Default 5 minutes.</value>
    public TimeSpan WaitingTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The most channels kept at once (closed ones still remembered count too); more joins get <c>503 capacity</c>.</summary>
    /// <value>Default 10,000.</value>
    [Range(1, 10_000_000)]
    public int MaxChannels { get; set; } = 10_000;

    /// <summary>
    /// The most channels one IP address (IPv6: one <see cref="IPv6PrefixLength"/> prefix) may have created that are
    /// still stored: open ones, and closed ones until they are forgotten after <see cref="ClosedRetention"/>. More
    /// sender joins from that address get <c>503 capacity</c>, unless one of its own closed channels can be forgotten early to
    /// make room (so one transfer after another never stalls).
    /// </summary>
    /// <value>Default 16.</value>
    [Range(1, 10_000_000)]
    public int MaxChannelsPerAddress { get; set; } = 16;

    /// <summary>The largest HTTP request body accepted, in bytes; a larger one gets <c>400 bad_request</c>.</summary>
    /// <value>Default 16 KiB (16,384 bytes).</value>
    [Range(256, 1024 * 1024)]
    public int MaxBodySize { get; set; } = 16 * 1024;

    /// <summary>The most accepted TCP connections waiting for their peer, relay-wide; more get <c>error capacity</c>.</summary>
    /// <value>Default 1,000.</value>
    [Range(1, 1_000_000)]
    public int MaxWaitingConnections { get; set; } = 1_000;

    /// <summary>
    /// The most TCP connections waiting for their peer from one IP address (IPv6: one prefix); more get
    /// <c>error capacity</c>. A real pair waits for a moment, so few are needed.
    /// </summary>
    /// <value>Default 16.</value>
    [Range(1, 1_000_000)]
    public int MaxWaitingConnectionsPerAddress { get; set; } = 16;

    /// <summary>
    /// The most TCP stapling connections open at once, relay-wide, in any stage (before the hello, waiting, piped);
    /// more are closed at once, without an answer. Together with the host's HTTP connection limit this keeps the process
    /// below its file-descriptor limit, where the runtime could abort it.
    /// </summary>
    /// <value>
    /// Default <see langword="null"/>: derived from the process's soft <c>RLIMIT_NOFILE</c> (65,536 assumed where it
    /// cannot be read): the limit less a reserve of 128 plus a tenth, halved (the other half is for HTTP), between 8
    /// and 20,000.
    /// </value>
    public int? MaxConnections { get; set; }

    /// <summary>The most TCP stapling connections open at once from one IP address (IPv6: one prefix); more are closed at once.</summary>
    /// <value>Default 256 (16 channels, 4 ports, both participants behind one address: 128).</value>
    [Range(1, 1_000_000)]
    public int MaxConnectionsPerAddress { get; set; } = 256;

    /// <summary>
    /// How many leading bits of an IPv6 address name one client for every per-address limit (channels, joins,
    /// failed lookups, connections, hellos, waiting connections); <c>128</c> counts each address alone. The rule of
    /// at most two addresses per channel always compares whole addresses.
    /// </summary>
    /// <value>Default 64 (one /64, usually one customer's network).</value>
    [Range(1, 128)]
    public int IPv6PrefixLength { get; set; } = 64;

    /// <summary>
    /// The most joins one IP address (IPv6: one prefix) may make per minute: sender joins and successful recipient
    /// joins, as a token bucket (the whole number at once, refilled evenly over the minute); more get
    /// <c>503 capacity</c>.
    /// </summary>
    /// <value>Default 120.</value>
    [Range(1, 1_000_000)]
    public int MaxJoinsPerMinute { get; set; } = 120;

    /// <summary>
    /// The most failed channel lookups one IP address (IPv6: one prefix) may make per minute (a token bucket): a
    /// recipient join naming no channel, a sender join naming a taken one, a request or hello whose channel and uuid do
    /// not match. Past it, such requests are answered as failures without looking the channel up (a recipient join gets
    /// <c>404 no_channel</c>, a request <c>403 bad_uuid</c>, a hello <c>error bad_uuid</c>), so channels cannot be
    /// enumerated quickly. A recipient waiting for its sender polls about twice a second, within the default.
    /// </summary>
    /// <value>Default 120.</value>
    [Range(1, 1_000_000)]
    public int MaxFailedLookupsPerMinute { get; set; } = 120;

    /// <summary>The longest long-poll the relay holds; a larger <c>wait</c> is cut to this value (clamped, not refused).</summary>
    /// <value>Default 30 seconds.</value>
    public TimeSpan MaxWait { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a piped pair may carry no byte in either direction; then the channel's connections are cut (reset).
    /// This, not <see cref="ChannelExpiry"/>, bounds a stapled transfer: a long transfer that keeps moving is never cut.
    /// </summary>
    /// <value>Default 30 minutes.</value>
    public TimeSpan PipeIdleTimeout { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>
    /// How long a lane whose pair ended stays open for a new leg, counted from the moment it ended. When a piped pair
    /// breaks (a leg fails or resets, or the pair goes idle for <see cref="PipeIdleTimeout"/>), the relay cuts the
    /// partner leg too but keeps the channel: either participant may attach a new leg on that lane, with its uuid, and
    /// the new legs pair afresh. A lane that broke and has no pair again when this time passes has the channel reset
    /// (its legs cut, the channel closed). A lane whose pair finished cleanly may also pair again within this time;
    /// when every lane's pair has finished and none did, the channel's connections end as without reconnection.
    /// Must not exceed <see cref="ChannelExpiry"/>.
    /// </summary>
    /// <value>Default 60 seconds.</value>
    public TimeSpan ReconnectWindow { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How many re-attachments one channel may make: a re-attachment is a new pair on a lane that had one before,
    /// counted when its first leg attaches (and given back if that leg leaves before it pairs). Past it, a hello that
    /// would start another gets <c>error reconnect_limit</c>. <c>0</c> turns reconnection off: a lane pairs once, and a
    /// broken pair ends every connection of its channel.
    /// </summary>
    /// <value>Default 16.</value>
    [Range(0, 1_000_000)]
    public int MaxReattachments { get; set; } = 16;

    /// <summary>
    /// How many data connections ("lanes") each participant opens. With TCP listeners, lane <c>i</c> is served by
    /// <c>Ports[i]</c>, so this must be unset or equal to the number of ports; a relay without TCP listeners
    /// (<see cref="Ports"/> empty, WebSocket legs only) still offers this many lanes.
    /// </summary>
    /// <value>Default <see langword="null"/>: the number of ports, or 4 when there are none.</value>
    public int? Lanes { get; set; }

    /// <summary>
    /// Whether legs may also arrive as WebSockets on <c>GET {prefix}/staple</c> (the state then says <c>ws: true</c>),
    /// for hosts that only HTTP(S) reaches. A WebSocket leg pairs with a TCP leg of the same lane and vice versa.
    /// </summary>
    /// <value>Default <see langword="true"/>.</value>
    public bool WebSockets { get; set; } = true;

    /// <summary>How often the relay pings a WebSocket leg, so idle proxies do not cut a waiting leg.</summary>
    /// <value>Default 15 seconds.</value>
    public TimeSpan WebSocketKeepAliveInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// The reverse proxies and load balancers trusted to report the client's address: IP addresses or networks in
    /// CIDR form (<c>10.0.0.0/8</c>, <c>::1</c>). From these peers, and only these, the relay reads
    /// <c>X-Forwarded-For</c> or <c>Forwarded</c> on HTTP requests and WebSocket legs (from the right, stopping at the
    /// first address that is not a trusted proxy) and accepts a PROXY protocol (v1 or v2) header on the TCP ports.
    /// </summary>
    /// <value>Default empty: every peer is the client itself.</value>
    public IList<string> TrustedProxies { get; set; } = [];

    /// <summary>
    /// Whether the TCP ports sit behind a load balancer that speaks the PROXY protocol (v1 or v2, e.g. HAProxy
    /// <c>send-proxy-v2</c>, an AWS NLB with proxy protocol on). When on, every TCP connection from a
    /// <see cref="TrustedProxies"/> address must start with a PROXY header, whose source is the client; one without is
    /// refused (a receiver must not guess whether a header is there: a client reaching the ports directly from a
    /// trusted network could otherwise name any address). When off, no PROXY header is read from anyone.
    /// </summary>
    /// <value>Default <see langword="false"/>.</value>
    public bool ProxyProtocol { get; set; }

    /// <summary>
    /// Which forwarded header the trusted proxies write: <c>X-Forwarded-For</c> or RFC 7239 <c>Forwarded</c>. Only
    /// that one is read: a proxy passes on whatever other header its client sent, so reading both would let a client
    /// choose its own address.
    /// </summary>
    /// <value>Default <c>X-Forwarded-For</c> (nginx, HAProxy, cloud load balancers, Kubernetes ingresses).</value>
    public string ForwardedHeader { get; set; } = "X-Forwarded-For";

    /// <summary>
    /// A shared secret that makes this a private relay: every request and every leg must carry it
    /// (<c>Authorization: Bearer …</c> on HTTP requests and WebSocket legs, <c>"auth"</c> in a TCP hello), compared in
    /// constant time; others get <c>401 unauthorized</c> / <c>error unauthorized</c>. Never logged.
    /// </summary>
    /// <value>Default <see langword="null"/>: an open relay.</value>
    public string? Password { get; set; }

    /// <summary>The size of each buffer that copies stapled data, in bytes (two per piped pair).</summary>
    /// <value>Default 128 KiB (131,072 bytes).</value>
    [Range(64 * 1024, 16 * 1024 * 1024)]
    public int PipeBufferSize { get; set; } = 128 * 1024;
}

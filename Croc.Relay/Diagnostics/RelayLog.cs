using System.Net;
using Microsoft.Extensions.Logging;

namespace CrocNet.Relay.Diagnostics;

/// <summary>
/// Every log line of the relay, with stable event ids (documented in docs/relay.md). Channel names are public and
/// logged; uuids, hello lines, PAKE values and payload never are.
/// </summary>
internal sealed partial class RelayLog
{
    private readonly ILogger _logger;

    public RelayLog(ILogger logger) => _logger = logger;

    [LoggerMessage(EventId = 1, EventName = "ChannelOpened", Level = LogLevel.Information, Message = "Channel {Channel} opened by its sender.")]
    public partial void ChannelOpened(string channel);

    [LoggerMessage(EventId = 2, EventName = "RecipientJoined", Level = LogLevel.Information, Message = "Channel {Channel}: the recipient joined.")]
    public partial void RecipientJoined(string channel);

    [LoggerMessage(EventId = 3, EventName = "ChannelClosed", Level = LogLevel.Information, Message = "Channel {Channel} {Reason}.")]
    public partial void ChannelClosed(string channel, string reason);

    [LoggerMessage(EventId = 4, EventName = "ChannelForgotten", Level = LogLevel.Debug, Message = "Channel {Channel} forgotten after its retention time.")]
    public partial void ChannelForgotten(string channel);

    [LoggerMessage(EventId = 5, EventName = "ChannelStapled", Level = LogLevel.Information, Message = "Channel {Channel} stapled on every port.")]
    public partial void ChannelStapled(string channel);

    [LoggerMessage(EventId = 10, EventName = "RequestRefused", Level = LogLevel.Debug, Message = "HTTP {Route} refused with {Code} (channel {Channel}).")]
    public partial void RequestRefused(string route, string code, string? channel);

    [LoggerMessage(EventId = 20, EventName = "ListenerStarted", Level = LogLevel.Information, Message = "Stapling listener on {EndPoint}.")]
    public partial void ListenerStarted(EndPoint endPoint);

    [LoggerMessage(EventId = 21, EventName = "ConnectionRefused", Level = LogLevel.Debug, Message = "TCP port {Port}: connection refused with {Code} (channel {Channel}).")]
    public partial void ConnectionRefused(int port, string code, string? channel);

    [LoggerMessage(EventId = 22, EventName = "PairPiped", Level = LogLevel.Information, Message = "Channel {Channel}: port {Port} piped.")]
    public partial void PairPiped(string channel, int port);

    [LoggerMessage(EventId = 23, EventName = "PairFinished", Level = LogLevel.Information, Message = "Channel {Channel}: port {Port} finished ({SenderBytes} bytes from the sender, {RecipientBytes} from the recipient).")]
    public partial void PairFinished(string channel, int port, long senderBytes, long recipientBytes);

    [LoggerMessage(EventId = 31, EventName = "PairCut", Level = LogLevel.Debug, Message = "Channel {Channel}: port {Port} cut ({SenderBytes} bytes from the sender, {RecipientBytes} from the recipient).")]
    public partial void PairCut(string channel, int port, long senderBytes, long recipientBytes);

    [LoggerMessage(EventId = 32, EventName = "BackgroundFailed", Level = LogLevel.Warning, Message = "A channel's timer or connection callback failed.")]
    public partial void BackgroundFailed(Exception exception);

    [LoggerMessage(EventId = 24, EventName = "ConnectionsEnded", Level = LogLevel.Information, Message = "Channel {Channel}: all TCP connections ended ({Reason}).")]
    public partial void ConnectionsEnded(string channel, string reason);

    [LoggerMessage(EventId = 25, EventName = "AcceptFailed", Level = LogLevel.Warning, Message = "TCP port {Port}: accepting a connection failed.")]
    public partial void AcceptFailed(int port, Exception exception);

    [LoggerMessage(EventId = 26, EventName = "ConnectionFailed", Level = LogLevel.Debug, Message = "TCP port {Port}: a connection failed.")]
    public partial void ConnectionFailed(int port, Exception exception);

    [LoggerMessage(EventId = 27, EventName = "ListenersStopped", Level = LogLevel.Information, Message = "Stapling listeners stopped.")]
    public partial void ListenersStopped();

    [LoggerMessage(EventId = 37, EventName = "StopTimedOut", Level = LogLevel.Warning, Message = "Stapling listeners stopped before every connection had ended: the host's shutdown time ran out ({Connections} connections still open were cut).")]
    public partial void StopTimedOut(int connections);

    [LoggerMessage(EventId = 28, EventName = "WaitingDropped", Level = LogLevel.Debug, Message = "Channel {Channel}: port {Port}: a waiting connection was dropped ({Reason}); its slot is free.")]
    public partial void WaitingDropped(string channel, int port, string reason);

    [LoggerMessage(EventId = 29, EventName = "PendingHelloLimit", Level = LogLevel.Debug, Message = "TCP port {Port}: connection closed at once, too many connections without a hello ({Scope}).")]
    public partial void PendingHelloLimit(int port, string scope);

    [LoggerMessage(EventId = 30, EventName = "ConnectionLimit", Level = LogLevel.Debug, Message = "TCP port {Port}: connection closed at once, too many open connections (relay-wide or from its address).")]
    public partial void ConnectionLimit(int port);

    [LoggerMessage(EventId = 33, EventName = "PairBroken", Level = LogLevel.Information, Message = "Channel {Channel}: port {Port} broke ({Reason}); both legs cut, the lane takes new legs for {Window}.")]
    public partial void PairBroken(string channel, int port, string reason, TimeSpan window);

    [LoggerMessage(EventId = 34, EventName = "LaneReattaching", Level = LogLevel.Information, Message = "Channel {Channel}: port {Port} re-attaching (a new leg on a lane that had a pair).")]
    public partial void LaneReattaching(string channel, int port);

    [LoggerMessage(EventId = 35, EventName = "ReconnectLimit", Level = LogLevel.Information, Message = "Channel {Channel}: port {Port}: a new leg refused, the channel used its {MaxReattachments} re-attachments.")]
    public partial void ReconnectLimit(string channel, int port, int maxReattachments);

    [LoggerMessage(EventId = 36, EventName = "ChannelUnstapled", Level = LogLevel.Information, Message = "Channel {Channel} is no longer stapled on every port (a lane waits for a reconnect).")]
    public partial void ChannelUnstapled(string channel);

    [LoggerMessage(EventId = 40, EventName = "UntrustedForwardedHeaders", Level = LogLevel.Warning, Message = "Requests carry {Header} from {Peer}, which is not in TrustedProxies: the relay ignores the header and sees every client behind it as {Peer}, so transfers between two machines fail with ip_limit. If {Peer} is your reverse proxy, add it (or its network) to CrocRelayOptions.TrustedProxies (croc relay: --trusted-proxies). Logged once per address.")]
    public partial void UntrustedForwardedHeaders(string header, string peer);

    [LoggerMessage(EventId = 41, EventName = "ProxyHeaderRefused", Level = LogLevel.Debug, Message = "TCP port {Port}: the PROXY protocol header from trusted proxy {Proxy} was refused ({Reason}).")]
    public partial void ProxyHeaderRefused(int port, IPAddress proxy, Net.ProxyHeaderError reason);
}

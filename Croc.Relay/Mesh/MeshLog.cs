using Microsoft.Extensions.Logging;

namespace CrocNet.Relay.Mesh;

/// <summary>
/// The mesh's log lines, with stable event ids (50-59, documented in docs/relay.md). They name nodes, channels and
/// reasons; never the mesh secret, a proof, a uuid or a relay password.
/// </summary>
internal static partial class MeshLog
{
    [LoggerMessage(EventId = 50, EventName = "MeshListening", Level = LogLevel.Information, Message = "Node {Node}: mesh link listener on {EndPoint}, announced as {Advertised}.")]
    public static partial void Listening(ILogger logger, string node, System.Net.EndPoint endPoint, string advertised);

    [LoggerMessage(EventId = 51, EventName = "MeshLinkRefused", Level = LogLevel.Warning, Message = "Node {Node}: a mesh link from {Remote} was refused and closed: {Reason}.")]
    public static partial void LinkRefused(ILogger logger, string node, System.Net.EndPoint? remote, string reason);

    [LoggerMessage(EventId = 52, EventName = "MeshForwardFailed", Level = LogLevel.Warning, Message = "Node {Node}: forwarding a leg of channel {Channel} to owner {Owner} failed: {Reason}; the leg is refused (unavailable).")]
    public static partial void ForwardFailed(ILogger logger, string node, string channel, string? owner, string reason);

    [LoggerMessage(EventId = 53, EventName = "MeshLegForwarded", Level = LogLevel.Debug, Message = "Node {Node}: a leg of channel {Channel} (lane {Lane}) was forwarded to owner {Owner}, which answered {Answer}.")]
    public static partial void Forwarded(ILogger logger, string node, string channel, int lane, string? owner, string answer);

    [LoggerMessage(EventId = 54, EventName = "MeshLegAccepted", Level = LogLevel.Debug, Message = "Node {Node}: a leg of channel {Channel} (lane {Lane}) forwarded by node {Forwarder}.")]
    public static partial void Accepted(ILogger logger, string node, string channel, int lane, string forwarder);

    [LoggerMessage(EventId = 55, EventName = "MeshHeartbeatFailed", Level = LogLevel.Debug, Message = "Node {Node}: announcing the node in the directory failed ({Failure}); retried on the next beat.")]
    public static partial void HeartbeatFailed(ILogger logger, string node, string failure);

    [LoggerMessage(EventId = 56, EventName = "MeshRouteFailed", Level = LogLevel.Warning, Message = "Node {Node}: the owner of channel {Channel} could not be looked up ({Failure}); the leg is refused (unavailable).")]
    public static partial void RouteFailed(ILogger logger, string node, string channel, string failure);

    [LoggerMessage(EventId = 57, EventName = "MeshStopped", Level = LogLevel.Information, Message = "Node {Node}: mesh link listener stopped and the node left the directory.")]
    public static partial void Stopped(ILogger logger, string node);
}

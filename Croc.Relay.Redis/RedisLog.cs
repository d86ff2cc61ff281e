using Microsoft.Extensions.Logging;

namespace CrocNet.Relay.Redis;

/// <summary>
/// The Redis store's log lines, with stable event ids (100-109, documented in docs/relay.md). They never hold a
/// connection string, a uuid or a state.
/// </summary>
internal static partial class RedisLog
{
    [LoggerMessage(EventId = 100, EventName = "RedisUnavailable", Level = LogLevel.Warning, Message = "Node {Node}: Redis cannot be reached ({Failure}); the relay answers 503 unavailable until it returns. Running transfers go on.")]
    public static partial void Unavailable(ILogger logger, string node, string failure);

    [LoggerMessage(EventId = 101, EventName = "RedisAvailable", Level = LogLevel.Information, Message = "Node {Node}: Redis answers again; the relay serves requests.")]
    public static partial void Available(ILogger logger, string node);

    [LoggerMessage(EventId = 102, EventName = "RedisConflictsExhausted", Level = LogLevel.Warning, Message = "Channel {Channel}: {Attempts} concurrent changes in a row lost their compare-and-set; the request is answered 503 unavailable.")]
    public static partial void ConflictsExhausted(ILogger logger, string channel, int attempts);

    [LoggerMessage(EventId = 103, EventName = "RedisSubscribeFailed", Level = LogLevel.Debug, Message = "Node {Node}: subscribing to change notifications failed ({Failure}); long-polls re-read the store until it works.")]
    public static partial void SubscribeFailed(ILogger logger, string node, string failure);

    [LoggerMessage(EventId = 104, EventName = "RedisRefreshFailed", Level = LogLevel.Debug, Message = "Node {Node}: refreshing the expiry of piped channels failed ({Failure}); retried on the next round.")]
    public static partial void RefreshFailed(ILogger logger, string node, string failure);

    [LoggerMessage(EventId = 105, EventName = "RedisChannelTakenOver", Level = LogLevel.Information, Message = "Node {Node}: took over channel {Channel} from node {Former}, which left the node directory; its legs attach here now.")]
    public static partial void TakenOver(ILogger logger, string node, string channel, string former);
}

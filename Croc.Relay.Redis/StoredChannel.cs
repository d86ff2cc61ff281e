using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using CrocNet.Relay.Channels;

namespace CrocNet.Relay.Redis;

/// <summary>
/// A channel state as Redis holds it: compact JSON (source-generated) with a format number. Only what the relay needs:
/// the public values, the two uuid hashes (never a uuid), the addresses of the IP rule, the creator key, the creation
/// time and the owner node.
/// </summary>
internal sealed class StoredChannel
{
    /// <summary>The format of this record; a node reading a newer one refuses it rather than guess.</summary>
    public const int CurrentFormat = 1;

    [JsonPropertyName("f")]
    public int Format { get; set; } = CurrentFormat;

    [JsonPropertyName("id")]
    public long Id { get; set; }

    [JsonPropertyName("n")]
    public string Name { get; set; } = string.Empty;

    [JsonPropertyName("c")]
    public string Curve { get; set; } = string.Empty;

    [JsonPropertyName("r")]
    public long Rev { get; set; }

    [JsonPropertyName("sh")]
    public string SenderUuidHash { get; set; } = string.Empty;

    [JsonPropertyName("rh")]
    public string? RecipientUuidHash { get; set; }

    [JsonPropertyName("x")]
    public string? X { get; set; }

    [JsonPropertyName("y")]
    public string? Y { get; set; }

    [JsonPropertyName("hhk")]
    public string? HhK { get; set; }

    [JsonPropertyName("hk")]
    public string? HK { get; set; }

    [JsonPropertyName("st")]
    public bool Stapled { get; set; }

    /// <summary>Written only when true: a record from a node that does not know it reads as false.</summary>
    [JsonPropertyName("rc")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Reconnecting { get; set; }

    [JsonPropertyName("cl")]
    public bool Closed { get; set; }

    [JsonPropertyName("a")]
    public string[] Addresses { get; set; } = [];

    [JsonPropertyName("ck")]
    public string CreatorKey { get; set; } = string.Empty;

    [JsonPropertyName("t")]
    public DateTimeOffset Created { get; set; }

    /// <summary>The node that created the channel: where its data connections are to be piped (mesh forwarding).</summary>
    [JsonPropertyName("o")]
    public string Owner { get; set; } = string.Empty;

    public static string Serialize(ChannelState state, string owner) => JsonSerializer.Serialize(
        new StoredChannel
        {
            Id = state.Id,
            Name = state.Name,
            Curve = state.Curve,
            Rev = state.Rev,
            SenderUuidHash = state.SenderUuidHash,
            RecipientUuidHash = state.RecipientUuidHash,
            X = state.X,
            Y = state.Y,
            HhK = state.HhK,
            HK = state.HK,
            Stapled = state.Stapled,
            Reconnecting = state.Reconnecting,
            Closed = state.Closed,
            Addresses = [.. state.Addresses.Select(static a => a.ToString())],
            CreatorKey = state.CreatorKey.ToString(),
            Created = state.Created,
            Owner = owner,
        },
        RedisJsonContext.Default.StoredChannel);

    /// <summary>The state and its owner; a record this node cannot read is refused (never half-read).</summary>
    public static (ChannelState State, string Owner) Deserialize(string json)
    {
        try
        {
            return DeserializeCore(json);
        }
        catch (Exception ex) when (ex is JsonException or FormatException or ArgumentException)
        {
            // A record this node cannot read is the store failing, not the caller: 503, like Redis being away. The
            // message names no value (the record holds uuid hashes and addresses).
            throw new ChannelStoreUnavailableException($"A channel record in Redis cannot be read ({ex.GetType().Name}).", ex);
        }
    }

    private static (ChannelState State, string Owner) DeserializeCore(string json)
    {
        var stored = JsonSerializer.Deserialize(json, RedisJsonContext.Default.StoredChannel)
            ?? throw new ChannelStoreUnavailableException("A channel record in Redis is empty.");
        if (stored.Format != CurrentFormat)
        {
            throw new ChannelStoreUnavailableException(FormattableString.Invariant($"A channel record in Redis has format {stored.Format}; this node reads {CurrentFormat}."));
        }

        var state = new ChannelState
        {
            Id = stored.Id,
            Name = stored.Name,
            Curve = stored.Curve,
            Rev = stored.Rev,
            SenderUuidHash = stored.SenderUuidHash,
            RecipientUuidHash = stored.RecipientUuidHash,
            X = stored.X,
            Y = stored.Y,
            HhK = stored.HhK,
            HK = stored.HK,
            Stapled = stored.Stapled,
            Reconnecting = stored.Reconnecting,
            Closed = stored.Closed,
            Addresses = [.. stored.Addresses.Select(IPAddress.Parse)],
            CreatorKey = IPAddress.Parse(stored.CreatorKey),
            Created = stored.Created,
        };
        return (state, stored.Owner);
    }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(StoredChannel))]
internal sealed partial class RedisJsonContext : JsonSerializerContext;

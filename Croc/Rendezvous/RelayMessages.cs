using System.Text.Json.Serialization;

namespace CrocNet.Rendezvous;

internal sealed class JoinRequest
{
    public string? Channel { get; set; }

    public string? Curve { get; set; }

    public required string Role { get; set; }

    /// <summary>
    /// Our own uuid, chosen at random for this join (32 hex digits): a retry of a join whose answer was lost is then
    /// recognised by the relay and answered again, instead of refused as <c>occupied</c>.
    /// </summary>
    public string? Uuid { get; set; }
}

internal sealed class ChannelRequest
{
    public required string Channel { get; set; }

    public required string Uuid { get; set; }

    public byte[]? X { get; set; }

    public string? Curve { get; set; }

    public byte[]? Y { get; set; }

    [JsonPropertyName("hh_k")]
    public byte[]? HhK { get; set; }

    [JsonPropertyName("h_k")]
    public byte[]? HK { get; set; }

    public bool? Close { get; set; }

    public int? Wait { get; set; }

    public long? Since { get; set; }
}

/// <summary>The relay's view of a channel (and, in a join reply, this participant's uuid and role).</summary>
internal sealed class RelayState
{
    public string Channel { get; set; } = "";

    public string? Curve { get; set; }

    public long Rev { get; set; }

    public byte[]? X { get; set; }

    public byte[]? Y { get; set; }

    [JsonPropertyName("hh_k")]
    public byte[]? HhK { get; set; }

    [JsonPropertyName("h_k")]
    public byte[]? HK { get; set; }

    public bool Stapled { get; set; }

    /// <summary>
    /// A lane that was piped lost its pair and waits for new legs (protocol 1.1); absent (false) from a
    /// relay that does not say. The relay cut this side's leg on that lane: only this side can dial it again.
    /// </summary>
    public bool Reconnecting { get; set; }

    public bool Closed { get; set; }

    public int[] Ports { get; set; } = [];

    /// <summary>How many legs each participant opens (protocol 1.1); absent from a version 1 relay, where it is the port count.</summary>
    public int? Lanes { get; set; }

    /// <summary>Whether the relay takes WebSocket legs on <c>GET {base}/staple</c> (protocol 1.1); absent means no.</summary>
    public bool? Ws { get; set; }

    public string? Host { get; set; }

    public string? Uuid { get; set; }

    public string? Role { get; set; }

    /// <summary>A copy marked closed (the relay said <c>closed</c> instead of sending a state).</summary>
    public RelayState AsClosed() => new()
    {
        Channel = Channel, Curve = Curve, Rev = Rev, X = X, Y = Y, HhK = HhK, HK = HK, Stapled = false, Reconnecting = false, Closed = true, Ports = Ports, Host = Host, Lanes = Lanes, Ws = Ws,
    };
}

internal sealed class RelayError
{
    public string? Error { get; set; }

    public string? Code { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(JoinRequest))]
[JsonSerializable(typeof(ChannelRequest))]
[JsonSerializable(typeof(RelayState))]
[JsonSerializable(typeof(RelayError))]
internal sealed partial class RelayJsonContext : JsonSerializerContext;

using System.Text.Json.Serialization;
using CrocNet.Relay.Protocol;

namespace CrocNet.Relay.Hosting;

/// <summary>The body of <c>POST /join</c>.</summary>
internal sealed class JoinRequestDto
{
    [JsonPropertyName(RelayWire.Fields.Channel)]
    public string? Channel { get; set; }

    [JsonPropertyName(RelayWire.Fields.Curve)]
    public string? Curve { get; set; }

    [JsonPropertyName(RelayWire.Fields.Role)]
    public string? Role { get; set; }

    [JsonPropertyName(RelayWire.Fields.Uuid)]
    public string? Uuid { get; set; }
}

/// <summary>The body of <c>POST /channel</c>.</summary>
internal sealed class ChannelRequestDto
{
    [JsonPropertyName(RelayWire.Fields.Channel)]
    public string? Channel { get; set; }

    [JsonPropertyName(RelayWire.Fields.Uuid)]
    public string? Uuid { get; set; }

    [JsonPropertyName(RelayWire.Fields.Curve)]
    public string? Curve { get; set; }

    [JsonPropertyName(RelayWire.Fields.X)]
    public string? X { get; set; }

    [JsonPropertyName(RelayWire.Fields.Y)]
    public string? Y { get; set; }

    [JsonPropertyName(RelayWire.Fields.HhK)]
    public string? HhK { get; set; }

    [JsonPropertyName(RelayWire.Fields.HK)]
    public string? HK { get; set; }

    [JsonPropertyName(RelayWire.Fields.Close)]
    public bool? Close { get; set; }

    [JsonPropertyName(RelayWire.Fields.Wait)]
    public double? Wait { get; set; }

    [JsonPropertyName(RelayWire.Fields.Since)]
    public long? Since { get; set; }
}

/// <summary>The state object (plus <c>uuid</c> and <c>role</c> in a join reply). Absent values are written as <c>null</c>.</summary>
internal sealed class StateDto
{
    [JsonPropertyName(RelayWire.Fields.Channel)]
    public required string Channel { get; init; }

    [JsonPropertyName(RelayWire.Fields.Uuid)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Uuid { get; init; }

    [JsonPropertyName(RelayWire.Fields.Role)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Role { get; init; }

    [JsonPropertyName(RelayWire.Fields.Curve)]
    public required string Curve { get; init; }

    [JsonPropertyName(RelayWire.Fields.Rev)]
    public long Rev { get; init; }

    [JsonPropertyName(RelayWire.Fields.X)]
    public string? X { get; init; }

    [JsonPropertyName(RelayWire.Fields.Y)]
    public string? Y { get; init; }

    [JsonPropertyName(RelayWire.Fields.HhK)]
    public string? HhK { get; init; }

    [JsonPropertyName(RelayWire.Fields.HK)]
    public string? HK { get; init; }

    [JsonPropertyName(RelayWire.Fields.Stapled)]
    public bool Stapled { get; init; }

    /// <summary>A lane lost its pair and waits for new legs (protocol 1.1); written only when true.</summary>
    [JsonPropertyName(RelayWire.Fields.Reconnecting)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Reconnecting { get; init; }

    [JsonPropertyName(RelayWire.Fields.Closed)]
    public bool Closed { get; init; }

    [JsonPropertyName(RelayWire.Fields.Ports)]
    public required IReadOnlyList<int> Ports { get; init; }

    /// <summary>How many legs each participant opens (protocol 1.1); lane <c>i</c> is <c>Ports[i]</c> over TCP.</summary>
    [JsonPropertyName(RelayWire.Fields.Lanes)]
    public int Lanes { get; init; }

    /// <summary>Whether legs may also arrive as WebSockets on <c>GET {base}/staple</c> (protocol 1.1).</summary>
    [JsonPropertyName(RelayWire.Fields.Ws)]
    public bool Ws { get; init; }

    [JsonPropertyName(RelayWire.Fields.Host)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Host { get; init; }
}

/// <summary>Every error body: <c>{ "error": "&lt;sentence&gt;", "code": "&lt;snake_case&gt;" }</c>.</summary>
internal sealed class ErrorDto
{
    [JsonPropertyName(RelayWire.Fields.Error)]
    public required string Error { get; init; }

    [JsonPropertyName(RelayWire.Fields.Code)]
    public required string Code { get; init; }
}

/// <summary>Source-generated (reflection-free, trimming-safe) JSON for the wire types.</summary>
[JsonSourceGenerationOptions(
    GenerationMode = JsonSourceGenerationMode.Default,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    AllowDuplicateProperties = false,
    MaxDepth = 8)]
[JsonSerializable(typeof(JoinRequestDto))]
[JsonSerializable(typeof(ChannelRequestDto))]
[JsonSerializable(typeof(StateDto))]
[JsonSerializable(typeof(ErrorDto))]
internal sealed partial class RelayJsonContext : JsonSerializerContext;

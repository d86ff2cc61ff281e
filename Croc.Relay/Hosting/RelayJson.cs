using System.Text.Json.Serialization;

namespace CrocNet.Relay.Hosting;

/// <summary>The body of <c>POST /join</c>.</summary>
internal sealed class JoinRequestDto
{
    [JsonPropertyName("channel")]
    public string? Channel { get; set; }

    [JsonPropertyName("curve")]
    public string? Curve { get; set; }

    [JsonPropertyName("role")]
    public string? Role { get; set; }
}

/// <summary>The body of <c>POST /channel</c>.</summary>
internal sealed class ChannelRequestDto
{
    [JsonPropertyName("channel")]
    public string? Channel { get; set; }

    [JsonPropertyName("uuid")]
    public string? Uuid { get; set; }

    [JsonPropertyName("curve")]
    public string? Curve { get; set; }

    [JsonPropertyName("x")]
    public string? X { get; set; }

    [JsonPropertyName("y")]
    public string? Y { get; set; }

    [JsonPropertyName("hh_k")]
    public string? HhK { get; set; }

    [JsonPropertyName("h_k")]
    public string? HK { get; set; }

    [JsonPropertyName("close")]
    public bool? Close { get; set; }

    [JsonPropertyName("wait")]
    public double? Wait { get; set; }

    [JsonPropertyName("since")]
    public long? Since { get; set; }
}

/// <summary>The state object (plus <c>uuid</c> and <c>role</c> in a join reply). Absent values are written as <c>null</c>.</summary>
internal sealed class StateDto
{
    [JsonPropertyName("channel")]
    public required string Channel { get; init; }

    [JsonPropertyName("uuid")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Uuid { get; init; }

    [JsonPropertyName("role")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Role { get; init; }

    [JsonPropertyName("curve")]
    public required string Curve { get; init; }

    [JsonPropertyName("rev")]
    public long Rev { get; init; }

    [JsonPropertyName("x")]
    public string? X { get; init; }

    [JsonPropertyName("y")]
    public string? Y { get; init; }

    [JsonPropertyName("hh_k")]
    public string? HhK { get; init; }

    [JsonPropertyName("h_k")]
    public string? HK { get; init; }

    [JsonPropertyName("stapled")]
    public bool Stapled { get; init; }

    [JsonPropertyName("closed")]
    public bool Closed { get; init; }

    [JsonPropertyName("ports")]
    public required IReadOnlyList<int> Ports { get; init; }

    [JsonPropertyName("host")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Host { get; init; }
}

/// <summary>Every error body: <c>{ "error": "&lt;sentence&gt;", "code": "&lt;snake_case&gt;" }</c>.</summary>
internal sealed class ErrorDto
{
    [JsonPropertyName("error")]
    public required string Error { get; init; }

    [JsonPropertyName("code")]
    public required string Code { get; init; }
}

/// <summary>The TCP hello line.</summary>
internal sealed class HelloDto
{
    [JsonPropertyName("channel")]
    public string? Channel { get; set; }

    [JsonPropertyName("uuid")]
    public string? Uuid { get; set; }
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
[JsonSerializable(typeof(HelloDto))]
internal sealed partial class RelayJsonContext : JsonSerializerContext;

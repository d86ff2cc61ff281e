using System.Text.Json.Serialization;
using CrocNet.Relay.Protocol;

namespace CrocNet.Relay.Staple;

/// <summary>The hello of a leg: a TCP line, or the first text message of a WebSocket leg.</summary>
internal sealed class HelloDto
{
    [JsonPropertyName(RelayWire.Hello.Channel)]
    public string? Channel { get; set; }

    [JsonPropertyName(RelayWire.Hello.Uuid)]
    public string? Uuid { get; set; }

    [JsonPropertyName(RelayWire.Hello.Lane)]
    public int? Lane { get; set; }

    [JsonPropertyName(RelayWire.Hello.Auth)]
    public string? Auth { get; set; }

    [JsonPropertyName(RelayWire.Hello.Again)]
    public bool? Again { get; set; }
}

/// <summary>Source-generated (reflection-free) JSON for the hello line; strict like the HTTP bodies.</summary>
[JsonSourceGenerationOptions(
    GenerationMode = JsonSourceGenerationMode.Default,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    AllowDuplicateProperties = false,
    MaxDepth = 8)]
[JsonSerializable(typeof(HelloDto))]
internal sealed partial class StapleJsonContext : JsonSerializerContext;

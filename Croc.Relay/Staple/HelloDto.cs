using System.Text.Json.Serialization;
using CrocNet.Relay.Protocol;

namespace CrocNet.Relay.Staple;

/// <summary>The TCP hello line.</summary>
internal sealed class HelloDto
{
    [JsonPropertyName(RelayWire.Hello.Channel)]
    public string? Channel { get; set; }

    [JsonPropertyName(RelayWire.Hello.Uuid)]
    public string? Uuid { get; set; }
}

/// <summary>Source-generated (reflection-free) JSON for the hello line; strict like the HTTP bodies.</summary>
[JsonSourceGenerationOptions(
    GenerationMode = JsonSourceGenerationMode.Default,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    AllowDuplicateProperties = false,
    MaxDepth = 8)]
[JsonSerializable(typeof(HelloDto))]
internal sealed partial class StapleJsonContext : JsonSerializerContext;

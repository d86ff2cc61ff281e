using System.Text.Json.Serialization;

namespace CrocNet.Relay.Mesh;

/// <summary>
/// The one line a forwarding node sends after the link handshake: the client's hello (no relay password: the
/// forwarding node checked it), its lane, the client's own address (for the two-IP rule and the per-address limits on
/// the owner) and the name of the client's transport. Holds a uuid: never log it.
/// </summary>
internal sealed class ForwardedHello
{
    [JsonPropertyName("channel")]
    public string? Channel { get; set; }

    [JsonPropertyName("uuid")]
    public string? Uuid { get; set; }

    [JsonPropertyName("lane")]
    public int Lane { get; set; }

    [JsonPropertyName("address")]
    public string? Address { get; set; }

    [JsonPropertyName("transport")]
    public string? Transport { get; set; }

    /// <summary>The client's hello said <c>again</c> (the leg replaces one that broke); absent from older nodes.</summary>
    [JsonPropertyName("again")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? Again { get; set; }

    public override string ToString() => $"ForwardedHello {{ Channel = {Channel}, Lane = {Lane} }}";
}

/// <summary>Source-generated (reflection-free) JSON for the forwarded hello; strict.</summary>
[JsonSourceGenerationOptions(
    GenerationMode = JsonSourceGenerationMode.Default,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    AllowDuplicateProperties = false,
    MaxDepth = 4)]
[JsonSerializable(typeof(ForwardedHello))]
internal sealed partial class MeshJsonContext : JsonSerializerContext;

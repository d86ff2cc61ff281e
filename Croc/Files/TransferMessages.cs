using System.Text.Json.Serialization;

namespace CrocNet.Files;

/// <summary>What the sender offers: every entry, in order; entry indexes are positions in this list.</summary>
internal sealed class Manifest
{
    public int Version { get; set; } = 1;

    /// <summary>Files are cut into chunks of this size at fixed offsets; the hash is built over the chunks.</summary>
    public int ChunkSize { get; set; }

    /// <summary>The chunk digest of the file hash: <c>xxh128</c> or <c>sha256</c>.</summary>
    public string? Hash { get; set; }

    public string? Text { get; set; }

    public List<ManifestEntry> Entries { get; set; } = [];

    /// <summary>Whether the sender takes the recipient's claims of chunks it already holds (the Accept's <c>resume</c>).</summary>
    public bool? Resume { get; set; }
}

internal sealed class ManifestEntry
{
    /// <summary>The path relative to the transfer root, '/'-separated.</summary>
    public string Path { get; set; } = "";

    public bool Dir { get; set; }

    /// <summary>The length in bytes, or -1 when the sender streams data of unknown length.</summary>
    public long Size { get; set; }

    /// <summary>Last write time, Unix milliseconds; null when unknown.</summary>
    public long? Mtime { get; set; }
}

internal sealed class AcceptMessage
{
    public bool Accept { get; set; }

    public string? Code { get; set; }

    public string? Message { get; set; }

    /// <summary>Chunks the recipient already holds, for a sender whose manifest said <c>resume</c>.</summary>
    public List<ResumeClaim>? Resume { get; set; }
}

/// <summary>The chunks of one file the recipient holds from an earlier transfer, each with its keyed digest.</summary>
internal sealed class ResumeClaim
{
    public int Index { get; set; }

    /// <summary>Ascending, disjoint <c>[first chunk, count]</c> pairs.</summary>
    public List<long[]>? Ranges { get; set; }

    /// <summary>Base64 of one 16-byte keyed digest per claimed chunk, in the order of the ranges.</summary>
    public string? Macs { get; set; }
}

internal sealed class TrailerMessage
{
    public List<TrailerFile> Files { get; set; } = [];
}

internal sealed class TrailerFile
{
    public int Index { get; set; }

    public long Size { get; set; }

    public string Hash { get; set; } = "";
}

internal sealed class DoneMessage
{
    public bool Ok { get; set; }
}

internal sealed class ProgressMessage
{
    public long Bytes { get; set; }
}

internal sealed class AbortMessage
{
    public string Code { get; set; } = "aborted";

    public string Message { get; set; } = "";
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
    MaxDepth = 8)]
[JsonSerializable(typeof(Manifest))]
[JsonSerializable(typeof(ManifestEntry))]
[JsonSerializable(typeof(AcceptMessage))]
[JsonSerializable(typeof(ResumeClaim))]
[JsonSerializable(typeof(TrailerMessage))]
[JsonSerializable(typeof(DoneMessage))]
[JsonSerializable(typeof(AbortMessage))]
[JsonSerializable(typeof(ProgressMessage))]
internal sealed partial class TransferJsonContext : JsonSerializerContext;

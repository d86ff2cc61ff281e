using System.Net;

namespace CrocNet.Relay.Mesh;

/// <summary>
/// How this node takes part in the mesh of relay nodes: its id, the shared secret (as bytes; never logged), where its
/// link listener binds, and the host other nodes dial. A shared store (Redis) builds it from its own options.
/// </summary>
internal sealed class MeshSettings
{
    public required string NodeId { get; init; }

    /// <summary>The shared secret's bytes, or <see langword="null"/>: no mesh (this node must be the only one).</summary>
    public required byte[]? Secret { get; init; }

    public IPAddress ListenAddress { get; init; } = IPAddress.Loopback;

    public int Port { get; init; }

    /// <summary>The host other nodes dial; <see langword="null"/>: the listen address.</summary>
    public string? AdvertisedHost { get; init; }

    /// <summary>How often the node announces itself in the node directory.</summary>
    public TimeSpan Heartbeat { get; init; } = TimeSpan.FromSeconds(1);

    public override string ToString() => $"MeshSettings {{ NodeId = {NodeId}, Secret = {(Secret is null ? "none" : "set")} }}";
}

/// <summary>Where a leg goes: attached on this node, or forwarded one hop to the owner node at <see cref="Endpoint"/>.</summary>
internal readonly record struct MeshRoute(string? Owner, string? Endpoint)
{
    public static MeshRoute Local => default;

    public bool IsLocal => Endpoint is null;
}

/// <summary>
/// The node directory and the channels' owners, as a shared store keeps them. The in-memory store has none (one node:
/// every leg is local).
/// </summary>
internal interface IMeshDirectory
{
    /// <summary>
    /// Where the legs of channel <paramref name="channel"/> meet: <see cref="MeshRoute.Local"/> when this node owns it,
    /// when it is unknown (the attach refuses it as usual) or when its owner is gone (this node then takes it over, one
    /// compare-and-set: exactly one node wins); else the owner's link endpoint.
    /// </summary>
    ValueTask<MeshRoute> RouteAsync(string channel, CancellationToken cancellationToken);

    /// <summary>Announces this node (its link endpoint, or empty without a mesh) for a few heartbeats.</summary>
    ValueTask BeatAsync(string endpoint, CancellationToken cancellationToken);

    /// <summary>Removes this node from the directory (a clean stop): its channels can be taken over at once.</summary>
    ValueTask LeaveAsync(CancellationToken cancellationToken);

    /// <summary>The other nodes announced now.</summary>
    ValueTask<IReadOnlyList<string>> OtherNodesAsync(CancellationToken cancellationToken);
}

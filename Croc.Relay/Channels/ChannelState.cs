using System.Collections.Immutable;
using System.Net;

namespace CrocNet.Relay.Channels;

/// <summary>
/// One channel's whole shared state, immutable: what a channel store keeps. <see cref="ChannelMachine"/> computes every
/// next state from it; node-local things (TCP connections, timers) live elsewhere. A participant's uuid is a bearer
/// token, so the state keeps only its SHA-256 (<see cref="UuidHash.Of"/>): a store (or a dump of one) holds nothing a
/// caller could present. Its <see cref="ToString"/> leaves even the hashes out.
/// </summary>
internal sealed record ChannelState
{
    /// <summary>Tells apart two channels that had the same name at different times (not secret, never on the wire).</summary>
    public required long Id { get; init; }

    public required string Name { get; init; }

    public required string Curve { get; init; }

    /// <summary>Starts at 1; grows by one on every change participants can see.</summary>
    public long Rev { get; init; } = 1;

    /// <summary>The SHA-256 of the sender's uuid (<see cref="UuidHash.Of"/>), never the uuid.</summary>
    public required string SenderUuidHash { get; init; }

    /// <summary>The SHA-256 of the recipient's uuid once one joined, never the uuid.</summary>
    public string? RecipientUuidHash { get; init; }

    public string? X { get; init; }

    public string? Y { get; init; }

    public string? HhK { get; init; }

    public string? HK { get; init; }

    public bool Stapled { get; init; }

    /// <summary>
    /// A lane's pair broke (or a re-dialed leg waits on a lane whose pair ended) and no new pair formed yet: a lane
    /// was piped, and its participants are to dial that lane again. Never true with <see cref="Stapled"/>. A participant
    /// that waits for <c>stapled</c> before using its legs starts on this as well: the brief <c>stapled</c> before the
    /// break may have passed between two of its polls, and the relay has cut its leg on that lane, which only it can
    /// dial again.
    /// </summary>
    public bool Reconnecting { get; init; }

    public bool Closed { get; init; }

    /// <summary>The distinct addresses the channel was used from (at most two), recorded only by accepted requests.</summary>
    public ImmutableArray<IPAddress> Addresses { get; init; } = [];

    /// <summary>The per-address key of the creator, which the channel counts against until it is forgotten.</summary>
    public required IPAddress CreatorKey { get; init; }

    /// <summary>When the sender created it (on the relay's clock); expiry counts from here.</summary>
    public required DateTimeOffset Created { get; init; }

    /// <summary>The public part, as participants see it.</summary>
    public ChannelSnapshot ToSnapshot() => new(Name, Curve, Rev, X, Y, HhK, HK, Stapled, Closed) { Id = Id, Reconnecting = Reconnecting };

    /// <summary>No uuids, no values: safe for a log line or an assertion message.</summary>
    public override string ToString() => FormattableString.Invariant($"Channel {Name} #{Id} rev {Rev}{(Closed ? " closed" : string.Empty)}");
}

using System.Security.Cryptography;
using CrocNet.Relay.Protocol;

namespace CrocNet.Relay.Channels;

/// <summary>The two participants of a channel.</summary>
internal enum ParticipantRole
{
    Sender,
    Recipient,
}

/// <summary>What a <c>POST /channel</c> asks for besides reading the state.</summary>
internal enum ChannelAction
{
    Read,
    SetX,
    SetY,
    SetHK,
    Close,
}

/// <summary>An immutable copy of a channel's public state (byte values as canonical standard base64).</summary>
internal sealed record ChannelSnapshot(
    string Channel,
    string Curve,
    long Rev,
    string? X,
    string? Y,
    string? HhK,
    string? HK,
    bool Stapled,
    bool Closed)
{
    /// <summary>Which channel of that name this is (see <see cref="ChannelState.Id"/>); never on the wire.</summary>
    public long Id { get; init; }

    /// <summary>A lane lost its pair (or took a re-dialed leg) and waits for new legs: see <see cref="ChannelState.Reconnecting"/>.</summary>
    public bool Reconnecting { get; init; }
}

/// <summary>A validated <c>POST /join</c>.</summary>
/// <summary>
/// A validated <c>POST /join</c>. <paramref name="Uuid"/> is the participant's own uuid when its client chose one (so
/// that a retry of a join whose answer was lost is recognised, not refused as <c>occupied</c>); otherwise the relay
/// makes one.
/// </summary>
internal sealed record JoinCommand(string? Channel, string? Curve, ParticipantRole Role, string? Uuid = null)
{
    // The uuid is a bearer token: never in anything that prints the command.
    public override string ToString() => $"JoinCommand {{ Channel = {Channel}, Curve = {Curve}, Role = {Role} }}";
}

/// <summary>A validated <c>POST /channel</c>: at most one action; values already decoded and re-encoded canonically.</summary>
internal sealed record ChannelCommand(string Channel, string Uuid, ChannelAction Action, string? Curve = null, string? Value = null, string? Confirmation = null)
{
    // The uuid is a bearer token: never in anything that prints the command.
    public override string ToString() => $"ChannelCommand {{ Channel = {Channel}, Action = {Action} }}";
}

/// <summary>The answer to a successful join: the state and the new participant's bearer token.</summary>
internal sealed record JoinResult(ChannelSnapshot State, string Uuid, ParticipantRole Role)
{
    public override string ToString() => $"JoinResult {{ Channel = {State.Channel}, Role = {Role} }}";
}

/// <summary>The protocol's names and their rules.</summary>
internal static class ChannelNames
{
    /// <summary>Lowercase Crockford base32: no i, l, o, u, so generated names survive being read aloud.</summary>
    private const string Crockford = "0123456789abcdefghjkmnpqrstvwxyz";

    public const int MaxLength = 64;
    public const int GeneratedLength = 10;

    public static readonly IReadOnlyList<string> Curves = RelayWire.Curves.All;

    public const string DefaultCurve = RelayWire.Curves.Default;

    public static bool IsValid(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxLength)
        {
            return false;
        }

        foreach (var c in name)
        {
            if (c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9')))
            {
                return false;
            }
        }

        return true;
    }

    public static bool IsCurve(string? curve) => curve is not null && Curves.Contains(curve, StringComparer.Ordinal);

    /// <summary>10 characters of 5 bits each: 50 bits from the cryptographic RNG.</summary>
    public static string NewChannelName() => RandomNumberGenerator.GetString(Crockford, GeneratedLength);

    /// <summary>128 random bits as 32 lowercase hex digits.</summary>
    public static string NewUuid() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    /// <summary>Whether a uuid a client chose has the form of ours: 32 lowercase hex digits (128 bits).</summary>
    public static bool IsUuid(string? uuid) => uuid is { Length: 32 } && uuid.All(static c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f');
}

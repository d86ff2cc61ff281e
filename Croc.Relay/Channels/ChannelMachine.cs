using System.Net;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace CrocNet.Relay.Channels;

/// <summary>The result of a transition: the next state (the same instance when nothing changed), or a refusal.</summary>
/// <param name="State">The next state.</param>
/// <param name="Error">The refusal, if any (then <paramref name="State"/> is the unchanged one).</param>
/// <param name="Role">Whose request it was, where that is known.</param>
/// <param name="NowClosed">Whether this transition closed the channel (it was open before).</param>
internal readonly record struct Transition(ChannelState State, RelayError? Error = null, ParticipantRole Role = default, bool NowClosed = false)
{
    public bool Refused => Error is not null;

    public static implicit operator Transition(ChannelState state) => new(state);
}

/// <summary>
/// The channel state machine: pure functions from a state and a request to the next state or a refusal. No locks, no
/// clock, no I/O, so a store may run them under its own atomicity (a lock, a compare-and-set retry, a script) and run
/// them again on a conflict. A refused request yields no new state: it changes nothing, not even the recorded
/// addresses.
/// </summary>
internal static class ChannelMachine
{
    /// <summary>The most distinct IP addresses one channel may be used from.</summary>
    public const int MaxAddresses = 2;

    public static ChannelState Create(long id, string name, string curve, string senderUuid, IPAddress creator, IPAddress creatorKey, DateTimeOffset created)
        => new()
        {
            Id = id,
            Name = name,
            Curve = curve,
            SenderUuidHash = UuidHash.Of(senderUuid),
            Addresses = [creator],
            CreatorKey = creatorKey,
            Created = created,
        };

    /// <summary>How long the channel may live in total, from creation, given how far its handshake got.</summary>
    public static TimeSpan Lifetime(ChannelState state, CrocRelayOptions options)
        => state.HK is null && options.HandshakeExpiry < options.ChannelExpiry ? options.HandshakeExpiry : options.ChannelExpiry;

    /// <summary>A recipient joins: the IP rule, closed, then the role must be free.</summary>
    public static Transition JoinRecipient(ChannelState state, IPAddress address, string uuid)
    {
        if (Refuse(state, address) is { } refusal)
        {
            return new Transition(state, refusal);
        }

        if (state.RecipientUuidHash is { } joined)
        {
            // The recipient's own retry (its first answer was lost): answered as before, changing nothing.
            return FixedTimeEquals(UuidHash.Of(uuid), joined)
                ? new Transition(state, Role: ParticipantRole.Recipient)
                : new Transition(state, new RelayError(RelayErrorCode.Occupied, "This channel already has a recipient."));
        }

        return new Transition(Bump(Record(state, address) with { RecipientUuidHash = UuidHash.Of(uuid) }), Role: ParticipantRole.Recipient);
    }

    /// <summary>
    /// Whether a sender join naming this existing channel is its sender's own retry (the uuid its client chose matches,
    /// from an address the channel allows, the channel still open): it is answered as the first was, changing nothing.
    /// </summary>
    public static bool IsSenderRetry(ChannelState state, IPAddress address, string? uuid)
        => uuid is not null && Refuse(state, address) is null && FixedTimeEquals(UuidHash.Of(uuid), state.SenderUuidHash);

    /// <summary>Why a sender join naming this existing channel is refused (it always has a sender).</summary>
    public static RelayError RefuseSenderJoin(ChannelState state, IPAddress address) => Refuse(state, address) ?? RelayErrors.Occupied;

    /// <summary>
    /// A <c>POST /channel</c> command. The uuid is checked first, so a caller without one learns nothing about the
    /// channel (not the IP rule, not whether it is closed); then the IP rule, closed, and the action's own rules.
    /// </summary>
    public static Transition Apply(ChannelState state, ChannelCommand command, IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (RoleOf(state, command.Uuid) is not { } role)
        {
            return new Transition(state, RelayErrors.BadUuid);
        }

        // Closing twice is not a refusal: both participants close when they are done.
        if (state.Closed && command.Action == ChannelAction.Close && AddressAllowed(state, address))
        {
            return new Transition(state, Role: role);
        }

        if (Refuse(state, address) is { } refusal)
        {
            return new Transition(state, refusal);
        }

        ChannelState next;
        switch (command.Action)
        {
            case ChannelAction.Read:
                return new Transition(Record(state, address), Role: role);

            case ChannelAction.SetX:
                if (role != ParticipantRole.Sender)
                {
                    return new Transition(state, RelayErrors.BadRequest("Only the sender posts x."));
                }

                if (state.X is not null)
                {
                    // The same x again is a retry whose answer was lost: answered, changing nothing.
                    return state.X == command.Value && (command.Curve is null || command.Curve == state.Curve)
                        ? new Transition(state, Role: role)
                        : new Transition(state, new RelayError(RelayErrorCode.AlreadySet, "x is already set; it can be posted once."));
                }

                next = state with { X = command.Value, Curve = command.Curve ?? state.Curve };
                break;

            case ChannelAction.SetY:
                if (role != ParticipantRole.Recipient)
                {
                    return new Transition(state, RelayErrors.BadRequest("Only the recipient posts y and hh_k."));
                }

                if (state.Y is not null)
                {
                    return state.Y == command.Value && state.HhK == command.Confirmation
                        ? new Transition(state, Role: role)
                        : new Transition(state, new RelayError(RelayErrorCode.AlreadySet, "y is already set; it can be posted once."));
                }

                if (state.X is null)
                {
                    return new Transition(state, new RelayError(RelayErrorCode.NotReady, "y can be posted only after the sender's x; wait for x."));
                }

                next = state with { Y = command.Value, HhK = command.Confirmation };
                break;

            case ChannelAction.SetHK:
                if (role != ParticipantRole.Sender)
                {
                    return new Transition(state, RelayErrors.BadRequest("Only the sender posts h_k."));
                }

                if (state.HK is not null)
                {
                    return state.HK == command.Value
                        ? new Transition(state, Role: role)
                        : new Transition(state, new RelayError(RelayErrorCode.AlreadySet, "h_k is already set; it can be posted once."));
                }

                if (state.Y is null)
                {
                    return new Transition(state, new RelayError(RelayErrorCode.NotReady, "h_k can be posted only after the recipient's y; wait for y."));
                }

                next = state with { HK = command.Value };
                break;

            case ChannelAction.Close:
                next = state with { Closed = true };
                break;

            default:
                return new Transition(state, RelayErrors.BadRequest("Unknown action."));
        }

        return new Transition(Bump(Record(next, address)), Role: role, NowClosed: command.Action == ChannelAction.Close);
    }

    /// <summary>
    /// A data connection's hello: the uuid first (as for <see cref="Apply"/>), the IP rule, closed, then key
    /// confirmation must be complete. Accepted, the address is recorded.
    /// </summary>
    public static Transition Authorize(ChannelState state, string uuid, IPAddress address)
    {
        if (RoleOf(state, uuid) is not { } role)
        {
            return new Transition(state, RelayErrors.BadUuid);
        }

        if (Refuse(state, address) is { } refusal)
        {
            return new Transition(state, refusal);
        }

        if (state.HK is null)
        {
            return new Transition(state, new RelayError(RelayErrorCode.NotReady, "Connect only after key confirmation (h_k is set)."));
        }

        return new Transition(Record(state, address), Role: role);
    }

    /// <summary>
    /// Every lane is piped (<paramref name="stapled"/> true), or not; <paramref name="reconnecting"/> when a lane lost its
    /// pair and waits for a reconnect. Both follow, and <c>rev</c> grows when either changes. A closed channel refuses.
    /// </summary>
    public static Transition SetStapled(ChannelState state, bool stapled, bool reconnecting = false)
    {
        if (state.Closed)
        {
            return new Transition(state, RelayErrors.Closed);
        }

        // Reconnecting means some lane has no pair: never both.
        reconnecting &= !stapled;
        return state.Stapled == stapled && state.Reconnecting == reconnecting
            ? new Transition(state)
            : Bump(state with { Stapled = stapled, Reconnecting = reconnecting });
    }

    /// <summary>Closes (an expiry, a shutdown); a closed channel refuses, changing nothing.</summary>
    public static Transition Close(ChannelState state)
        => state.Closed ? new Transition(state, RelayErrors.Closed) : new Transition(Bump(state with { Closed = true }), NowClosed: true);

    /// <summary>
    /// Which participant <paramref name="uuid"/> is: its hash compared with each stored one in constant time;
    /// <see langword="null"/> for neither.
    /// </summary>
    public static ParticipantRole? RoleOf(ChannelState state, string uuid)
    {
        var hash = UuidHash.Of(uuid);
        if (FixedTimeEquals(hash, state.SenderUuidHash))
        {
            return ParticipantRole.Sender;
        }

        return state.RecipientUuidHash is { } recipient && FixedTimeEquals(hash, recipient) ? ParticipantRole.Recipient : null;
    }

    /// <summary>The checks every request naming the channel passes: the IP rule, then closed.</summary>
    private static RelayError? Refuse(ChannelState state, IPAddress address)
    {
        if (!AddressAllowed(state, address))
        {
            return RelayErrors.IpLimit;
        }

        return state.Closed ? RelayErrors.Closed : null;
    }

    private static bool AddressAllowed(ChannelState state, IPAddress address)
        => state.Addresses.Length < MaxAddresses || state.Addresses.Contains(address);

    private static ChannelState Record(ChannelState state, IPAddress address)
        => state.Addresses.Contains(address) ? state : state with { Addresses = state.Addresses.Add(address) };

    private static ChannelState Bump(ChannelState state) => state with { Rev = state.Rev + 1 };

    private static bool FixedTimeEquals(string a, string b)
        => CryptographicOperations.FixedTimeEquals(MemoryMarshal.AsBytes(a.AsSpan()), MemoryMarshal.AsBytes(b.AsSpan()));
}

/// <summary>How a channel state keeps a participant's uuid: SHA-256 of its UTF-8 bytes, as 64 lowercase hex digits.</summary>
internal static class UuidHash
{
    public static string Of(string uuid)
    {
        ArgumentNullException.ThrowIfNull(uuid);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(uuid), hash);
        return Convert.ToHexStringLower(hash);
    }
}

using System.Net;
using CrocNet.Protocol;
using CrocNet.Rendezvous;

namespace CrocNet.Transport;

/// <summary>Where a channel's legs go: the relay, its lanes, and how each lane can be reached.</summary>
/// <param name="Relay">The relay's HTTP base address, ending in <c>/</c> (a WebSocket leg goes to <c>{Relay}staple</c>).</param>
/// <param name="Host">The host the TCP ports live on: the relay URL's, unless the relay advertises another; an IPv6
/// literal without brackets.</param>
/// <param name="Ports">The TCP port of each lane, in lane order; empty when the relay runs no TCP listeners.</param>
internal sealed record StapleTarget(Uri Relay, string Host, IReadOnlyList<int> Ports)
{
    /// <summary>How many legs each participant opens; a version 1 relay does not say, and has one port per lane.</summary>
    public int Lanes { get; init; } = Ports.Count;

    /// <summary>Whether the relay takes WebSocket legs (protocol 1.1); a version 1 relay does not.</summary>
    public bool WebSockets { get; init; }

    /// <summary>The target a relay state describes.</summary>
    public static StapleTarget From(Uri relay, RelayState state)
    {
        // An IPv6 relay URL's host comes without brackets (and with its scope, if any); a name as punycode.
        var host = !string.IsNullOrWhiteSpace(state.Host) ? state.Host
            : relay.HostNameType == UriHostNameType.IPv6 ? relay.DnsSafeHost : relay.IdnHost;
        return new StapleTarget(relay, UnbracketHost(host), state.Ports)
        {
            Lanes = state.Lanes ?? state.Ports.Length,
            WebSockets = state.Ws ?? false,
        };
    }

    /// <summary>Checks what a relay may not choose freely: the lane count and the ports; a typed protocol error otherwise.</summary>
    public void Validate()
    {
        if (Lanes is < 1 or > CrocWire.MaxLanes)
        {
            // Each lane costs a connection, socket buffers and a frame buffer: a relay does not get to choose thousands.
            throw new CrocProtocolException($"The relay asked for {Lanes} data connections; between 1 and {CrocWire.MaxLanes} are allowed.");
        }

        if (Ports.Count != 0 && Ports.Count != Lanes)
        {
            throw new CrocProtocolException($"The relay offered {Ports.Count} data ports for {Lanes} lanes; it must offer one per lane, or none.");
        }

        foreach (var port in Ports)
        {
            if (port is <= 0 or > 65535)
            {
                throw new CrocProtocolException($"The relay offered an invalid port {port}.");
            }
        }

        if (Ports.Count == 0 && !WebSockets)
        {
            throw new CrocProtocolException("The relay offers neither TCP data ports nor WebSocket legs: no data connection can be opened.");
        }
    }

    /// <summary>A URL's host for a socket connect: <c>[::1]</c> is the address <c>::1</c>, which DNS would not resolve.</summary>
    internal static string UnbracketHost(string host) =>
        host.Length > 2 && host[0] == '[' && host[^1] == ']' && IPAddress.TryParse(host.AsSpan(1, host.Length - 2), out _) ? host[1..^1] : host;
}

/// <summary>Who a leg belongs to: the channel, the participant's bearer token and the relay password (both secrets).</summary>
internal sealed record StapleTicket(string Channel, string Uuid, string? RelayPassword = null)
{
    /// <summary>The leg replaces one that broke: its hello says so (<see cref="CrocWire.HelloAgain"/>).</summary>
    public bool Again { get; init; }

    // The uuid and the password are secrets; keep them out of anything that prints the record.
    public override string ToString() => $"StapleTicket {{ Channel = {Channel} }}";
}

/// <summary>
/// Opens one participant's leg on one lane and completes the protocol's hello on it; the stream returned carries the
/// peer's bytes and nothing else: TCP (<see cref="TcpStapleTransport"/>), WebSocket (<see cref="WebSocketStapleTransport"/>),
/// or a choice between them (<see cref="ChoosingStapleTransport"/>).
/// </summary>
internal interface IStapleTransport
{
    /// <summary>Opens lane <paramref name="lane"/>. A refusal is a <see cref="CrocRelayException"/>; a network fault an
    /// <see cref="System.Net.Sockets.SocketException"/> or <see cref="IOException"/> (the caller retries those).</summary>
    ValueTask<Stream> ConnectAsync(StapleTarget target, int lane, StapleTicket ticket, CancellationToken cancellationToken);

    /// <summary>Opens lane <paramref name="lane"/> again after its leg <paramref name="previous"/> broke, over the same kind
    /// of leg where the transport chose one; errors as for <see cref="ConnectAsync"/>.</summary>
    ValueTask<Stream> ReconnectAsync(StapleTarget target, int lane, StapleTicket ticket, Stream previous, CancellationToken cancellationToken) =>
        ConnectAsync(target, lane, ticket, cancellationToken);
}

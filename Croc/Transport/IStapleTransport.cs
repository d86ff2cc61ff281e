namespace CrocNet.Transport;

/// <summary>Where a channel's data connections go: the relay's host and the TCP port of each lane.</summary>
/// <param name="Relay">The relay's HTTP base address (a WebSocket transport derives its URL from it).</param>
/// <param name="Host">The host the TCP ports live on: the relay URL's, unless the relay advertises another.</param>
/// <param name="Ports">The TCP port of each lane, in lane order.</param>
internal sealed record StapleTarget(Uri Relay, string Host, IReadOnlyList<int> Ports)
{
    public int Lanes => Ports.Count;
}

/// <summary>Who a data connection belongs to: the channel and the participant's bearer token (a secret).</summary>
internal sealed record StapleTicket(string Channel, string Uuid)
{
    // The uuid is a secret; keep it out of anything that prints the record.
    public override string ToString() => $"StapleTicket {{ Channel = {Channel} }}";
}

/// <summary>
/// Opens one participant's connection on one lane and completes the protocol's hello on it; the stream returned
/// carries the peer's bytes and nothing else. TCP today; a WebSocket transport plugs in here.
/// </summary>
internal interface IStapleTransport
{
    /// <summary>Opens lane <paramref name="lane"/>. A refusal is a <see cref="CrocRelayException"/>; a network fault an
    /// <see cref="System.Net.Sockets.SocketException"/> or <see cref="IOException"/> (the caller retries those).</summary>
    ValueTask<Stream> ConnectAsync(StapleTarget target, int lane, StapleTicket ticket, CancellationToken cancellationToken);
}

namespace CrocNet.Relay.Channels;

/// <summary>A participant's data connection as the relay core sees it: something it can cut.</summary>
internal interface IStapleLink
{
    /// <summary>Ends the connection at once (both directions). Safe to call more than once, from any thread.</summary>
    void Abort();
}

/// <summary>Names one channel: its name and which channel of that name it is.</summary>
internal readonly record struct ChannelRef(string Name, long Id);

/// <summary>The result of attaching a data connection to a channel's lane.</summary>
/// <param name="Channel">The channel the connection now belongs to.</param>
/// <param name="Lane">The lane (TCP: the index of its port in <c>ports</c>).</param>
/// <param name="Role">Whose connection it is.</param>
/// <param name="Peer">The other participant's connection on the same lane, when it was already waiting: pipe the two.</param>
/// <param name="Generation">Which of the lane's pairs the connection belongs to (1 for the first; a reconnected lane counts on).</param>
internal sealed record StapleAttachment(ChannelRef Channel, int Lane, ParticipantRole Role, IStapleLink? Peer, int Generation = 1);

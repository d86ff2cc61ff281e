namespace CrocNet.Relay.Channels;

/// <summary>A participant's TCP connection as the channel sees it: something it can cut.</summary>
internal interface IStapleLink
{
    /// <summary>Ends the connection at once (both directions). Safe to call more than once, from any thread.</summary>
    void Abort();
}

/// <summary>The result of attaching a TCP connection to a channel.</summary>
/// <param name="Channel">The channel the connection now belongs to.</param>
/// <param name="Role">Whose connection it is.</param>
/// <param name="Peer">The other participant's connection on the same port, when it was already waiting: pipe the two.</param>
internal sealed record StapleAttachment(Channel Channel, ParticipantRole Role, IStapleLink? Peer);

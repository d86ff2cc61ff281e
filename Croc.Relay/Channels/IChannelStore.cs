namespace CrocNet.Relay.Channels;

/// <summary>
/// Where channel states live. The in-memory store serves one node; a shared store (Redis, registered through
/// <c>ICrocRelayBuilder</c>) lets several relay nodes serve the same channels. Every change goes through
/// <see cref="UpdateAsync"/> with a pure transition, so a store can make it atomic its own way. A store that cannot be
/// reached throws <see cref="ChannelStoreUnavailableException"/> (quickly: its commands have a bounded timeout), which
/// the routes answer <c>503 unavailable</c>.
/// </summary>
internal interface IChannelStore
{
    /// <summary>
    /// A new channel id, unique among the channels this store holds (a shared store hands out ids unique across nodes).
    /// </summary>
    ValueTask<long> NewIdAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult(Random.Shared.NextInt64(1, long.MaxValue));

    /// <summary>The current state of the channel named <paramref name="name"/>, or <see langword="null"/>.</summary>
    ValueTask<ChannelState?> GetAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Stores a new channel unless its name is taken; returns whether it was stored.</summary>
    ValueTask<bool> TryAddAsync(ChannelState state, CancellationToken cancellationToken = default);

    /// <summary>
    /// Applies <paramref name="transition"/> to the current state of channel <paramref name="id"/> named
    /// <paramref name="name"/> atomically and stores its result unless it refused. The function must be pure: a store may
    /// run it more than once (an optimistic store retries it on a conflict). Returns <see langword="null"/> when no such
    /// channel is stored (a name forgotten and taken again is another channel).
    /// </summary>
    ValueTask<Transition?> UpdateAsync(string name, long id, Func<ChannelState, Transition> transition, CancellationToken cancellationToken = default);

    /// <summary>
    /// Waits until channel <paramref name="id"/>'s <c>rev</c> is greater than <paramref name="since"/>, it closes,
    /// <paramref name="timeout"/> passes on <paramref name="timeProvider"/>'s clock or <paramref name="cancellationToken"/>
    /// fires; returns its state then (<see langword="null"/> when it is no longer stored). Never throws on timeout or cancel.
    /// </summary>
    ValueTask<ChannelState?> WaitAsync(string name, long id, long since, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken);

    /// <summary>Forgets channel <paramref name="id"/>; returns whether it was stored.</summary>
    ValueTask<bool> RemoveAsync(string name, long id, CancellationToken cancellationToken = default);

    /// <summary>
    /// Whether other relay nodes share this store: then a stopping node leaves the channels to them (it closes none)
    /// and only cuts its own connections.
    /// </summary>
    bool IsShared => false;

    /// <summary>Every stored state (relay shutdown, diagnostics).</summary>
    IAsyncEnumerable<ChannelState> AllAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Checks that the store answers (the health check asks); throws when it cannot be reached. A shared store makes one
    /// cheap round trip; the in-memory one is always reachable (so is a store that does not say otherwise).
    /// </summary>
    ValueTask ProbeAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;
}

/// <summary>
/// The channel store could not be reached or did not answer in time (a shared store's server is down, say). Transient:
/// the routes answer <c>503 unavailable</c> and the client retries. Its message never holds a connection string.
/// </summary>
internal sealed class ChannelStoreUnavailableException : IOException
{
    public ChannelStoreUnavailableException()
        : this("The channel store cannot be reached.")
    {
    }

    public ChannelStoreUnavailableException(string message)
        : base(message)
    {
    }

    public ChannelStoreUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

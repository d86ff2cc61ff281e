using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace CrocNet.Relay.Channels;

/// <summary>
/// The default store: channel states in this process. Each channel has its own lock; a change swaps the channel's
/// completion source, so long-polls cost nothing while idle. Every call completes synchronously.
/// </summary>
internal sealed class InMemoryChannelStore : IChannelStore
{
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    public ValueTask<ChannelState?> GetAsync(string name, CancellationToken cancellationToken = default)
        => ValueTask.FromResult(_entries.TryGetValue(name, out var entry) ? entry.State : null);

    public ValueTask<bool> TryAddAsync(ChannelState state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        return ValueTask.FromResult(_entries.TryAdd(state.Name, new Entry(state)));
    }

    public ValueTask<Transition?> UpdateAsync(string name, long id, Func<ChannelState, Transition> transition, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transition);
        if (!_entries.TryGetValue(name, out var entry))
        {
            return ValueTask.FromResult<Transition?>(null);
        }

        TaskCompletionSource? changed = null;
        Transition result;
        lock (entry.Lock)
        {
            if (entry.State.Id != id)
            {
                return ValueTask.FromResult<Transition?>(null);
            }

            result = transition(entry.State);
            if (!result.Refused && !ReferenceEquals(result.State, entry.State))
            {
                var rose = result.State.Rev != entry.State.Rev;
                entry.State = result.State;
                if (rose)
                {
                    changed = entry.Changed;
                    entry.Changed = Entry.NewSignal();
                }
            }
        }

        changed?.TrySetResult();
        return ValueTask.FromResult<Transition?>(result);
    }

    public async ValueTask<ChannelState?> WaitAsync(string name, long id, long since, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        if (!_entries.TryGetValue(name, out var entry))
        {
            return null;
        }

        Task changed;
        lock (entry.Lock)
        {
            if (entry.State.Id != id)
            {
                return null;
            }

            if (entry.State.Rev > since || entry.State.Closed)
            {
                return entry.State;
            }

            changed = entry.Changed.Task;
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var expired = Task.Delay(timeout, timeProvider, stop.Token);
        try
        {
            while (true)
            {
                if (await Task.WhenAny(changed, expired).ConfigureAwait(false) == expired)
                {
                    return entry.State;
                }

                lock (entry.Lock)
                {
                    if (entry.State.Rev > since || entry.State.Closed)
                    {
                        return entry.State;
                    }

                    changed = entry.Changed.Task;
                }
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
        }
    }

    public ValueTask<bool> RemoveAsync(string name, long id, CancellationToken cancellationToken = default)
    {
        if (_entries.TryGetValue(name, out var entry) && entry.State.Id == id)
        {
            return ValueTask.FromResult(_entries.TryRemove(new KeyValuePair<string, Entry>(name, entry)));
        }

        return ValueTask.FromResult(false);
    }

    public ValueTask ProbeAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public async IAsyncEnumerable<ChannelState> AllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        foreach (var entry in _entries.Values)
        {
            yield return entry.State;
        }
    }

    private sealed class Entry(ChannelState state)
    {
        public Lock Lock { get; } = new();

        /// <summary>Read without the lock by <see cref="GetAsync"/>: a reference to an immutable state, swapped whole.</summary>
        public ChannelState State
        {
            get => Volatile.Read(ref _state);
            set => Volatile.Write(ref _state, value);
        }

        public TaskCompletionSource Changed { get; set; } = NewSignal();

        private ChannelState _state = state;

        public static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

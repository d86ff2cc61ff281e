using CrocNet.Diagnostics;
using CrocNet.Protocol;

namespace CrocNet.Rendezvous;

/// <summary>
/// One participant's membership of one channel, as the relay granted it in <c>join</c>: who we are (channel,
/// uuid, role) never changes afterwards. What the handshake and the session need from the relay's HTTP side.
/// </summary>
internal interface IRelaySession
{
    string Channel { get; }

    /// <summary>Posts an action (or nothing, to read the state).</summary>
    Task<RelayState> PostAsync(Action<ChannelRequest>? action, CancellationToken cancellationToken);

    /// <summary>Long-polls until <paramref name="isDone"/> holds or the channel closes; past <paramref name="timeout"/> a <see cref="CrocTimeoutException"/>.</summary>
    Task<RelayState> WaitForAsync(RelayState current, Func<RelayState, bool> isDone, TimeSpan timeout, CancellationToken cancellationToken);
}

/// <inheritdoc cref="IRelaySession"/>
internal sealed class RelaySession : IRelaySession
{
    private readonly RelayClient _client;
    private int _closed;

    public RelaySession(RelayClient client, string channel, string uuid, RelayState joined)
    {
        _client = client;
        Channel = channel;
        Uuid = uuid;
        Joined = joined;
    }

    public string Channel { get; }

    /// <summary>This participant's bearer token: a secret, never logged.</summary>
    public string Uuid { get; }

    /// <summary>The state in the join reply.</summary>
    public RelayState Joined { get; }

    public string DisplayAddress => _client.DisplayAddress;

    public Uri BaseAddress => _client.BaseAddress;

    public Task<RelayState> PostAsync(Action<ChannelRequest>? action, CancellationToken cancellationToken)
    {
        var request = NewRequest();
        action?.Invoke(request);
        return _client.PostChannelAsync(request, ProtocolTimings.RelayRequest, cancellationToken);
    }

    public async Task<RelayState> WaitForAsync(RelayState current, Func<RelayState, bool> isDone, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var time = _client.Time;
        var started = time.GetTimestamp();
        var state = current;
        while (!isDone(state) && !state.Closed)
        {
            var left = timeout - time.GetElapsedTime(started);
            if (left <= TimeSpan.Zero)
            {
                throw new CrocTimeoutException($"The other side did not respond within {timeout}.");
            }

            var request = NewRequest();
            request.Wait = (int)Math.Clamp(Math.Ceiling(left.TotalSeconds), 1, Math.Min(CrocWire.MaxWaitSeconds, ProtocolTimings.PollWait.TotalSeconds));
            request.Since = state.Rev;
            var asked = time.GetTimestamp();
            var previous = state.Rev;
            try
            {
                state = await _client.PostChannelAsync(request, TimeSpan.FromSeconds(request.Wait.Value) + ProtocolTimings.PollMargin, cancellationToken).ConfigureAwait(false);
            }
            catch (CrocRelayException ex) when (ex.RelayCode == CrocWire.Errors.Closed)
            {
                // Closed between two polls: the relay answers 410 rather than a closed state. It is the same event,
                // so the caller sees it the same way, whenever it happened.
                return state.AsClosed();
            }

            var took = time.GetElapsedTime(asked);
            if (state.Rev <= previous && took < ProtocolTimings.MinPollInterval && !isDone(state) && !state.Closed)
            {
                // Nothing new, and far sooner than asked: a relay that does not hold long-polls. Never busy-poll it.
                await Task.Delay(ProtocolTimings.MinPollInterval - took, time, cancellationToken).ConfigureAwait(false);
            }
        }

        return state;
    }

    /// <summary>Ends the channel; best effort, at most once, never throws (the channel may already be gone).</summary>
    public async Task CloseAsync()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 1)
        {
            return;
        }

        try
        {
            using var deadline = ProtocolTimings.After(ProtocolTimings.Close, _client.Time, CancellationToken.None);
            var request = NewRequest();
            request.Close = true;
            await _client.PostOnceIgnoringReplyAsync(request, deadline.Token).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Best effort by contract: a failing close must never hide the session's own outcome.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.CloseFailed(_client.Logger, Channel, ex.GetType().Name);
        }
    }

    private ChannelRequest NewRequest() => new() { Channel = Channel, Uuid = Uuid };
}

namespace CrocNet.Protocol;

/// <summary>
/// The protocol's fixed timings, in one place, and the one way the client turns a timing into a cancellation: on
/// the instance's <see cref="TimeProvider"/>, so tests drive them with a fake clock. The user-facing limits
/// (peer, idle, channel wait) are options; these are not meant to be tuned.
/// </summary>
internal static class ProtocolTimings
{
    /// <summary>
    /// One relay HTTP request that is not a long-poll. A request that gets no answer in this time is taken for a
    /// stalled connection and tried again on a new one: short enough that a retry still meets a peer that waits
    /// (the peer's own wait is <c>PeerTimeout</c>), long enough for a loaded relay or a slow store.
    /// </summary>
    public static readonly TimeSpan RelayRequest = TimeSpan.FromSeconds(15);

    /// <summary>
    /// The longest long-poll the client asks for. Shorter than a relay would hold (30 s), so that a stalled connection
    /// under a poll is noticed within <see cref="PollWait"/> + <see cref="PollMargin"/> rather than a minute.
    /// </summary>
    public static readonly TimeSpan PollWait = TimeSpan.FromSeconds(10);

    /// <summary>How long past its <c>wait</c> a long-poll may take to come back before it is taken for stalled.</summary>
    public static readonly TimeSpan PollMargin = TimeSpan.FromSeconds(5);

    /// <summary>The best-effort <c>close</c> at the end of a session.</summary>
    public static readonly TimeSpan Close = TimeSpan.FromSeconds(5);

    /// <summary>Connecting one data connection and exchanging its hello.</summary>
    public static readonly TimeSpan Connect = TimeSpan.FromSeconds(30);

    /// <summary>How long a recipient waits for the sender to read its verdict before the connections go.</summary>
    public static readonly TimeSpan Goodbye = TimeSpan.FromSeconds(10);

    /// <summary>The same after a refusal or abort of our own: the message is short.</summary>
    public static readonly TimeSpan RefusalGoodbye = TimeSpan.FromSeconds(2);

    /// <summary>The least time between two long-polls that come back without news, so a relay that answers at once
    /// (or misbehaves) never makes the client busy-poll.</summary>
    public static readonly TimeSpan MinPollInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>The first pause of a recipient waiting for a sender's channel; it grows to <see cref="ChannelPollMax"/>.</summary>
    public static readonly TimeSpan ChannelPollFirst = TimeSpan.FromMilliseconds(25);

    /// <inheritdoc cref="ChannelPollFirst"/>
    public static readonly TimeSpan ChannelPollMax = TimeSpan.FromMilliseconds(500);

    /// <summary>Sending one short control message (an abort, a refusal) when the transfer is ending anyway.</summary>
    public static readonly TimeSpan ControlSend = TimeSpan.FromSeconds(2);

    /// <summary>How long a failing sender waits for the recipient's verdict to land, so its reason wins.</summary>
    public static readonly TimeSpan VerdictGrace = TimeSpan.FromMilliseconds(250);

    /// <summary>How long a failing sender waits at most for a silent recipient's verdict.</summary>
    public static readonly TimeSpan VerdictWait = TimeSpan.FromSeconds(2);

    /// <summary>After a cancellation, how long each connection may take to finish the frame it is writing (so the abort that follows arrives intact).</summary>
    public static readonly TimeSpan CancelGrace = TimeSpan.FromSeconds(1);

    /// <summary>A token cancelled by <paramref name="cancellationToken"/> or after <paramref name="timeout"/> on <paramref name="time"/>.</summary>
    public static Deadline After(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken) => new(timeout, time, cancellationToken);
}

/// <summary>A caller's token joined with a timer on a <see cref="TimeProvider"/>.</summary>
internal sealed class Deadline : IDisposable
{
    private readonly CancellationTokenSource _timer;
    private readonly CancellationTokenSource _linked;

    public Deadline(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        _timer = new CancellationTokenSource(timeout, time);
        _linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _timer.Token);
    }

    public CancellationToken Token => _linked.Token;

    /// <summary>Whether the timer (not the caller) ended the wait.</summary>
    public bool Expired => _timer.IsCancellationRequested;

    public void Dispose()
    {
        _linked.Dispose();
        _timer.Dispose();
    }
}

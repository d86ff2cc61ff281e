using CrocNet.Relay.Channels;

namespace CrocNet.Relay.Staple;

/// <summary>
/// One participant's data connection ("leg"), of any transport, as <see cref="StapleSession"/> drives it: read the
/// hello, answer, wait for the peer, pipe. A TCP socket (<see cref="SocketStapleConnection"/>), a WebSocket
/// (<see cref="WebSocketStapleConnection"/>) and a duplex pipe (<see cref="PipeStapleConnection"/>: a forwarded link,
/// in-memory in tests) are its adapters.
/// </summary>
internal interface IStapleConnection : IStapleLink
{
    /// <summary>The bytes after the hello, for the pipe.</summary>
    IStapleTransport Transport { get; }

    /// <summary>The transport's name in metrics (<c>tcp</c>, <c>ws</c>, …).</summary>
    string TransportName { get; }

    /// <summary>
    /// Whether the transport already presented the relay password (a WebSocket leg's upgrade request carries it in its
    /// <c>Authorization</c> header); a TCP leg presents it in its hello instead.
    /// </summary>
    bool Authorized { get; }

    /// <summary>Completes with <see langword="true"/> once <c>ok</c> was sent, so the pipe never interleaves with it.</summary>
    Task<bool> Ready { get; }

    void SetReady(bool ready);

    /// <summary>Completes once a peer has attached to this waiting leg (it stops watching for its client leaving).</summary>
    Task Paired { get; }

    void MarkPaired();

    /// <summary>
    /// Completes once the waiting watch no longer reads the connection (or it closed), so the pipe never reads
    /// alongside it.
    /// </summary>
    Task Watched { get; }

    void MarkWatched();

    /// <summary>
    /// Whether the watch saw the client's connection fail (a reset). A socket reports a reset once: after it, reads
    /// return "end of stream", which the pipe would take for a clean half-close.
    /// </summary>
    bool FailedWhileWaiting { get; }

    /// <summary>Reads exactly the hello line and nothing after it; the caller times it out through the token.</summary>
    ValueTask<(Hello? Hello, RelayError Error)> ReadHelloAsync(CancellationToken cancellationToken);

    /// <summary>Writes an answer line (<c>ok\n</c>).</summary>
    ValueTask SendLineAsync(string line, CancellationToken cancellationToken);

    /// <summary>Writes a refusal line, ends sending, lets the client read it (draining a little input), then closes.</summary>
    ValueTask RefuseAsync(string line, CancellationToken cancellationToken);

    /// <summary>
    /// While the leg waits for its peer: <see langword="true"/> when its client went away, <see langword="false"/> when
    /// it sent payload early (which stays unread for the pipe). Throws when cancelled.
    /// </summary>
    ValueTask<bool> ClientLeftAsync(CancellationToken cancellationToken);

    /// <summary>Closes after a clean finish, letting queued data reach the client (where <see cref="IStapleLink.Abort"/> would discard it).</summary>
    void CloseGracefully();
}

/// <summary>What every adapter shares: the ready and paired signals, and closing once.</summary>
internal abstract class StapleConnectionBase : IStapleConnection
{
    private readonly TaskCompletionSource<bool> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _paired = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _watched = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _failedWhileWaiting;
    private readonly Action? _onClosed;
    private int _closed;

    /// <param name="onClosed">Runs once when the connection is closed, however that happens (frees its connection slot).</param>
    protected StapleConnectionBase(Action? onClosed) => _onClosed = onClosed;

    public abstract IStapleTransport Transport { get; }

    public abstract string TransportName { get; }

    public virtual bool Authorized => false;

    public Task<bool> Ready => _ready.Task;

    public Task Paired => _paired.Task;

    public void SetReady(bool ready) => _ready.TrySetResult(ready);

    public void MarkPaired() => _paired.TrySetResult();

    public Task Watched => _watched.Task;

    public void MarkWatched() => _watched.TrySetResult();

    public bool FailedWhileWaiting => _failedWhileWaiting;

    /// <summary>The watch saw the client's connection fail.</summary>
    protected void MarkFailedWhileWaiting() => _failedWhileWaiting = true;

    public abstract ValueTask<(Hello? Hello, RelayError Error)> ReadHelloAsync(CancellationToken cancellationToken);

    public abstract ValueTask SendLineAsync(string line, CancellationToken cancellationToken);

    public abstract ValueTask RefuseAsync(string line, CancellationToken cancellationToken);

    public abstract ValueTask<bool> ClientLeftAsync(CancellationToken cancellationToken);

    public void CloseGracefully() => Close(graceful: true);

    public void Abort() => Close(graceful: false);

    /// <summary>Closes the transport: gracefully, or at once (a reset where the transport has one).</summary>
    protected abstract void CloseTransport(bool graceful);

    private void Close(bool graceful)
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        _ready.TrySetResult(false);
        _watched.TrySetResult();
        CloseTransport(graceful);
        _onClosed?.Invoke();
    }
}

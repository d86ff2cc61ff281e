using System.Net.Sockets;
using CrocNet.Relay.Channels;

namespace CrocNet.Relay.Staple;

/// <summary>An accepted TCP connection: the socket plus a signal that its <c>ok</c> line is on the wire.</summary>
internal sealed class StapleConnection : IStapleLink
{
    private readonly TaskCompletionSource<bool> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _paired = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action? _onClosed;
    private int _aborted;

    /// <param name="socket">The accepted socket, owned from now on.</param>
    /// <param name="onClosed">Runs once when the socket is closed, however that happens (frees its connection slot).</param>
    public StapleConnection(Socket socket, Action? onClosed = null)
    {
        Socket = socket;
        _onClosed = onClosed;
    }

    public Socket Socket { get; }

    /// <summary>Completes with <see langword="true"/> once <c>ok\n</c> was sent, so the pipe never interleaves with it.</summary>
    public Task<bool> Ready => _ready.Task;

    public void SetReady(bool ready) => _ready.TrySetResult(ready);

    /// <summary>Completes once a peer has attached to this waiting connection (it stops watching for its client leaving).</summary>
    public Task Paired => _paired.Task;

    public void MarkPaired() => _paired.TrySetResult();

    /// <summary>
    /// Closes after a clean finish: a normal close lets data still queued in the kernel reach the peer, where
    /// <see cref="Abort"/>'s reset would discard it.
    /// </summary>
    public void CloseGracefully()
    {
        if (Interlocked.Exchange(ref _aborted, 1) == 0)
        {
            _ready.TrySetResult(false);
            Socket.Dispose();
            _onClosed?.Invoke();
        }
    }

    public void Abort()
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return;
        }

        _ready.TrySetResult(false);
        try
        {
            // Zero linger: the peer sees a reset at once instead of a half-finished stream.
            Socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already gone.
        }

        Socket.Dispose();
        _onClosed?.Invoke();
    }
}

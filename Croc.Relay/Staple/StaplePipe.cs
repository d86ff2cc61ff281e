using System.Buffers;
using CrocNet.Relay.Diagnostics;

namespace CrocNet.Relay.Staple;

/// <summary>
/// Copies bytes between two legs' transports in both directions with large pooled buffers and no per-byte work; a
/// direction holds its buffer only while data flows (it waits for readability first: a zero-byte receive on a socket).
/// When one direction reaches end of stream it half-closes the other leg and keeps copying the other direction. A pair
/// that carries no byte in either direction for the idle timeout is cut. Two sockets take the same loop (one interface
/// call per buffer-full), so the socket-to-socket path costs nothing extra.
/// </summary>
internal static class StaplePipe
{
    /// <summary>
    /// Runs both directions to the end. Returns the bytes each way and whether both ended cleanly; on any failure
    /// <paramref name="onFault"/> runs at once (it cuts the sockets, so the other direction ends too), and when neither
    /// direction moves a byte for <paramref name="idleTimeout"/> (on <paramref name="timeProvider"/>'s clock),
    /// <paramref name="onIdle"/> runs (it cuts them too).
    /// </summary>
    public static async Task<(long AToB, long BToA, bool Clean)> RunAsync(
        IStapleTransport a,
        IStapleTransport b,
        int bufferSize,
        RelayMetrics metrics,
        TimeSpan idleTimeout,
        TimeProvider timeProvider,
        Action onIdle,
        Action onFault,
        CancellationToken cancellationToken)
    {
        using var piping = metrics.StartPiping();
        var activity = new Activity(timeProvider, idleTimeout, onIdle);
        await using (activity.ConfigureAwait(false))
        {
            var fault = new Fault(onFault);
            var aToB = CopyAsync(a, b, bufferSize, metrics, activity, fault, cancellationToken);
            var bToA = CopyAsync(b, a, bufferSize, metrics, activity, fault, cancellationToken);
            var (sentAB, cleanAB) = await aToB.ConfigureAwait(false);
            var (sentBA, cleanBA) = await bToA.ConfigureAwait(false);
            return (sentAB, sentBA, cleanAB && cleanBA && !activity.TimedOut);
        }
    }

    private static async Task<(long Bytes, bool Clean)> CopyAsync(
        IStapleTransport from, IStapleTransport to, int bufferSize, RelayMetrics metrics, Activity activity, Fault fault, CancellationToken cancellationToken)
    {
        long total = 0;
        try
        {
            while (true)
            {
                // Idle: wait for data (or end of stream) without holding a buffer, so idle pairs pin no memory.
                await from.WaitReadableAsync(cancellationToken).ConfigureAwait(false);
                var buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
                try
                {
                    // Busy: keep the buffer while reads fill it; a short read means the sender paused, so give it back.
                    int read;
                    do
                    {
                        read = await from.ReadAsync(buffer.AsMemory(), cancellationToken).ConfigureAwait(false);
                        activity.Touch();
                        if (read == 0)
                        {
                            if (fault.Raised)
                            {
                                // The other direction failed (it may have taken this end's reset): not a clean end.
                                return (total, false);
                            }

                            await to.ShutdownSendAsync().ConfigureAwait(false);
                            return (total, true);
                        }

                        await to.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);

                        total += read;
                        metrics.BytesPiped(read);
                    }
                    while (read == buffer.Length);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or ObjectDisposedException or OperationCanceledException or IOException or InvalidOperationException)
        {
            fault.Raise();
            return (total, false);
        }
    }

    /// <summary>The pair's failure: marked first (the other direction must not pass on an end of stream then), then reported.</summary>
    private sealed class Fault(Action onFault)
    {
        private int _raised;

        public bool Raised => Volatile.Read(ref _raised) != 0;

        public void Raise()
        {
            Volatile.Write(ref _raised, 1);
            onFault();
        }
    }

    /// <summary>
    /// The pair's last activity and the one timer that watches it. Reads stamp the time (one volatile write each); the
    /// timer sleeps until the stamp could be <c>idleTimeout</c> old, and re-arms for the rest when it is not.
    /// </summary>
    private sealed class Activity : IAsyncDisposable
    {
        private readonly TimeProvider _timeProvider;
        private readonly TimeSpan _idleTimeout;
        private readonly Action _onIdle;
        private readonly ITimer _timer;
        private long _last;
        private int _timedOut;

        public Activity(TimeProvider timeProvider, TimeSpan idleTimeout, Action onIdle)
        {
            _timeProvider = timeProvider;
            _idleTimeout = idleTimeout;
            _onIdle = onIdle;
            _last = timeProvider.GetTimestamp();

            // Armed only once _timer is set, so the callback never sees it unassigned.
            _timer = timeProvider.CreateTimer(static state => ((Activity)state!).Check(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _timer.Change(idleTimeout, Timeout.InfiniteTimeSpan);
        }

        public bool TimedOut => Volatile.Read(ref _timedOut) != 0;

        public void Touch() => Volatile.Write(ref _last, _timeProvider.GetTimestamp());

        private void Check()
        {
            var left = _idleTimeout - _timeProvider.GetElapsedTime(Volatile.Read(ref _last));
            if (left > TimeSpan.Zero)
            {
                _timer.Change(left, Timeout.InfiniteTimeSpan);
                return;
            }

            if (Interlocked.Exchange(ref _timedOut, 1) == 0)
            {
                _onIdle();
            }
        }

        public ValueTask DisposeAsync() => _timer.DisposeAsync();
    }
}

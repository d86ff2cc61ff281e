using System.Buffers;
using System.Net.Sockets;
using CrocNet.Relay.Diagnostics;

namespace CrocNet.Relay.Staple;

/// <summary>
/// Copies bytes between two sockets in both directions with large pooled buffers and no per-byte work; a direction
/// holds its buffer only while data flows (it waits for readability with a zero-byte receive first). When one
/// direction reaches end of stream it half-closes the other socket and keeps copying the other direction.
/// </summary>
internal static class SocketPipe
{
    /// <summary>
    /// Runs both directions to the end. Returns the bytes each way and whether both ended cleanly; on any failure
    /// <paramref name="onFault"/> runs at once (it cuts the sockets, so the other direction ends too).
    /// </summary>
    public static async Task<(long AToB, long BToA, bool Clean)> RunAsync(
        Socket a, Socket b, int bufferSize, RelayMetrics metrics, Action onFault, CancellationToken cancellationToken)
    {
        var aToB = CopyAsync(a, b, bufferSize, metrics, onFault, cancellationToken);
        var bToA = CopyAsync(b, a, bufferSize, metrics, onFault, cancellationToken);
        var (sentAB, cleanAB) = await aToB.ConfigureAwait(false);
        var (sentBA, cleanBA) = await bToA.ConfigureAwait(false);
        return (sentAB, sentBA, cleanAB && cleanBA);
    }

    private static async Task<(long Bytes, bool Clean)> CopyAsync(
        Socket from, Socket to, int bufferSize, RelayMetrics metrics, Action onFault, CancellationToken cancellationToken)
    {
        long total = 0;
        try
        {
            while (true)
            {
                // Idle: wait for data (or end of stream) without holding a buffer, so idle pairs pin no memory.
                await from.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                var buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
                try
                {
                    // Busy: keep the buffer while reads fill it; a short read means the sender paused, so give it back.
                    int read;
                    do
                    {
                        read = await from.ReceiveAsync(buffer.AsMemory(), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                        if (read == 0)
                        {
                            to.Shutdown(SocketShutdown.Send);
                            return (total, true);
                        }

                        var pending = buffer.AsMemory(0, read);
                        while (!pending.IsEmpty)
                        {
                            var sent = await to.SendAsync(pending, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                            pending = pending[sent..];
                        }

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
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException or IOException)
        {
            onFault();
            return (total, false);
        }
    }
}

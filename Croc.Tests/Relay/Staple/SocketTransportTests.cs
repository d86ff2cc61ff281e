using System.Net.Sockets;
using CrocNet.Relay.Staple;

namespace CrocNet.Tests.Relay.Staple;

/// <summary>
/// The relay's socket transport tells a peer's reset from its clean end even when a send took the reset's one report
/// (as the pipe's other direction does when it writes to that leg): otherwise the pipe passes the end on as a clean
/// one, and the partner leg takes a break for a goodbye. Real loopback sockets.
/// </summary>
public class SocketTransportTests
{
    [Test]
    [CancelAfter(10_000)]
    public async Task ReadAsync_PeerResetAndASendTookTheReport_ThrowsNotAnEndOfStream(CancellationToken cancellationToken)
    {
        Assume.That(OperatingSystem.IsLinux(), "the TCP state is read where the system tells it");
        using var pair = await SocketPair.OpenAsync(cancellationToken);
        var (ours, theirs) = (pair.Server, pair.Client);
        theirs.LingerState = new LingerOption(true, 0);
        theirs.Dispose();
        Assert.That(await ResetSeenBySendAsync(ours, cancellationToken), Is.True, "a send took the reset");

        var transport = new SocketTransport(ours);

        Assert.That(SocketTransport.WasReset(ours), Is.True);
        var error = Assert.CatchAsync<SocketException>(async () => await transport.ReadAsync(new byte[16], cancellationToken));
        Assert.That(error!.SocketErrorCode, Is.EqualTo(SocketError.ConnectionReset));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task ReadAsync_PeerEndsCleanly_EndOfStreamBeforeAndAfterOurOwnEnd(CancellationToken cancellationToken)
    {
        using var pair = await SocketPair.OpenAsync(cancellationToken);
        var (ours, theirs) = (pair.Server, pair.Client);
        var transport = new SocketTransport(ours);
        theirs.Shutdown(SocketShutdown.Send);

        Assert.That(await transport.ReadAsync(new byte[16], cancellationToken), Is.Zero, "their FIN: a clean end");
        Assert.That(SocketTransport.WasReset(ours), Is.False);
        await transport.ShutdownSendAsync();
        Assert.That(await theirs.ReceiveAsync(new byte[16], SocketFlags.None, cancellationToken), Is.Zero);
        Assert.That(await transport.ReadAsync(new byte[16], cancellationToken), Is.Zero, "both ends closed cleanly");
    }

    private static async Task<bool> ResetSeenBySendAsync(Socket socket, CancellationToken cancellationToken)
    {
        // The reset arrives asynchronously: send until a send reports it (the first few may still be accepted).
        for (var i = 0; i < 200; i++)
        {
            try
            {
                await socket.SendAsync(new byte[] { 1 }, SocketFlags.None, cancellationToken);
            }
            catch (SocketException)
            {
                return true;
            }

            await Task.Delay(5, cancellationToken);
        }

        return false;
    }
}

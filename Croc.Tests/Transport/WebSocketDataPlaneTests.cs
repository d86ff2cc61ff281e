using System.Security.Cryptography;
using CrocNet.Crypto;
using CrocNet.Transfer;
using CrocNet.Transport;

namespace CrocNet.Tests.Transport;

/// <summary>The real data plane (frames, sender, receiver) over four WebSocket lanes piped by the leg endpoint double.</summary>
public class WebSocketDataPlaneTests
{
    [Test]
    [CancelAfter(60_000)]
    public async Task DataPlane_FourWebSocketLanes_FilesArriveVerified(CancellationToken cancellationToken)
    {
        var source = Directory.CreateTempSubdirectory("croc-ws-src-").FullName;
        var target = Directory.CreateTempSubdirectory("croc-ws-dst-").FullName;
        try
        {
            var big = RandomNumberGenerator.GetBytes((9 * 1024 * 1024) + 5);
            await File.WriteAllBytesAsync(Path.Join(source, "big.bin"), big, cancellationToken);
            await File.WriteAllTextAsync(Path.Join(source, "small.txt"), "small", cancellationToken);
            await using var host = await WebSocketLegHost.StartAsync(cancellationToken);
            using var http = new HttpMessageInvoker(new SocketsHttpHandler());
            var transport = new WebSocketStapleTransport(http, TimeProvider.System);
            var relay = new StapleTarget(host.BaseAddress, "127.0.0.1", []) { Lanes = 4, WebSockets = true };
            var senderLegs = new Stream[4];
            var recipientLegs = new Stream[4];
            for (var lane = 0; lane < 4; lane++)
            {
                senderLegs[lane] = await transport.ConnectAsync(relay, lane, new StapleTicket("plane", "s"), cancellationToken);
                recipientLegs[lane] = await transport.ConnectAsync(relay, lane, new StapleTicket("plane", "r"), cancellationToken);
            }

            var key = RandomNumberGenerator.GetBytes(32);
            var plan = SendContent.FromPath(source).Build(FileSender.ChunkSize, CrocHashAlgorithm.XxHash128, TimeProvider.System);
            using var sender = CrocNet.Session.DataPlane.Create(
                key, senderLegs, StreamDirection.SenderToRecipient, new ProgressTracker(null, null, TimeProvider.System), TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(1), TimeProvider.System);
            using var recipient = CrocNet.Session.DataPlane.Create(
                key, recipientLegs, StreamDirection.RecipientToSender, new ProgressTracker(null, null, TimeProvider.System), TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(1), TimeProvider.System);

            var send = FileSender.RunAsync(plan, sender, cancellationToken);
            var receive = FileReceiver.RunAsync(recipient, new ReceiveTarget { OutputDirectory = target }, cancellationToken);
            await Task.WhenAll(send, receive);
            await CrocNet.Session.CrocRuntime.DisposeAllAsync([.. senderLegs, .. recipientLegs]);

            var received = await File.ReadAllBytesAsync(Path.Join(target, Path.GetFileName(source), "big.bin"), cancellationToken);
            Assert.That(received.AsSpan().SequenceEqual(big), Is.True);
            Assert.That((await receive).Files, Has.Count.EqualTo(2));
            Assert.That(host.MaxMessage, Is.EqualTo(64 * 1024));
        }
        finally
        {
            Directory.Delete(source, recursive: true);
            Directory.Delete(target, recursive: true);
        }
    }
}

using System.Security.Cryptography;
using CrocNet.Relay;

namespace CrocNet.Tests.EndToEnd;

/// <summary>
/// Whole transfers through the real relay with WebSocket legs: both sides over WebSockets, mixed pairs (a TCP leg on one
/// side, a WebSocket leg on the other, on every lane), and a relay that runs no TCP listener at all.
/// </summary>
public sealed class WebSocketTransferTests : TransferTestBase
{
    [TestCase(CrocTransport.WebSocket, CrocTransport.WebSocket)]
    [TestCase(CrocTransport.Tcp, CrocTransport.WebSocket)]
    [TestCase(CrocTransport.WebSocket, CrocTransport.Tcp)]
    [CancelAfter(60_000)]
    public async Task SendAsync_LegsOfEitherTransport_FileArrivesByteExact(CrocTransport senderLegs, CrocTransport recipientLegs, CancellationToken cancellationToken)
    {
        var file = Path.Join(NewFolder(), "mixed.bin");
        var data = WriteRandomFile(file, (12 * 1024 * 1024) + 5);
        var output = NewFolder();

        var (sent, received) = await TransferAsync(
            NewCroc(o => o.WithTransport(senderLegs)),
            SendContent.FromPath(file),
            code => NewCroc(o => o.WithTransport(recipientLegs)).ReceiveAsync(code, new ReceiveOptions { OutputDirectory = output }, cancellationToken),
            cancellationToken);

        Assert.That(File.ReadAllBytes(Path.Join(output, "mixed.bin")), Is.EqualTo(data));
        Assert.That(sent.Files.Single().Digest, Is.EqualTo(received.Files.Single().Digest));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task SendAsync_RelayWithoutTcpListeners_AutoUsesWebSocketLegs(CancellationToken cancellationToken)
    {
        await using var relay = await CrocRelayServer.StartAsync(o =>
        {
            o.Url = "http://127.0.0.1:0";
            o.Relay.Ports = [];
            o.Relay.Lanes = 3;
        }, cancellationToken);
        var source = NewFolder();
        var files = new Dictionary<string, byte[]>();
        for (var i = 0; i < 20; i++)
        {
            files[$"f{i:D2}.bin"] = WriteRandomFile(Path.Join(source, "tree", $"f{i:D2}.bin"), RandomNumberGenerator.GetInt32(1, 300_000));
        }

        var output = NewFolder();
        Croc Client() => Croc.New(o => o.WithRelay(relay.BaseAddress).WithRetries(2, TimeSpan.FromMilliseconds(20)));

        var (_, received) = await TransferAsync(
            Client(),
            SendContent.FromPath(Path.Join(source, "tree")),
            code => Client().ReceiveAsync(code, new ReceiveOptions { OutputDirectory = output }, cancellationToken),
            cancellationToken);

        Assert.That(relay.Ports, Is.Empty);
        Assert.That(received.Files, Has.Count.EqualTo(20));
        foreach (var (name, bytes) in files)
        {
            Assert.That(File.ReadAllBytes(Path.Join(output, "tree", name)), Is.EqualTo(bytes), name);
        }
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task SendAsync_ForcedTcpOnRelayWithoutTcpListeners_TypedRefusal(CancellationToken cancellationToken)
    {
        await using var relay = await CrocRelayServer.StartAsync(o => { o.Url = "http://127.0.0.1:0"; o.Relay.Ports = []; }, cancellationToken);
        var croc = Croc.New(o => o.WithRelay(relay.BaseAddress).WithTransport(CrocTransport.Tcp));

        var error = Assert.ThrowsAsync<CrocRelayException>(async () =>
        {
            await using var send = await croc.StartSendAsync(SendContent.FromText("x"), cancellationToken);
            await send.Completion;
        });

        Assert.That(error!.Code, Is.EqualTo(CrocErrorCode.RelayRefused));
    }
}

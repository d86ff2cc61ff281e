using System.Security.Cryptography;
using CrocNet.Tests.Faults;
using CrocNet.Transfer;
using CrocNet.Tests.Relay;
using Microsoft.Extensions.DependencyInjection;

namespace CrocNet.Tests.EndToEnd;

/// <summary>
/// A leg reset mid-transfer through the real relay (on Kestrel, loopback) and the fault proxy: the lane is dialed
/// again, the transfer completes byte-exact, and both sides report the reconnect; with reconnecting off the same
/// reset fails both sides with <see cref="CrocErrorCode.ConnectionLost"/> and leaves no file.
/// </summary>
public class ReconnectTransferTests
{
    private const int FileSize = 24 * 1024 * 1024;
    private readonly TempFolders _folders = new("croc-reconnect-");

    [TearDown]
    public void DeleteFolders() => _folders.DeleteAll();

    private string NewFolder() => _folders.New();

    private static Croc NewCroc(Uri relay, CrocTransport transport, HttpMessageHandler handler, int reconnectAttempts) => Croc.New(o => o
        .WithRelay(relay)
        .WithTransport(transport)
        .WithReconnect(reconnectAttempts, TimeSpan.FromSeconds(20))
        .WithRetries(2, TimeSpan.FromMilliseconds(20))
        .WithIdleTimeout(TimeSpan.FromSeconds(20))
        .UseHttpMessageHandler(handler));

    private async Task<(TransferResult Sent, TransferResult Received, byte[] Bytes, string Output)> TransferAsync(
        Fault fault, CrocTransport transport, int reconnectAttempts, CancellationToken cancellationToken)
    {
        var source = Path.Join(NewFolder(), "payload.bin");
        var bytes = RandomNumberGenerator.GetBytes(FileSize);
        await File.WriteAllBytesAsync(source, bytes, cancellationToken);
        var output = NewFolder();
        await using var relay = await FaultCaseRunner.StartRelayAsync(cancellationToken);
        await using var proxy = FaultProxy.Start(relay.BaseAddress, relay.Ports, fault);
        using var senderHandler = new SocketsHttpHandler();
        using var recipientHandler = new SocketsHttpHandler();
        var sender = NewCroc(proxy.SenderRelay, transport, senderHandler, reconnectAttempts);
        var recipient = NewCroc(proxy.RecipientRelay, transport, recipientHandler, reconnectAttempts);

        await using var operation = await sender.StartSendAsync(SendContent.FromPath(source), cancellationToken: cancellationToken);
        var receive = recipient.ReceiveAsync(operation.Code, new ReceiveOptions { OutputDirectory = output }, cancellationToken);
        var both = Task.WhenAll(receive, operation.Completion);
        await both.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        Assert.That(proxy.HasFired, Is.True, $"the leg was reset mid-transfer (the transfer: {both.Exception?.InnerException?.Message ?? "ok"})");
        await both;
        return (await operation.Completion, await receive, bytes, output);
    }

    [TestCase(0, false)]
    [TestCase(2, false)]
    [TestCase(-1, false)]
    [CancelAfter(60_000)]
    public async Task SendAsync_TcpLegResetMidTransfer_LaneReconnectsAndTransferCompletes(int lane, bool sendersLeg, CancellationToken cancellationToken)
    {
        // The sender's leg is reset in its sending direction; the recipient's in the direction it receives.
        var target = sendersLeg ? new FaultTarget(ProxySide.Sender, LegKind.TcpLane, lane, Flow.Up) : new FaultTarget(ProxySide.Recipient, LegKind.TcpLane, lane, Flow.Down);
        // Lanes pull chunks from one queue, so a given lane may carry little data; lane 0 is reset inside its first frame
        // (the manifest: the control lane breaks before the acceptance), any other lane once it carried 300 kB.
        var fault = new Fault(FaultKind.Reset, target, lane == 0 ? 64 : 300_000);

        var (sent, received, bytes, output) = await TransferAsync(fault, CrocTransport.Tcp, reconnectAttempts: 8, cancellationToken);

        Assert.That((await File.ReadAllBytesAsync(Path.Join(output, "payload.bin"), cancellationToken)).AsSpan().SequenceEqual(bytes), Is.True);
        Assert.That(sent.Reconnects, Is.EqualTo(1));
        Assert.That(received.Reconnects, Is.EqualTo(1));
        Assert.That(sent.BytesResent, Is.InRange(0, LaneSettings.DefaultWindow + CrocNet.Session.DataPlane.MaxFramePayload), "at most what one lane may keep unacknowledged");
        Assert.That(sent.TotalBytes, Is.EqualTo(FileSize), "re-sent bytes are not counted as payload twice");
        TestContext.Out.WriteLine($"lane {lane}: re-sent {sent.BytesResent:N0} B");
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task SendAsync_WebSocketLegResetMidTransfer_LaneReconnectsAndTransferCompletes(CancellationToken cancellationToken)
    {
        var fault = new Fault(FaultKind.Reset, new FaultTarget(ProxySide.Sender, LegKind.WebSocketLeg, 1, Flow.Up), 300_000);

        var (sent, received, bytes, output) = await TransferAsync(fault, CrocTransport.WebSocket, reconnectAttempts: 8, cancellationToken);

        Assert.That((await File.ReadAllBytesAsync(Path.Join(output, "payload.bin"), cancellationToken)).AsSpan().SequenceEqual(bytes), Is.True);
        Assert.That(sent.Reconnects, Is.EqualTo(1));
        Assert.That(received.Reconnects, Is.EqualTo(1));
        Assert.That(sent.BytesResent, Is.InRange(0, LaneSettings.DefaultWindow + CrocNet.Session.DataPlane.MaxFramePayload));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task SendAsync_LaneBreaksRightAfterTheStaplingBeforeTheSenderLooks_SenderStartsAnywayAndTheTransferCompletes(CancellationToken cancellationToken)
    {
        // The sender waits for "stapled" before it uses its legs. Here the recipient's lane-0 leg is reset right after
        // the relay stapled the channel, and the sender's poll reaches the relay only after that: it sees "stapled"
        // false. The relay cut the sender's lane-0 leg too, and only the sender can dial it again, so waiting on for
        // "stapled" would wait until the lane's reconnect window reset the channel. The state says "reconnecting".
        var source = Path.Join(NewFolder(), "payload.bin");
        var bytes = RandomNumberGenerator.GetBytes(3 * 1024 * 1024);
        await File.WriteAllBytesAsync(source, bytes, cancellationToken);
        var output = NewFolder();
        await using var relay = await FaultCaseRunner.StartRelayAsync(cancellationToken);
        await using var proxy = FaultProxy.Start(relay.BaseAddress, relay.Ports);
        var registry = relay.Services.GetRequiredService<CrocNet.Relay.Channels.ChannelRegistry>();
        var legsOpened = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var senderHandler = new HoldPollsAfter(legsOpened.Task, new SocketsHttpHandler());
        using var recipientHandler = new SocketsHttpHandler();
        var sender = Croc.New(o => o
            .WithRelay(proxy.SenderRelay)
            .WithTransport(CrocTransport.Tcp)
            .WithReconnect(8, TimeSpan.FromSeconds(20))
            .WithIdleTimeout(TimeSpan.FromSeconds(20))
            .UseHttpMessageHandler(senderHandler)
            .UseTransport(new CrocNet.Tests.Transport.InterceptingTransport((leg, _) =>
            {
                legsOpened.TrySetResult();
                return leg;
            })));
        var recipient = NewCroc(proxy.RecipientRelay, CrocTransport.Tcp, recipientHandler, reconnectAttempts: 8);

        await using var operation = await sender.StartSendAsync(SendContent.FromPath(source), cancellationToken: cancellationToken);
        var receive = recipient.ReceiveAsync(operation.Code, new ReceiveOptions { OutputDirectory = output }, cancellationToken);
        var channel = operation.Channel;
        Assert.That(await RelayTestKit.EventuallyAsync(() => registry.GetAsync(channel).AsTask().Result is { Stapled: true }, TimeSpan.FromSeconds(20), cancellationToken), Is.True, "stapled");
        proxy.Connections.First(c => c is { Side: ProxySide.Recipient, Kind: LegKind.TcpLane, PortIndex: 0 }).Reset();
        Assert.That(await RelayTestKit.EventuallyAsync(() => registry.GetAsync(channel).AsTask().Result is { Stapled: false, Reconnecting: true }, TimeSpan.FromSeconds(10), cancellationToken), Is.True, "broken");
        Assert.That(await RelayTestKit.EventuallyAsync(() => senderHandler.Held, TimeSpan.FromSeconds(10), cancellationToken), Is.True, "the sender's poll was held back");
        senderHandler.Release();

        var sent = await operation.Completion;
        var received = await receive;
        Assert.That((await File.ReadAllBytesAsync(Path.Join(output, "payload.bin"), cancellationToken)).AsSpan().SequenceEqual(bytes), Is.True);
        Assert.That((sent.Reconnects, received.Reconnects), Is.EqualTo((1, 1)), "lane 0 was dialed again by both");
        foreach (var side in new[] { ProxySide.Sender, ProxySide.Recipient })
        {
            // A re-dial may take more than one try (a "duplicate" while the relay has not yet seen the old leg go).
            var legs = proxy.Connections.Where(c => c.Side == side && c is { Kind: LegKind.TcpLane, PortIndex: 0 }).Select(c => c.HelloAgain).ToList();
            Assert.That((legs.Count >= 2, legs[0], legs.Skip(1).All(again => again)), Is.EqualTo((true, false, true)), $"{side}: the first leg's hello is plain, every re-dialed one says 'again' ({string.Join(", ", legs)})");
        }
    }

    /// <summary>Once <paramref name="after"/> completed, holds back every long-poll (a request with <c>since</c>) until released.</summary>
    private sealed class HoldPollsAfter(Task after, HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private volatile bool _held;

        public bool Held => _held;

        public void Release() => _released.TrySetResult();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (after.IsCompleted && request.Content is { } content && (await content.ReadAsStringAsync(cancellationToken)).Contains("\"since\"", StringComparison.Ordinal))
            {
                _held = true;
                await _released.Task.WaitAsync(cancellationToken);
            }

            return await base.SendAsync(request, cancellationToken);
        }
    }

    [Test]
    [CancelAfter(60_000)]
    public void SendAsync_LegResetWithReconnectOff_ConnectionLostAndNoFile(CancellationToken cancellationToken)
    {
        // Any lane: lanes pull chunks from one queue, so a given one may never carry 300 kB.
        var fault = new Fault(FaultKind.Reset, new FaultTarget(ProxySide.Recipient, LegKind.TcpLane, -1, Flow.Down), 300_000);
        string? output = null;

        var error = Assert.CatchAsync<CrocException>(async () =>
        {
            try
            {
                await TransferAsync(fault, CrocTransport.Tcp, reconnectAttempts: 0, cancellationToken);
            }
            finally
            {
                output = _folders.Last;
            }
        });

        Assert.That(error!.Code, Is.EqualTo(CrocErrorCode.ConnectionLost), error.ToString());
        Assert.That(Directory.GetFileSystemEntries(output!).Where(p => !CrocNet.Files.PartialNames.IsOurs(Path.GetFileName(p))), Is.Empty, "nothing is left but resumable partials");
    }
}

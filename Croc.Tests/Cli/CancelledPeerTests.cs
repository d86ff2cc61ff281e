namespace CrocNet.Tests.Cli;

/// <summary>Ctrl+C on one side: the other side's croc says so, in its one error line.</summary>
public sealed class CancelledPeerTests : EndToEnd.TransferTestBase
{
    [Test]
    [CancelAfter(60_000)]
    public async Task Receive_SenderPressesCtrlC_SaysTheSenderCancelled(CancellationToken cancellationToken)
    {
        var target = NewFolder();
        var code = Croc.GenerateCode();
        using var ctrlC = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var send = new CliRun(["send", "--relay", Relay.BaseAddress.ToString(), "--code", code, "--name", "endless.bin", "-"], stdin: new EndToEnd.EndlessStream(0x42), cancellationToken: ctrlC.Token);
        await send.WaitForLineAsync("code:", cancellationToken);
        using var receive = new CliRun(["receive", "--relay", Relay.BaseAddress.ToString(), "--yes", "--out", target, code], cancellationToken: cancellationToken);

        // Bytes are arriving (in the hidden partial file) when the sender's person presses Ctrl+C.
        while (!Directory.EnumerateFiles(target, "*", new EnumerationOptions { AttributesToSkip = 0 }).Any(f => new FileInfo(f).Length > (2 << 20)))
        {
            Assert.That(receive.Task.IsCompleted, Is.False, receive.Stderr);
            await Task.Delay(20, cancellationToken);
        }

        await ctrlC.CancelAsync();

        Assert.That(await send.ExitAsync(cancellationToken), Is.EqualTo(130), send.Stderr);
        Assert.That(await receive.ExitAsync(cancellationToken), Is.EqualTo(4), receive.Stderr);
        Assert.That(receive.Stderr, Does.Contain("error: The sender cancelled the transfer."));
        Assert.That(Directory.EnumerateFileSystemEntries(target), Is.Empty, "nothing kept");
    }
}

namespace CrocNet.Tests.EndToEnd;

/// <summary>
/// A side that cancels tells the other one, in an authenticated abort, so the other side reports "the sender (or
/// recipient) cancelled" rather than a lost connection; nothing is left under a final name.
/// </summary>
public sealed class CancellationTests : TransferTestBase
{
    [Test]
    [CancelAfter(60_000)]
    public async Task SendAsync_SenderCancelsMidTransfer_RecipientHearsTheSenderCancelled(CancellationToken cancellationToken)
    {
        var output = NewFolder();
        using var cancelSender = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var flowing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var operation = await NewCroc().StartSendAsync(SendContent.FromStream(new EndlessStream(0x5a), "endless.bin"), cancelSender.Token);
        var receive = NewCroc().ReceiveAsync(operation.Code, new ReceiveOptions
        {
            OutputDirectory = output,
            Progress = new InlineProgress(p =>
            {
                if (p.BytesTransferred > 4 * 1024 * 1024)
                {
                    flowing.TrySetResult();
                }
            }),
        }, cancellationToken);

        await flowing.Task.WaitAsync(cancellationToken);
        await cancelSender.CancelAsync();

        Assert.That(async () => await operation.Completion, Throws.InstanceOf<OperationCanceledException>());
        var error = Assert.ThrowsAsync<CrocTransferException>(async () => await receive)!;
        Assert.That(error.Code, Is.EqualTo(CrocErrorCode.PeerCancelled), error.ToString());
        Assert.That(error.Message, Is.EqualTo("The sender cancelled the transfer."));
        Assert.That(Directory.EnumerateFileSystemEntries(output), Is.Empty, "nothing kept under a final name");
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_RecipientCancelsMidTransfer_SenderHearsTheRecipientCancelled(CancellationToken cancellationToken)
    {
        var output = NewFolder();
        using var cancelRecipient = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var flowing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var operation = await NewCroc().StartSendAsync(SendContent.FromStream(new EndlessStream(0x5a), "endless.bin"), cancellationToken);
        var receive = NewCroc().ReceiveAsync(operation.Code, new ReceiveOptions
        {
            OutputDirectory = output,
            Progress = new InlineProgress(p =>
            {
                if (p.BytesTransferred > 4 * 1024 * 1024)
                {
                    flowing.TrySetResult();
                }
            }),
        }, cancelRecipient.Token);

        await flowing.Task.WaitAsync(cancellationToken);
        await cancelRecipient.CancelAsync();

        Assert.That(async () => await receive, Throws.InstanceOf<OperationCanceledException>());
        var error = Assert.ThrowsAsync<CrocTransferException>(async () => await operation.Completion)!;
        Assert.That(error.Code, Is.EqualTo(CrocErrorCode.PeerCancelled));
        Assert.That(error.Message, Is.EqualTo("The recipient cancelled the transfer."));
        Assert.That(Directory.EnumerateFileSystemEntries(output), Is.Empty);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_RecipientCancelsAtTheOffer_SenderHearsTheRecipientCancelled(CancellationToken cancellationToken)
    {
        var source = Path.Join(NewFolder(), "offer.bin");
        WriteRandomFile(source, 1024);
        using var cancelRecipient = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        await using var operation = await NewCroc().StartSendAsync(SendContent.FromPath(source), cancellationToken);
        var receive = NewCroc().ReceiveAsync(operation.Code, new ReceiveOptions
        {
            OutputDirectory = NewFolder(),
            ConfirmOffer = async (_, token) =>
            {
                // A person looking at the prompt presses Ctrl+C.
                await cancelRecipient.CancelAsync();
                token.ThrowIfCancellationRequested();
                return true;
            },
        }, cancelRecipient.Token);

        Assert.That(async () => await receive, Throws.InstanceOf<OperationCanceledException>());
        var error = Assert.ThrowsAsync<CrocTransferException>(async () => await operation.Completion)!;
        Assert.That(error.Code, Is.EqualTo(CrocErrorCode.PeerCancelled));
    }

    /// <summary>Reports synchronously on the reporting thread (Progress&lt;T&gt; would post to the pool).</summary>
    private sealed class InlineProgress(Action<TransferProgress> report) : IProgress<TransferProgress>
    {
        public void Report(TransferProgress value) => report(value);
    }
}

using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using CrocNet.Tests.Transport;

namespace CrocNet.Tests.EndToEnd;

public class TransferTests : TransferTestBase
{
    [Test]
    [CancelAfter(60_000)]
    public async Task DesignCardCalls_Verbatim_TransferAFile(CancellationToken cancellationToken)
    {
        var url = Relay.BaseAddress.ToString();
        var source = NewFolder();
        var output = NewFolder();
        var data = WriteRandomFile(Path.Join(source, "hello.bin"), 123_457);
        var code = Croc.GenerateCode();

        // The design card's calls, as a host app and a service would write them: one instance from the builder,
        // one from DI-style options, each call with its own settings.
        var croc = Croc.New(o => o.WithCurve("p256").WithRelay(url));
        var service = new Croc(Microsoft.Extensions.Options.Options.Create(new CrocOptions { Relay = new Uri(url), Curve = "p256" }), NullLoggerFactory.Instance);
        var path = Path.Join(source, "hello.bin");

        var send = croc.SendAsync(SendContent.FromPath(path), new SendOptions { Code = code }, cancellationToken);
        var receive = service.ReceiveAsync(code, new ReceiveOptions { OutputDirectory = output }, cancellationToken);
        await Task.WhenAll(send, receive);

        Assert.That(File.ReadAllBytes(Path.Join(output, "hello.bin")), Is.EqualTo(data));
        Assert.That((await send).Files.Single().Digest, Is.EqualTo((await receive).Files.Single().Digest));
    }

    [TestCase("p256", CrocHashAlgorithm.XxHash128)]
    [TestCase("p256", CrocHashAlgorithm.Sha256)]
    [TestCase("p384", CrocHashAlgorithm.XxHash128)]
    [TestCase("p521", CrocHashAlgorithm.XxHash128)]
    [TestCase("siec", CrocHashAlgorithm.XxHash128)]
    [CancelAfter(60_000)]
    public async Task SendAsync_EveryCurve_DeliversByteExactFile(string curve, CrocHashAlgorithm hash, CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var output = NewFolder();
        var data = WriteRandomFile(Path.Join(source, "data.bin"), 3 * 1024 * 1024 + 17);

        var (sent, received) = await TransferAsync(
            NewCroc(o => o.WithCurve(curve).WithFileHash(hash)),
            SendContent.FromPath(Path.Join(source, "data.bin")),
            code => NewCroc(o => o.WithOutputDirectory(output)).ReceiveAsync(code, cancellationToken),
            cancellationToken);

        Assert.That(File.ReadAllBytes(Path.Join(output, "data.bin")), Is.EqualTo(data));
        Assert.That(received.Curve, Is.EqualTo(curve));
        Assert.That(sent.Curve, Is.EqualTo(curve));
        Assert.That(received.TotalBytes, Is.EqualTo(data.Length));
        Assert.That(Directory.GetFiles(output), Has.Length.EqualTo(1), "no temporary files remain");
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task SendAsync_NestedFolderWithEmptyFoldersAndEmptyFile_ArrivesIdentical(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var root = Path.Join(source, "project");
        WriteRandomFile(Path.Join(root, "a.txt"), 10);
        WriteRandomFile(Path.Join(root, "src", "deep", "deeper", "b.bin"), 2_000_000);
        File.WriteAllBytes(Path.Join(root, "src", "empty.txt"), []);
        Directory.CreateDirectory(Path.Join(root, "empty-folder", "nested-empty"));
        var output = NewFolder();

        var (sent, received) = await TransferAsync(
            NewCroc(),
            SendContent.FromPath(root),
            code => NewCroc(o => o.WithOutputDirectory(output)).ReceiveAsync(code, cancellationToken),
            cancellationToken);

        var expected = Snapshot(source);
        var actual = Snapshot(output);
        Assert.That(actual.Folders, Is.EqualTo(expected.Folders));
        Assert.That(actual.Files.Keys.Order(), Is.EqualTo(expected.Files.Keys.Order()));
        foreach (var (name, bytes) in expected.Files)
        {
            Assert.That(actual.Files[name], Is.EqualTo(bytes), name);
        }

        Assert.That(received.Directories, Does.Contain("project/empty-folder/nested-empty"));
        Assert.That(received.Files.Single(f => f.RelativePath == "project/src/empty.txt").Length, Is.Zero);
        Assert.That(sent.Files.Select(f => f.Digest), Is.EquivalentTo(received.Files.Select(f => f.Digest)));
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task SendAsync_AThousandSmallFiles_AllArrive(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var root = Path.Join(source, "many");
        for (var i = 0; i < 1000; i++)
        {
            WriteRandomFile(Path.Join(root, $"d{i % 10}", $"f{i:D4}.bin"), 1 + (i * 37 % 5000));
        }

        var output = NewFolder();
        var (_, received) = await TransferAsync(
            NewCroc(),
            SendContent.FromPath(root),
            code => NewCroc(o => o.WithOutputDirectory(output)).ReceiveAsync(code, cancellationToken),
            cancellationToken);

        Assert.That(received.Files, Has.Count.EqualTo(1000));
        var expected = Snapshot(source).Files;
        var actual = Snapshot(output).Files;
        Assert.That(actual, Has.Count.EqualTo(1000));
        Assert.That(expected.All(kv => actual[kv.Key].AsSpan().SequenceEqual(kv.Value)), Is.True);
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task SendAsync_64MiBFile_ArrivesByteExactWithProgressTo100Percent(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var output = NewFolder();
        var path = Path.Join(source, "big.bin");
        var data = WriteRandomFile(path, 64 * 1024 * 1024);
        var sendReports = new List<TransferProgress>();
        var receiveReports = new List<TransferProgress>();

        var (sent, _) = await TransferAsync(
            NewCroc(),
            SendContent.FromPath(path),
            code => NewCroc(o => o.WithOutputDirectory(output)).ReceiveAsync(code, new ReceiveOptions { Progress = new SyncProgress(receiveReports) }, cancellationToken),
            cancellationToken,
            new SendOptions { Progress = new SyncProgress(sendReports) });

        Assert.That(File.ReadAllBytes(Path.Join(output, "big.bin")).AsSpan().SequenceEqual(data), Is.True);
        Assert.That(sent.TotalBytes, Is.EqualTo(data.Length));
        foreach (var reports in new[] { sendReports, receiveReports })
        {
            Assert.That(reports, Is.Not.Empty);
            Assert.That(reports[^1].Stage, Is.EqualTo(TransferStage.Completed));
            Assert.That(reports[^1].Fraction, Is.EqualTo(1.0));
            Assert.That(reports[^1].BytesTransferred, Is.EqualTo(data.Length));
            Assert.That(reports.Select(r => r.BytesTransferred), Is.Ordered, "progress never goes backwards");
            Assert.That(reports.Any(r => r.Stage == TransferStage.Transferring && r.BytesTransferred > 0 && r.BytesTransferred < data.Length), Is.True, "reports arrive during the transfer");
            var stages = reports.Select(r => r.Stage).Distinct().ToList();
            Assert.That(stages.Take(4), Is.EqualTo(new[] { TransferStage.WaitingForPeer, TransferStage.Authenticating, TransferStage.Connecting, TransferStage.Transferring }), "both sides report every stage, in order");
            Assert.That(stages, Is.Ordered);
        }
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task SendAsync_NonSeekableStreamOfUnknownLength_ReceivedIntoStream(CancellationToken cancellationToken)
    {
        var data = RandomNumberGenerator.GetBytes(5 * 1024 * 1024 + 3);
        var destination = new MemoryStream();

        var (sent, received) = await TransferAsync(
            NewCroc(),
            SendContent.FromStream(new NonSeekableStream(new MemoryStream(data)), "piped.bin"),
            code => NewCroc().ReceiveToStreamAsync(code, destination, cancellationToken),
            cancellationToken);

        Assert.That(destination.ToArray().AsSpan().SequenceEqual(data), Is.True);
        Assert.That(received.Files.Single().RelativePath, Is.EqualTo("piped.bin"));
        Assert.That(received.Files.Single().Length, Is.EqualTo(data.Length));
        Assert.That(sent.Files.Single().Digest, Is.EqualTo(received.Files.Single().Digest));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task SendAsync_StreamToFolder_WritesNamedFile(CancellationToken cancellationToken)
    {
        var data = RandomNumberGenerator.GetBytes(100_000);
        var output = NewFolder();

        await TransferAsync(
            NewCroc(),
            SendContent.FromStream(new MemoryStream(data), "from-stream.dat"),
            code => NewCroc(o => o.WithOutputDirectory(output)).ReceiveAsync(code, cancellationToken),
            cancellationToken);

        Assert.That(File.ReadAllBytes(Path.Join(output, "from-stream.dat")), Is.EqualTo(data));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task SendTextAsync_Text_ArrivesInResultAndWritesNothing(CancellationToken cancellationToken)
    {
        var output = NewFolder();
        const string text = "meet at 6 — bring the 🐊";

        var (_, received) = await TransferAsync(
            NewCroc(),
            SendContent.FromText(text),
            code => NewCroc(o => o.WithOutputDirectory(output)).ReceiveAsync(code, cancellationToken),
            cancellationToken);

        Assert.That(received.Text, Is.EqualTo(text));
        Assert.That(Directory.GetFileSystemEntries(output), Is.Empty);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_WrongCode_BothSidesFailAuthenticationAndNothingIsWritten(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var output = NewFolder();
        WriteRandomFile(Path.Join(source, "secret.bin"), 1000);
        await using var operation = await NewCroc().StartSendAsync(SendContent.FromPath(Path.Join(source, "secret.bin")), cancellationToken: cancellationToken);
        var wrong = operation.Channel + "-wrong-words-here";

        var receive = NewCroc(o => o.WithOutputDirectory(output)).ReceiveAsync(wrong, cancellationToken);

        Assert.ThrowsAsync<CrocAuthenticationException>(async () => await receive);
        Assert.ThrowsAsync<CrocAuthenticationException>(async () => await operation.Completion);
        Assert.That(Directory.GetFileSystemEntries(output), Is.Empty);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_RecipientStartsFirst_WaitsForTheChannel(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var output = NewFolder();
        var data = WriteRandomFile(Path.Join(source, "late.bin"), 4096);
        var code = Croc.GenerateCode();

        var receive = NewCroc(o => o.WithOutputDirectory(output).WithChannelWaitTimeout(TimeSpan.FromSeconds(20))).ReceiveAsync(code, cancellationToken);
        await Task.Delay(300, cancellationToken); // let the recipient find no channel at least once
        var send = NewCroc().SendAsync(SendContent.FromPath(Path.Join(source, "late.bin")), new SendOptions { Code = code }, cancellationToken);
        await Task.WhenAll(receive, send);

        Assert.That(File.ReadAllBytes(Path.Join(output, "late.bin")), Is.EqualTo(data));
    }

    [Test]
    [CancelAfter(30_000)]
    public void ReceiveAsync_NoSenderEver_FailsWithNoChannelAfterTheWaitLimit(CancellationToken cancellationToken)
    {
        var croc = NewCroc(o => o.WithOutputDirectory(NewFolder()).WithChannelWaitTimeout(TimeSpan.FromMilliseconds(500)));

        var ex = Assert.ThrowsAsync<CrocRelayException>(() => croc.ReceiveAsync(Croc.GenerateCode(), cancellationToken));

        Assert.That(ex!.RelayCode, Is.EqualTo("no_channel"));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task StartSendAsync_CodeIsKnownBeforeTheRecipientArrives(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        WriteRandomFile(Path.Join(source, "f.bin"), 10);

        await using var operation = await NewCroc().StartSendAsync(SendContent.FromPath(Path.Join(source, "f.bin")), cancellationToken: cancellationToken);

        Assert.That(operation.Code, Does.StartWith(operation.Channel + "-"));
        Assert.That(operation.Completion.IsCompleted, Is.False, "nobody has joined yet");
        Assert.That(CrocNet.Codes.CodePhrase.TryParse(operation.Code, out _, out _), Is.True);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_ExistingFileAndFailPolicy_RefusesBeforeWritingAndSenderIsTold(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var output = NewFolder();
        WriteRandomFile(Path.Join(source, "new.bin"), 10);
        WriteRandomFile(Path.Join(source, "clash.txt"), 10);
        File.WriteAllText(Path.Join(output, "clash.txt"), "keep me");

        await using var operation = await NewCroc().StartSendAsync(SendContent.FromPaths([Path.Join(source, "new.bin"), Path.Join(source, "clash.txt")]), cancellationToken: cancellationToken);
        var receive = NewCroc(o => o.WithOutputDirectory(output)).ReceiveAsync(operation.Code, cancellationToken);

        Assert.That(Assert.ThrowsAsync<CrocTransferException>(async () => await receive)!.Code, Is.EqualTo(CrocErrorCode.FileExists));
        Assert.That(Assert.ThrowsAsync<CrocTransferException>(async () => await operation.Completion)!.Code, Is.EqualTo(CrocErrorCode.TransferRejected));
        Assert.That(Directory.GetFileSystemEntries(output), Is.EqualTo(new[] { Path.Join(output, "clash.txt") }));
        Assert.That(File.ReadAllText(Path.Join(output, "clash.txt")), Is.EqualTo("keep me"));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_OverwritePolicy_ReplacesExistingFile(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var output = NewFolder();
        var data = WriteRandomFile(Path.Join(source, "clash.txt"), 1000);
        File.WriteAllText(Path.Join(output, "clash.txt"), "old");

        await TransferAsync(
            NewCroc(),
            SendContent.FromPath(Path.Join(source, "clash.txt")),
            code => NewCroc(o => o.WithOutputDirectory(output).WithOverwrite(CrocOverwritePolicy.Overwrite)).ReceiveAsync(code, cancellationToken),
            cancellationToken);

        Assert.That(File.ReadAllBytes(Path.Join(output, "clash.txt")), Is.EqualTo(data));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_OfferDeclined_NothingWrittenAndSenderRejected(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var output = NewFolder();
        WriteRandomFile(Path.Join(source, "offer.bin"), 2048);
        TransferOffer? seen = null;

        await using var operation = await NewCroc().StartSendAsync(SendContent.FromPath(Path.Join(source, "offer.bin")), cancellationToken: cancellationToken);
        var receive = NewCroc(o => o.WithOutputDirectory(output)).ReceiveAsync(
            operation.Code,
            new ReceiveOptions
            {
                ConfirmOffer = (offer, _) =>
                {
                    seen = offer;
                    return ValueTask.FromResult(false);
                },
            },
            cancellationToken);

        Assert.That(Assert.ThrowsAsync<CrocTransferException>(async () => await receive)!.Code, Is.EqualTo(CrocErrorCode.TransferRejected));
        Assert.That(Assert.ThrowsAsync<CrocTransferException>(async () => await operation.Completion)!.Code, Is.EqualTo(CrocErrorCode.TransferRejected));
        Assert.That(seen!.Entries.Single().RelativePath, Is.EqualTo("offer.bin"));
        Assert.That(seen.TotalBytes, Is.EqualTo(2048));
        Assert.That(Directory.GetFileSystemEntries(output), Is.Empty);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Croc_OneInstanceRunsConcurrentSessions(CancellationToken cancellationToken)
    {
        var shared = NewCroc();
        var receiver = NewCroc(o => o.WithOverwrite(CrocOverwritePolicy.Fail));
        var runs = Enumerable.Range(0, 3).Select(async i =>
        {
            var source = NewFolder();
            var output = NewFolder();
            var data = WriteRandomFile(Path.Join(source, $"c{i}.bin"), 50_000 + i);
            await TransferAsync(
                shared,
                SendContent.FromPath(Path.Join(source, $"c{i}.bin")),
                code => receiver.ReceiveToStreamAsync(code, new MemoryStream(), cancellationToken),
                cancellationToken);
            return data.Length;
        });

        Assert.That(await Task.WhenAll(runs), Is.EqualTo(new[] { 50_000, 50_001, 50_002 }));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task SendAsync_StreamShorterThanAnnounced_BothSidesFailWithSourceChanged(CancellationToken cancellationToken)
    {
        var output = NewFolder();
        var data = RandomNumberGenerator.GetBytes(3 * 1024 * 1024);

        await using var operation = await NewCroc().StartSendAsync(SendContent.FromStream(new NonSeekableStream(new MemoryStream(data)), "short.bin", length: data.Length + 10), cancellationToken: cancellationToken);
        var receive = NewCroc(o => o.WithOutputDirectory(output)).ReceiveAsync(operation.Code, cancellationToken);

        Assert.That(Assert.CatchAsync<CrocException>(async () => await operation.Completion)!.Code, Is.EqualTo(CrocErrorCode.SourceChanged));
        Assert.That(Assert.CatchAsync<CrocException>(async () => await receive)!.Code, Is.AnyOf(CrocErrorCode.SourceChanged, CrocErrorCode.ConnectionLost));
        Assert.That(Directory.GetFileSystemEntries(output), Is.Empty);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_OutputFolderMissing_IsCreated(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var output = Path.Join(NewFolder(), "not", "yet");
        var data = WriteRandomFile(Path.Join(source, "f.bin"), 1000);

        await TransferAsync(
            NewCroc(),
            SendContent.FromPath(Path.Join(source, "f.bin")),
            code => NewCroc(o => o.WithOutputDirectory(output)).ReceiveAsync(code, cancellationToken),
            cancellationToken);

        Assert.That(File.ReadAllBytes(Path.Join(output, "f.bin")), Is.EqualTo(data));
    }

    [Test]
    [CancelAfter(60_000)]
    [Platform("Linux")]
    public async Task ReceiveAsync_OutputFolderUnwritable_FailsWithWriteFailedAndSenderIsTold(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        WriteRandomFile(Path.Join(source, "f.bin"), 1000);

        // Nobody, not even root, may create folders in /proc.
        await using var operation = await NewCroc().StartSendAsync(SendContent.FromPath(Path.Join(source, "f.bin")), cancellationToken: cancellationToken);
        var receive = NewCroc(o => o.WithOutputDirectory("/proc/croc-cannot-write-here")).ReceiveAsync(operation.Code, cancellationToken);

        Assert.That(Assert.CatchAsync<CrocException>(async () => await receive)!.Code, Is.EqualTo(CrocErrorCode.WriteFailed));
        Assert.CatchAsync<CrocException>(async () => await operation.Completion);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task SendAsync_SlowRecipientDrainsLongerThanSendersIdleTimeout_StillSucceeds(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var output = NewFolder();
        var data = WriteRandomFile(Path.Join(source, "slow.bin"), 48 * 1024 * 1024);
        var receiver = NewCroc(o =>
        {
            o.WithOutputDirectory(output);
            o.UseTransport(new InterceptingTransport((stream, _) => new TamperingStream(stream, TamperingStream.Mode.Slow, 0, span: 8 * 1024)));
        });

        // The sender finishes writing while megabytes still sit in socket buffers; the recipient's progress
        // reports are what keep the sender's 2-second watchdog from calling that silence a dead peer.
        await TransferAsync(
            NewCroc(o => o.WithIdleTimeout(TimeSpan.FromSeconds(2))),
            SendContent.FromPath(Path.Join(source, "slow.bin")),
            code => receiver.ReceiveAsync(code, cancellationToken),
            cancellationToken);

        Assert.That(File.ReadAllBytes(Path.Join(output, "slow.bin")).AsSpan().SequenceEqual(data), Is.True);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_TargetAppearsDuringTransfer_RollsBackEveryFileItPlaced(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var output = NewFolder();
        WriteRandomFile(Path.Join(source, "pack", "a.txt"), 100);
        WriteRandomFile(Path.Join(source, "pack", "b.txt"), 100);

        // The offer is shown after the checks; a file that appears at a target afterwards must not be replaced,
        // and the files renamed into place before it was found must be taken back.
        var receiver = NewCroc(o => o.WithOutputDirectory(output));
        var confirm = new ReceiveOptions
        {
            ConfirmOffer = (_, _) =>
            {
                Directory.CreateDirectory(Path.Join(output, "pack"));
                File.WriteAllText(Path.Join(output, "pack", "b.txt"), "someone else's");
                return ValueTask.FromResult(true);
            },
        };
        await using var operation = await NewCroc().StartSendAsync(SendContent.FromPath(Path.Join(source, "pack")), cancellationToken: cancellationToken);

        Assert.That(Assert.CatchAsync<CrocException>(() => receiver.ReceiveAsync(operation.Code, confirm, cancellationToken))!.Code, Is.EqualTo(CrocErrorCode.WriteFailed));
        Assert.That(Snapshot(output).Files.Keys, Is.EqualTo(new[] { "pack/b.txt" }));
        Assert.That(File.ReadAllText(Path.Join(output, "pack", "b.txt")), Is.EqualTo("someone else's"));
    }

    private sealed class SyncProgress(List<TransferProgress> reports) : IProgress<TransferProgress>
    {
        public void Report(TransferProgress value)
        {
            lock (reports)
            {
                reports.Add(value);
            }
        }
    }

    private sealed class NonSeekableStream(Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, Math.Min(count, 70_000));
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

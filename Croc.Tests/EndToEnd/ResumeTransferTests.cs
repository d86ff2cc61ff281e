using CrocNet.Files;
using CrocNet.Tests.Transport;

namespace CrocNet.Tests.EndToEnd;

/// <summary>A receive that fails part-way keeps what arrived; a later transfer of the same content fetches only the rest.</summary>
public class ResumeTransferTests : TransferTestBase
{
    private const int Size = 16 * 1024 * 1024;
    private const int ChunkSize = 1024 * 1024;
    private const int Lanes = 4;
    private static readonly DateTime Mtime = new(2026, 11, 20, 12, 0, 0, DateTimeKind.Utc);

    [Test]
    [CancelAfter(90_000)]
    public async Task ReceiveAsync_AfterAnInterruptedReceive_SendsOnlyTheMissingChunksAndVerifies(CancellationToken cancellationToken)
    {
        var (source, data) = NewSource("photos.tar");
        var output = NewFolder();

        await InterruptAsync(source, output, cancellationToken);
        var left = Directory.GetFiles(output).Select(Path.GetFileName).ToList();
        Assert.That(left, Has.All.Matches<string>(n => PartialNames.IsOurs(n)), "nothing under a final name");
        Assert.That(left, Has.Some.EndsWith(".partial").And.Some.EndsWith(".journal"), "the partial and its journal are kept");

        var sent = new LastProgress();
        var received = new LastProgress();
        var (sendResult, receiveResult) = await TransferAsync(
            NewCroc(), SendContent.FromPath(source), code => NewCroc().ReceiveAsync(code, new ReceiveOptions { OutputDirectory = output, Progress = received }, cancellationToken), cancellationToken, new SendOptions { Progress = sent });

        var resumed = receiveResult.ResumedBytes;
        TestContext.Out.WriteLine($"resumed {resumed} of {Size} bytes; the sender moved {sent.Value.BytesTransferred}");
        Assert.That(File.ReadAllBytes(Path.Join(output, "photos.tar")), Is.EqualTo(data), "byte-exact");
        Assert.That(resumed, Is.GreaterThan(0).And.LessThan(Size));
        Assert.That(sent.Value.BytesTransferred, Is.LessThanOrEqualTo(Size - resumed + (Lanes * ChunkSize)), "bytes sent ≤ missing + one chunk per lane");
        Assert.That(sent.Value.BytesTransferred + sent.Value.ResumedBytes, Is.EqualTo(Size), "every chunk either moved or was resumed");
        Assert.That(sendResult.ResumedBytes, Is.EqualTo(resumed), "both sides agree on what was resumed");
        Assert.That(sendResult.Files[0].Digest, Is.EqualTo(receiveResult.Files[0].Digest));
        Assert.That(received.Value.ResumedBytes, Is.EqualTo(resumed), "progress reports it too");
        Assert.That(Directory.GetFiles(output).Select(Path.GetFileName), Is.EqualTo(new[] { "photos.tar" }), "partial renamed, journal gone");
    }

    [Test]
    [CancelAfter(90_000)]
    public async Task ReceiveAsync_RecipientCancelledPartWay_KeepsPartialAndResumes(CancellationToken cancellationToken)
    {
        var (source, data) = NewSource("big.bin");
        var output = NewFolder();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var slow = NewCroc(o => o.UseTransport(new InterceptingTransport((stream, _) => new TamperingStream(stream, TamperingStream.Mode.Slow, 0, span: 64 * 1024))));
        await using (var operation = await NewCroc().StartSendAsync(SendContent.FromPath(source), cancellationToken: cancellationToken))
        {
            var receive = slow.ReceiveAsync(operation.Code, new ReceiveOptions { OutputDirectory = output, Progress = new CancelAt(cancel, 4 * ChunkSize) }, cancel.Token);
            Assert.CatchAsync<OperationCanceledException>(async () => await receive);
            Assert.CatchAsync<CrocException>(async () => await operation.Completion);
        }

        Assert.That(Directory.GetFiles(output).Select(Path.GetFileName), Has.Some.EndsWith(".journal"));

        var sent = new LastProgress();
        var (_, receiveResult) = await TransferAsync(
            NewCroc(), SendContent.FromPath(source), code => NewCroc().ReceiveAsync(code, new ReceiveOptions { OutputDirectory = output }, cancellationToken), cancellationToken, new SendOptions { Progress = sent });

        Assert.That(File.ReadAllBytes(Path.Join(output, "big.bin")), Is.EqualTo(data));
        Assert.That(receiveResult.ResumedBytes, Is.GreaterThanOrEqualTo(2 * ChunkSize), "what arrived before the cancel was kept");
        Assert.That(sent.Value.BytesTransferred, Is.LessThanOrEqualTo(Size - receiveResult.ResumedBytes + (Lanes * ChunkSize)));
    }

    [Test]
    [CancelAfter(90_000)]
    public async Task ReceiveAsync_KeptChunkCorruptedOnDisk_FetchedAgainAndFileVerifies(CancellationToken cancellationToken)
    {
        var (source, data) = NewSource("photos.tar");
        var output = NewFolder();
        await InterruptAsync(source, output, cancellationToken);
        var partial = Directory.GetFiles(output, "*.partial").Single();
        var firstKept = FirstJournaledChunk(partial);
        using (var handle = File.OpenHandle(partial, FileMode.Open, FileAccess.ReadWrite))
        {
            // Someone (a disk, a program) changes a byte of a kept chunk between the two transfers.
            var one = new byte[1];
            RandomAccess.Read(handle, one, (firstKept * ChunkSize) + 100);
            one[0] ^= 0x5A;
            RandomAccess.Write(handle, one, (firstKept * ChunkSize) + 100);
        }

        var keptBefore = JournaledChunks(partial);
        var sent = new LastProgress();
        var (_, receiveResult) = await TransferAsync(
            NewCroc(), SendContent.FromPath(source), code => NewCroc().ReceiveAsync(code, new ReceiveOptions { OutputDirectory = output }, cancellationToken), cancellationToken, new SendOptions { Progress = sent });

        Assert.That(File.ReadAllBytes(Path.Join(output, "photos.tar")), Is.EqualTo(data), "the changed chunk was fetched again");
        Assert.That(receiveResult.ResumedBytes, Is.EqualTo((keptBefore - 1) * (long)ChunkSize), "every kept chunk but the changed one was trusted");
        Assert.That(sent.Value.BytesTransferred, Is.LessThanOrEqualTo(Size - receiveResult.ResumedBytes + (Lanes * ChunkSize)));
    }

    [Test]
    [CancelAfter(90_000)]
    public async Task ReceiveAsync_SameNameDifferentContent_StartsAfresh(CancellationToken cancellationToken)
    {
        var (source, _) = NewSource("photos.tar");
        var output = NewFolder();
        await InterruptAsync(source, output, cancellationToken);

        // Same name, size and time, other bytes: the identity matches, every claim fails the sender's check.
        var other = System.Security.Cryptography.RandomNumberGenerator.GetBytes(Size);
        File.WriteAllBytes(source, other);
        File.SetLastWriteTimeUtc(source, Mtime);
        var sent = new LastProgress();
        var (_, result) = await TransferAsync(
            NewCroc(), SendContent.FromPath(source), code => NewCroc().ReceiveAsync(code, new ReceiveOptions { OutputDirectory = output }, cancellationToken), cancellationToken, new SendOptions { Progress = sent });

        Assert.That(File.ReadAllBytes(Path.Join(output, "photos.tar")), Is.EqualTo(other));
        Assert.That(sent.Value.BytesTransferred, Is.EqualTo(Size), "nothing of the old content was used");
        Assert.That(result.ResumedBytes, Is.Zero);
        Assert.That(Directory.GetFiles(output).Select(Path.GetFileName), Is.EqualTo(new[] { "photos.tar" }));

        // Another time too: the identity differs, so the earlier partial is not even looked at.
        var (source2, third) = NewSource("photos.tar", Mtime.AddMinutes(1));
        var output2 = NewFolder();
        await InterruptAsync(source, output2, cancellationToken);
        var sent2 = new LastProgress();
        var (_, result2) = await TransferAsync(
            NewCroc(), SendContent.FromPath(source2), code => NewCroc().ReceiveAsync(code, new ReceiveOptions { OutputDirectory = output2 }, cancellationToken), cancellationToken, new SendOptions { Progress = sent2 });
        Assert.That(File.ReadAllBytes(Path.Join(output2, "photos.tar")), Is.EqualTo(third));
        Assert.That(result2.ResumedBytes, Is.Zero);
        Assert.That(sent2.Value.BytesTransferred, Is.EqualTo(Size));
    }

    [Test]
    [CancelAfter(90_000)]
    public async Task ReceiveAsync_DiscardPartial_DeletesKeptAndFetchesEverything(CancellationToken cancellationToken)
    {
        var (source, data) = NewSource("photos.tar");
        var output = NewFolder();
        await InterruptAsync(source, output, cancellationToken);

        var sent = new LastProgress();
        var (_, result) = await TransferAsync(
            NewCroc(), SendContent.FromPath(source), code => NewCroc().ReceiveAsync(code, new ReceiveOptions { OutputDirectory = output, DiscardPartial = true }, cancellationToken), cancellationToken, new SendOptions { Progress = sent });

        Assert.That(File.ReadAllBytes(Path.Join(output, "photos.tar")), Is.EqualTo(data));
        Assert.That(result.ResumedBytes, Is.Zero);
        Assert.That(sent.Value.BytesTransferred, Is.EqualTo(Size));
        Assert.That(Directory.GetFiles(output).Select(Path.GetFileName), Is.EqualTo(new[] { "photos.tar" }));
    }

    [Test]
    [CancelAfter(90_000)]
    public async Task ReceiveAsync_ResumeOff_PartialsDeletedOnFailure(CancellationToken cancellationToken)
    {
        var (source, _) = NewSource("photos.tar");
        var output = NewFolder();

        await InterruptAsync(source, output, cancellationToken, new ReceiveOptions { Resume = false });

        Assert.That(Directory.GetFileSystemEntries(output), Is.Empty, "without resume, a failure keeps nothing");
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_PartialMaxAge_RemovesOnlyOldLeftoversOfOurOwn(CancellationToken cancellationToken)
    {
        var source = Path.Join(NewFolder(), "pack");
        WriteRandomFile(Path.Join(source, "small.txt"), 1000);
        WriteRandomFile(Path.Join(source, "sub", "small.txt"), 1000);
        var output = NewFolder();
        Directory.CreateDirectory(Path.Join(output, "pack", "sub"));
        var old = DateTime.UtcNow.AddDays(-3);
        string[] ours = [".croc-1111111111111111.journal", "pack/.croc-0123456789abcdef.partial", "pack/.croc-0123456789abcdef.journal", "pack/sub/.croc-fedcba9876543210-3.partial"];
        string[] others = ["pack/.croc-0123456789abcdef.partial.bak", "pack/keep.partial", "pack/.croc-notours.journal"];
        foreach (var name in ours.Concat(others))
        {
            var path = Path.Join(output, name);
            File.WriteAllBytes(path, [1, 2, 3]);
            File.SetLastWriteTimeUtc(path, old);
        }

        var young = Path.Join(output, "pack", ".croc-aaaaaaaaaaaaaaaa.partial");
        File.WriteAllBytes(young, [1]);
        var content = SendContent.FromPath(source);

        await TransferAsync(NewCroc(), content, code => NewCroc().ReceiveAsync(code, new ReceiveOptions { OutputDirectory = output, PartialMaxAge = TimeSpan.FromDays(2) }, cancellationToken), cancellationToken);

        Assert.That(ours.Select(n => File.Exists(Path.Join(output, n))), Has.All.False, "old leftovers of ours are removed");
        Assert.That(others.Select(n => File.Exists(Path.Join(output, n))), Has.All.True, "other names are never touched");
        Assert.That(File.Exists(young), Is.True, "a young partial (perhaps another receive's) stays");
    }

    [Test]
    public void ReceiveAsync_NonPositivePartialMaxAge_Refused()
    {
        var croc = NewCroc();
        Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => croc.ReceiveAsync("1234-alpha-beta-gamma", new ReceiveOptions { PartialMaxAge = TimeSpan.Zero }));
        Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => croc.ReceiveAsync("1234-alpha-beta-gamma", new ReceiveOptions { PartialMaxAge = TimeSpan.FromSeconds(-5) }));
    }

    private (string Path, byte[] Data) NewSource(string name, DateTime? mtime = null)
    {
        var path = Path.Join(NewFolder(), name);
        var data = WriteRandomFile(path, Size);
        File.SetLastWriteTimeUtc(path, mtime ?? Mtime);
        return (path, data);
    }

    /// <summary>A receive whose sender's connections are each cut after ~3 MB: it fails with a typed error part-way.</summary>
    private async Task InterruptAsync(string source, string output, CancellationToken cancellationToken, ReceiveOptions? options = null)
    {
        // Reconnecting off on both sides: a cut leg would otherwise come back and the transfer complete.
        var cutting = NewCroc(o => o.WithReconnect(0, TimeSpan.FromSeconds(1)).UseTransport(new InterceptingTransport((stream, lane) => new CuttingWriteStream(stream, 3_000_000 + lane))));
        await using var operation = await cutting.StartSendAsync(SendContent.FromPath(source), cancellationToken: cancellationToken);
        var receive = NewCroc(o => o.WithReconnect(0, TimeSpan.FromSeconds(1))).ReceiveAsync(operation.Code, new ReceiveOptions { OutputDirectory = output, Resume = options?.Resume ?? true }, cancellationToken);
        Assert.That(Assert.CatchAsync<CrocException>(async () => await receive)!.Code, Is.AnyOf(CrocErrorCode.ConnectionLost, CrocErrorCode.DataTampered));
        Assert.CatchAsync<Exception>(async () => await operation.Completion);
        Assert.That(File.Exists(Path.Join(output, Path.GetFileName(source))), Is.False, "never a file under its final name");
    }

    private static long FirstJournaledChunk(string partial) => ReadJournal(partial).Keys.First();

    private static long JournaledChunks(string partial) => ReadJournal(partial).Count;

    private static SortedDictionary<long, byte[]> ReadJournal(string partial)
    {
        var journal = File.ReadAllBytes(Path.ChangeExtension(partial, ".journal"));
        Assert.That(ResumeJournal.TryRead(journal, journal.AsSpan(0, ResumeJournal.HeaderSize), Size / ChunkSize, CrocHashAlgorithm.XxHash128, out var chunks), Is.True);
        Assert.That(chunks, Is.Not.Empty);
        return chunks;
    }

    private sealed class LastProgress : IProgress<TransferProgress>
    {
        private readonly Lock _gate = new();
        private TransferProgress _value;

        public TransferProgress Value
        {
            get
            {
                lock (_gate)
                {
                    return _value;
                }
            }
        }

        public void Report(TransferProgress value)
        {
            lock (_gate)
            {
                if (value.BytesTransferred >= _value.BytesTransferred)
                {
                    _value = value;
                }
            }
        }
    }

    private sealed class CancelAt(CancellationTokenSource cancel, long threshold) : IProgress<TransferProgress>
    {
        public void Report(TransferProgress value)
        {
            if (value.BytesTransferred >= threshold)
            {
                cancel.Cancel();
            }
        }
    }
}

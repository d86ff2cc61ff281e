using System.Collections.Concurrent;
using System.Security.Cryptography;
using CrocNet.Relay;
using CrocNet.Tests.EndToEnd;
using CrocNet.Tests.Rendezvous;

namespace CrocNet.Tests.Session;

/// <summary>One <see cref="Croc"/> as an application holds it: a singleton, every call with its own options.</summary>
public class SharedInstanceTests : TransferTestBase
{
    protected override void ConfigureRelay(CrocRelayOptions relay)
    {
        base.ConfigureRelay(relay);
        relay.Ports = [0, 0];
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task OneInstance_TwentyConcurrentTransfers_EachWithItsOwnCodeFolderAndProgress(CancellationToken cancellationToken)
    {
        var croc = NewCroc();
        var source = NewFolder();
        const int count = 20;
        var outputs = new string[count];
        var data = new byte[count][];
        var progress = new ConcurrentBag<TransferProgress>[count];
        var transfers = new List<Task<(TransferResult Sent, TransferResult Received)>>();
        for (var i = 0; i < count; i++)
        {
            outputs[i] = NewFolder();
            data[i] = WriteRandomFile(Path.Join(source, $"t{i}", $"file{i}.bin"), 100_000 + (i * 4099));
            progress[i] = [];
            transfers.Add(RunOneAsync(i));
        }

        try
        {
            await Task.WhenAll(transfers).WaitAsync(TimeSpan.FromSeconds(90), cancellationToken);
        }
        catch (TimeoutException)
        {
            for (var i = 0; i < count; i++)
            {
                TestContext.Out.WriteLine($"{i}: {transfers[i].Status} last={string.Join(",", progress[i].Select(p => p.Stage).Distinct())}");
                if (transfers[i].IsCanceled)
                {
                    try
                    {
                        await transfers[i];
                    }
                    catch (Exception ex)
                    {
                        TestContext.Out.WriteLine(ex.ToString());
                    }
                }
            }

            throw;
        }

        var results = await Task.WhenAll(transfers);

        for (var i = 0; i < count; i++)
        {
            Assert.That(File.ReadAllBytes(Path.Join(outputs[i], $"file{i}.bin")), Is.EqualTo(data[i]), $"transfer {i}");
            Assert.That(Directory.GetFiles(outputs[i]), Has.Length.EqualTo(1), $"transfer {i} wrote only its own file");
            Assert.That(results[i].Received.Files.Single().Digest, Is.EqualTo(results[i].Sent.Files.Single().Digest));
            // Progress went to this call's own sink only: its totals are this file's.
            Assert.That(progress[i].Where(p => p.TotalBytes > 0).Select(p => p.TotalBytes).Distinct(), Is.EqualTo(new[] { (long)data[i].Length }), $"transfer {i}");
        }

        async Task<(TransferResult, TransferResult)> RunOneAsync(int i)
        {
            var content = SendContent.FromPath(Path.Join(source, $"t{i}", $"file{i}.bin"));
            var receive = new ReceiveOptions { OutputDirectory = outputs[i], Progress = new SyncProgress(progress[i]) };
            if (i % 2 == 0)
            {
                // A code chosen by the caller, one call for the whole send.
                var code = Croc.GenerateCode();
                var sent = croc.SendAsync(content, new SendOptions { Code = code }, cancellationToken);
                var received = croc.ReceiveAsync(code, receive, cancellationToken);
                return (await sent, await received);
            }

            await using var operation = await croc.StartSendAsync(content, cancellationToken);
            var got = await croc.ReceiveAsync(operation.Code, receive, cancellationToken);
            return (await operation.Completion, got);
        }
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task OneInstance_TwoConcurrentReceives_EachOfferDecidedByItsOwnCallback(CancellationToken cancellationToken)
    {
        var croc = NewCroc();
        var source = NewFolder();
        WriteRandomFile(Path.Join(source, "a.bin"), 5000);
        WriteRandomFile(Path.Join(source, "b.bin"), 6000);
        var (acceptOut, declineOut) = (NewFolder(), NewFolder());
        await using var first = await croc.StartSendAsync(SendContent.FromPath(Path.Join(source, "a.bin")), cancellationToken);
        await using var second = await croc.StartSendAsync(SendContent.FromPath(Path.Join(source, "b.bin")), cancellationToken);
        string? seenByDecliner = null;

        var accepted = croc.ReceiveAsync(first.Code, new ReceiveOptions { OutputDirectory = acceptOut, ConfirmOffer = (_, _) => ValueTask.FromResult(true) }, cancellationToken);
        var declined = croc.ReceiveAsync(
            second.Code,
            new ReceiveOptions
            {
                OutputDirectory = declineOut,
                ConfirmOffer = (offer, _) =>
                {
                    seenByDecliner = offer.Entries.Single().RelativePath;
                    return ValueTask.FromResult(false);
                },
            },
            cancellationToken);

        Assert.That((await accepted).Files.Single().RelativePath, Is.EqualTo("a.bin"));
        Assert.That(Assert.ThrowsAsync<CrocTransferException>(async () => await declined)!.Code, Is.EqualTo(CrocErrorCode.TransferRejected));
        Assert.That(seenByDecliner, Is.EqualTo("b.bin"), "each callback saw its own offer");
        Assert.That(Directory.EnumerateFileSystemEntries(declineOut), Is.Empty);
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task SendOperation_CancelAfterDispose_IsHarmless(CancellationToken cancellationToken)
    {
        var operation = await NewCroc().StartSendAsync(SendContent.FromText("never received"), cancellationToken);

        await operation.DisposeAsync();

        Assert.That(operation.Completion.IsCanceled, Is.True, "disposing an unfinished send cancels it");
        Assert.DoesNotThrowAsync(() => operation.CancelAsync());
    }

    [Test]
    [CancelAfter(10_000)]
    public void SendAsync_WithoutCode_ThrowsAtOnceWithoutContactingTheRelay(CancellationToken cancellationToken)
    {
        var requests = 0;
        var croc = Croc.New(o => o.WithRelay(Relay.BaseAddress).UseHttpMessageHandler(new CountingHandler(() => Interlocked.Increment(ref requests))));

        foreach (var content in new[] { SendContent.FromText("hello"), SendContent.FromStream(new MemoryStream([1, 2, 3]), "x.bin") })
        {
            var ex = Assert.ThrowsAsync<ArgumentException>(() => croc.SendAsync(content, cancellationToken: cancellationToken));
            Assert.That(ex!.Message, Does.StartWith("SendAsync needs SendOptions.Code"));
            Assert.That(ex.ParamName, Is.EqualTo("options"));
        }

        Assert.That(requests, Is.Zero);
    }

    [Test]
    [CancelAfter(10_000)]
    public void StartSendAsync_MissingPath_TypedSourceNotFoundBeforeAnyRequest(CancellationToken cancellationToken)
    {
        var requests = 0;
        var croc = Croc.New(o => o.WithRelay(Relay.BaseAddress).UseHttpMessageHandler(new CountingHandler(() => Interlocked.Increment(ref requests))));
        var missing = Path.Join(NewFolder(), "not-there.txt");

        var ex = Assert.ThrowsAsync<CrocTransferException>(() => croc.StartSendAsync(SendContent.FromPath(missing), cancellationToken));

        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.SourceNotFound));
        Assert.That(ex.Message, Is.EqualTo($"There is no file or folder at '{missing}' to send."));
        Assert.That(requests, Is.Zero);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_ComputeSha256_GivesWhatSha256sumPrints(CancellationToken cancellationToken)
    {
        var croc = NewCroc();
        var source = NewFolder();
        var output = NewFolder();
        var big = WriteRandomFile(Path.Join(source, "pack", "big.bin"), (3 * 1024 * 1024) + 5);
        var small = WriteRandomFile(Path.Join(source, "pack", "sub", "small.bin"), 7);
        File.WriteAllBytes(Path.Join(source, "pack", "empty.bin"), []);

        var (sent, received) = await TransferAsync(
            croc,
            SendContent.FromPath(Path.Join(source, "pack")),
            code => croc.ReceiveAsync(code, new ReceiveOptions { OutputDirectory = output, ComputeSha256 = true }, cancellationToken),
            cancellationToken);

        var byName = received.Files.ToDictionary(f => f.RelativePath, f => f.Sha256);
        Assert.That(byName["pack/big.bin"], Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(big))));
        Assert.That(byName["pack/sub/small.bin"], Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(small))));
        Assert.That(byName["pack/empty.bin"], Is.EqualTo("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        Assert.That(sent.Files.Select(f => f.Sha256), Is.All.Null, "the sender was not asked");
        Assert.That(received.Files.Single(f => f.RelativePath == "pack/big.bin").Digest, Is.Not.EqualTo(byName["pack/big.bin"]), "the transfer digest is a different thing");
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveToStreamAsync_ComputeSha256_HashesWhatTheStreamGot(CancellationToken cancellationToken)
    {
        var croc = NewCroc();
        var data = RandomNumberGenerator.GetBytes((2 * 1024 * 1024) + 11);
        var destination = new MemoryStream();

        var (_, received) = await TransferAsync(
            croc,
            SendContent.FromStream(new MemoryStream(data), "piped.bin"),
            code => croc.ReceiveToStreamAsync(code, destination, new ReceiveOptions { ComputeSha256 = true }, cancellationToken),
            cancellationToken);

        Assert.That(destination.ToArray(), Is.EqualTo(data));
        Assert.That(received.Files.Single().Sha256, Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(data))));
    }

    private sealed class SyncProgress(ConcurrentBag<TransferProgress> reports) : IProgress<TransferProgress>
    {
        public void Report(TransferProgress value) => reports.Add(value);
    }
}

using System.Diagnostics;
using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Text.Json;
using CrocNet.Crypto;
using CrocNet.Files;
using CrocNet.Transfer;

namespace CrocNet.Tests.Transfer;

/// <summary>
/// The data plane alone (framing, <see cref="FileSender"/>, <see cref="FileReceiver"/>) over in-memory pipes:
/// no relay, no socket, so scale and hostile-peer cases run in seconds. Files are real, in temp folders.
/// </summary>
public class FileTransferTests
{
    private readonly TempFolders _folders = new("croc-plane-");

    [TearDown]
    public void DeleteFolders() => _folders.DeleteAll();

    private string NewFolder() => _folders.New();

    /// <summary>A plan of <paramref name="count"/> empty files (no source on disk: an empty file is never read).</summary>
    private static SendPlan EmptyFiles(int count, Func<int, string> name)
    {
        var manifest = new Manifest { ChunkSize = FileSender.ChunkSize, Hash = "xxh128" };
        var sources = new List<SendSource>(count);
        for (var i = 0; i < count; i++)
        {
            manifest.Entries.Add(new ManifestEntry { Path = name(i), Size = 0, Mtime = 1764120000000 });
            sources.Add(new SendSource(null, null));
        }

        return new SendPlan(manifest, sources);
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task RunAsync_MillionEntryManifestOver64MiB_OfferedQuicklyWithBoundedMemory(CancellationToken cancellationToken)
    {
        // 1,000,000 entries with ordinary names: ~87 MB of manifest on the wire (the old 64 MiB limit refused it).
        var plan = EmptyFiles(1_000_000, i => $"photos/album-{i / 1000:D4}/IMG_{i:D7}.jpg");
        var wire = JsonSerializer.SerializeToUtf8Bytes(plan.Manifest, TransferJsonContext.Default.Manifest).Length;
        Assert.That(wire, Is.GreaterThan(64 * 1024 * 1024));
        using var pair = new PlanePair(TimeSpan.FromSeconds(60));
        var baseline = GC.GetTotalMemory(forceFullCollection: true);
        var clock = Stopwatch.StartNew();
        TimeSpan toOffer = default;
        long heldAtOffer = 0;
        var offered = 0;

        var send = FileSender.RunAsync(plan, pair.Sender, cancellationToken);
        var receive = FileReceiver.RunAsync(pair.Recipient, new ReceiveTarget
        {
            OutputDirectory = Path.Join(NewFolder(), "out"),
            ConfirmOffer = (offer, _) =>
            {
                toOffer = clock.Elapsed;
                heldAtOffer = GC.GetTotalMemory(forceFullCollection: true) - baseline;
                offered = offer.FileCount;
                return ValueTask.FromResult(false);
            },
        }, cancellationToken);

        Assert.That(Assert.ThrowsAsync<CrocTransferException>(async () => await receive)!.Code, Is.EqualTo(CrocErrorCode.TransferRejected));
        Assert.That(Assert.ThrowsAsync<CrocTransferException>(async () => await send)!.Code, Is.EqualTo(CrocErrorCode.TransferRejected));
        Assert.That(offered, Is.EqualTo(1_000_000));
        TestContext.Out.WriteLine($"manifest {wire:N0} B; offer after {toOffer.TotalSeconds:F1} s; heap held at the offer (both sides) {heldAtOffer / (1024 * 1024)} MiB");
        // Both sides live in this process: the sender's own plan state is in the figure too.
        Assert.That(heldAtOffer, Is.LessThan(700L * 1024 * 1024), "the recipient builds per-entry state only after the offer is accepted");
        Assert.That(toOffer, Is.LessThan(TimeSpan.FromSeconds(60)));
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task RunAsync_FiftyThousandFiles_TrailerSpansFramesAndEveryFileIsVerified(CancellationToken cancellationToken)
    {
        // More than ~42,000 files overflowed the single 4 MiB trailer frame; 50,000 need four pieces of 16,384 lines.
        var plan = EmptyFiles(50_000, i => $"d{i / 10_000}/f{i:D6}");
        var target = NewFolder();
        using var pair = new PlanePair(TimeSpan.FromSeconds(60));

        var send = FileSender.RunAsync(plan, pair.Sender, cancellationToken);
        var receive = FileReceiver.RunAsync(pair.Recipient, new ReceiveTarget { OutputDirectory = target }, cancellationToken);
        await Task.WhenAll(send, receive);

        Assert.That((await receive).Files, Has.Count.EqualTo(50_000));
        Assert.That((await send).Select(f => f.Digest).Distinct().Single(), Is.EqualTo((await receive).Files[49_999].Digest));
        Assert.That(Directory.EnumerateFiles(target, "*", SearchOption.AllDirectories).Count(), Is.EqualTo(50_000));
        Assert.That(File.Exists(Path.Join(target, "d4", "f049999")), Is.True);
    }

    [Test]
    [Explicit("1,000,000 real empty files written to disk: about 100 s on a shared 2-core machine; .ci/run runs it after the suite")]
    [CancelAfter(600_000)]
    public async Task RunAsync_MillionFiles_AllArriveAndVerify(CancellationToken cancellationToken)
    {
        var plan = EmptyFiles(1_000_000, i => $"photos/album-{i / 1000:D4}/IMG_{i:D7}.jpg");
        var target = NewFolder();
        using var pair = new PlanePair(TimeSpan.FromSeconds(60));
        var clock = Stopwatch.StartNew();

        var send = FileSender.RunAsync(plan, pair.Sender, cancellationToken);
        var receive = FileReceiver.RunAsync(pair.Recipient, new ReceiveTarget { OutputDirectory = target }, cancellationToken);
        await Task.WhenAll(send, receive);

        TestContext.Out.WriteLine($"1,000,000 files in {clock.Elapsed.TotalSeconds:F1} s");
        Assert.That((await receive).Files, Has.Count.EqualTo(1_000_000));
        Assert.That(Directory.EnumerateFiles(target, "*", SearchOption.AllDirectories).Count(), Is.EqualTo(1_000_000));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task RunAsync_ChunkBeyondWhatTheFileSystemHolds_TypedProtocolErrorAndSenderIsTold(CancellationToken cancellationToken)
    {
        // The manifest rules allow a 1 PiB file; no common file system holds a byte at 512 TiB.
        var target = NewFolder();
        using var pair = new PlanePair(TimeSpan.FromSeconds(10));
        var rogue = pair.RawSender;
        var receive = FileReceiver.RunAsync(pair.Recipient, new ReceiveTarget { OutputDirectory = target }, cancellationToken);
        await rogue.SendManifestAsync(new Manifest { ChunkSize = FileSender.ChunkSize, Hash = "xxh128", Entries = [new ManifestEntry { Path = "huge.bin", Size = 1L << 50 }] }, cancellationToken);
        Assert.That((await rogue.ReadAsync(cancellationToken)).Type, Is.EqualTo(FrameType.Accept));

        await rogue.SendChunkAsync(0, 1L << 49, new byte[FileSender.ChunkSize], cancellationToken);

        var error = Assert.ThrowsAsync<CrocProtocolException>(async () => await receive);
        Assert.That(error!.Code, Is.EqualTo(CrocErrorCode.ProtocolViolation));
        var told = await rogue.ReadPastProgressAsync(cancellationToken);
        Assert.That(told.Type, Is.EqualTo(FrameType.Abort));
        Assert.That(JsonSerializer.Deserialize(told.Payload.Span, TransferJsonContext.Default.AbortMessage)!.Code, Is.EqualTo("protocol"));
        Assert.That(Directory.EnumerateFileSystemEntries(target), Is.Empty, "the partial file is removed");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task RunAsync_RecipientClaimsProgressWithoutReading_SenderTimesOut(CancellationToken cancellationToken)
    {
        var idle = TimeSpan.FromSeconds(1);
        using var pair = new PlanePair(idle);
        var data = new byte[16 * 1024 * 1024];
        var manifest = new Manifest { ChunkSize = FileSender.ChunkSize, Hash = "xxh128", Entries = [new ManifestEntry { Path = "big.bin", Size = data.Length }] };
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, pair.Sender.IdleToken);
        var send = FileSender.RunAsync(new SendPlan(manifest, [new SendSource(null, new MemoryStream(data))]), pair.Sender, linked.Token);

        // A hostile recipient: accepts, then claims ever more progress twice a second and never reads the data.
        var rogue = pair.RawRecipient;
        await rogue.ReadManifestAsync(cancellationToken);
        await rogue.WriteAsync(FrameType.Accept, new AcceptMessage { Accept = true }, TransferJsonContext.Default.AcceptMessage, cancellationToken);
        using var claims = new CancellationTokenSource();
        var claiming = Task.Run(async () =>
        {
            for (long claimed = 1024 * 1024; !claims.IsCancellationRequested; claimed += 1024 * 1024)
            {
                await rogue.WriteAsync(FrameType.Progress, new ProgressMessage { Bytes = claimed }, TransferJsonContext.Default.ProgressMessage, claims.Token);
                await Task.Delay(TimeSpan.FromMilliseconds(200), claims.Token);
            }
        }, CancellationToken.None);

        var clock = Stopwatch.StartNew();
        Assert.That(async () => await send, Throws.InstanceOf<OperationCanceledException>());
        await claims.CancelAsync();
        Assert.That(pair.Sender.TimedOut, Is.True, "the idle watchdog cut the sender (Croc maps this to CrocErrorCode.Timeout)");
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(15)));
        await claiming.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
    }

    /// <summary>
    /// Two ends of a one-connection data plane over in-memory pipes (each direction a <see cref="Pipe"/> with its
    /// default 64 KiB back-pressure, like a socket buffer), with the real frame keys. Use either the library's
    /// side or a raw, scripted side for each peer.
    /// </summary>
    private sealed class PlanePair : IDisposable
    {
        private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
        private readonly Stream _senderEnd;
        private readonly Stream _recipientEnd;
        private readonly TimeSpan _idle;
        private TransferContext? _sender;
        private TransferContext? _recipient;

        public PlanePair(TimeSpan idle)
        {
            _idle = idle;
            var toRecipient = new Pipe();
            var toSender = new Pipe();
            _senderEnd = new PipeEnd(toSender.Reader.AsStream(), toRecipient.Writer.AsStream());
            _recipientEnd = new PipeEnd(toRecipient.Reader.AsStream(), toSender.Writer.AsStream());
        }

        // The library's sides come from the same factory a session uses.
        public TransferContext Sender => _sender ??= CrocNet.Session.DataPlane.Create(
            _key, [_senderEnd], StreamDirection.SenderToRecipient, new ProgressTracker(null, null, TimeProvider.System), _idle, TimeSpan.FromMinutes(10), TimeProvider.System);

        public TransferContext Recipient => _recipient ??= CrocNet.Session.DataPlane.Create(
            _key, [_recipientEnd], StreamDirection.RecipientToSender, new ProgressTracker(null, null, TimeProvider.System), _idle, TimeSpan.FromMinutes(10), TimeProvider.System);

        public RawPeer RawSender => new(
            new FrameWriter(_senderEnd, Key(StreamDirection.SenderToRecipient), FileSender.ChunkSize + 65536),
            new FrameReader(_senderEnd, Key(StreamDirection.RecipientToSender)));

        public RawPeer RawRecipient => new(
            new FrameWriter(_recipientEnd, Key(StreamDirection.RecipientToSender)),
            new FrameReader(_recipientEnd, Key(StreamDirection.SenderToRecipient)));

        private byte[] Key(StreamDirection direction) => FrameKeys.Derive(_key, direction, 0);

        public void Dispose()
        {
            _sender?.Dispose();
            _recipient?.Dispose();
        }
    }

    /// <summary>A peer that says exactly what a test scripts.</summary>
    private sealed class RawPeer(FrameWriter writer, FrameReader reader)
    {
        public ValueTask<Frame> ReadAsync(CancellationToken cancellationToken) => reader.ReadAsync(cancellationToken);

        public async Task<Frame> ReadPastProgressAsync(CancellationToken cancellationToken)
        {
            var frame = await reader.ReadAsync(cancellationToken);
            while (frame.Type == FrameType.Progress)
            {
                frame = await reader.ReadAsync(cancellationToken);
            }

            return frame;
        }

        public async Task ReadManifestAsync(CancellationToken cancellationToken)
        {
            while ((await reader.ReadAsync(cancellationToken)).Flags != FrameFlags.Last)
            {
            }
        }

        public async Task WriteAsync<T>(FrameType type, T message, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info, CancellationToken cancellationToken) =>
            await writer.WriteAsync(type, JsonSerializer.SerializeToUtf8Bytes(message, info), cancellationToken);

        public async Task SendManifestAsync(Manifest manifest, CancellationToken cancellationToken) =>
            await writer.WriteAsync(FrameType.Manifest, JsonSerializer.SerializeToUtf8Bytes(manifest, TransferJsonContext.Default.Manifest), cancellationToken, FrameFlags.Last);

        public async Task SendChunkAsync(int entry, long offset, byte[] data, CancellationToken cancellationToken)
        {
            var payload = new byte[DataRecord.HeaderSize + data.Length];
            DataRecord.WriteHeader(payload, entry, offset, data.Length);
            data.CopyTo(payload, DataRecord.HeaderSize);
            await writer.WriteAsync(FrameType.Data, payload, cancellationToken);
        }
    }

    /// <summary>One end of the duplex: reads from one pipe, writes (and flushes, as a socket would send) to the other.</summary>
    private sealed class PipeEnd(Stream incoming, Stream outgoing) : Stream
    {
        public override bool CanRead => true;

        public override bool CanWrite => true;

        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => incoming.ReadAsync(buffer, cancellationToken);

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await outgoing.WriteAsync(buffer, cancellationToken);
            await outgoing.FlushAsync(cancellationToken);
        }

        public override int Read(byte[] buffer, int offset, int count) => incoming.Read(buffer, offset, count);

        public override void Write(byte[] buffer, int offset, int count) => outgoing.Write(buffer, offset, count);

        public override void Flush() => outgoing.Flush();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}

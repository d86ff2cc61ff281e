using System.Buffers.Binary;
using System.Security.Cryptography;
using CrocNet.Crypto;
using CrocNet.Session;
using CrocNet.Transfer;

namespace CrocNet.Tests.Transfer;

/// <summary>
/// Lanes that survive a broken leg, over in-memory legs (<see cref="LaneWire"/>): acknowledgements, the window of kept
/// frames, and the re-dial with fresh leg keys and resume points, driven by the real <see cref="FileSender"/> and
/// <see cref="FileReceiver"/> with real files.
/// </summary>
public class ReliableLaneTests
{
    private const int MiB = 1024 * 1024;
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    private readonly TempFolders _folders = new("croc-lane-");

    [TearDown]
    public void DeleteFolders() => _folders.DeleteAll();

    private string NewFolder() => _folders.New();

    private (string Path, byte[] Bytes) NewFile(int size)
    {
        var bytes = RandomNumberGenerator.GetBytes(size);
        var path = Path.Join(NewFolder(), "data.bin");
        File.WriteAllBytes(path, bytes);
        return (path, bytes);
    }

    private TransferContext Side(LaneWire wire, bool sender, bool reconnect = true, int window = LaneSettings.DefaultWindow, Stream[]? streams = null, Action<int, long>? reconnected = null) => DataPlane.Create(
        _key,
        streams ?? (sender ? wire.SenderStreams : wire.RecipientStreams),
        sender ? StreamDirection.SenderToRecipient : StreamDirection.RecipientToSender,
        new ProgressTracker(null, null, TimeProvider.System),
        TimeSpan.FromSeconds(30),
        TimeSpan.FromMinutes(1),
        TimeProvider.System,
        reconnect ? (sender ? wire.SenderDialer : wire.RecipientDialer) : null,
        reconnected,
        window);

    private static SendPlan Plan(string path) =>
        SendContent.FromPath(path).Build(FileSender.ChunkSize, CrocHashAlgorithm.XxHash128, TimeProvider.System);

    [TestCase(0)]
    [TestCase(1)]
    [CancelAfter(60_000)]
    public async Task RunAsync_LegCutMidTransfer_CompletesByteExactResendingOnlyWhatWasUnacknowledged(int lane, CancellationToken cancellationToken)
    {
        var (path, bytes) = NewFile(24 * MiB);
        using var wire = new LaneWire(3);
        using var sender = Side(wire, sender: true);
        using var recipient = Side(wire, sender: false);
        long unacknowledgedAtCut = -1;
        var leg = wire.Current[lane].SenderEnd;
        leg.CutAt = 2L * MiB + 12345;
        leg.OnCut = _ => unacknowledgedAtCut = sender.Lanes[lane].Unacknowledged;
        var target = NewFolder();

        var send = FileSender.RunAsync(Plan(path), sender, cancellationToken);
        var receive = FileReceiver.RunAsync(recipient, new ReceiveTarget { OutputDirectory = target }, cancellationToken);
        await Task.WhenAll(send, receive);

        Assert.That(File.ReadAllBytes(Path.Join(target, "data.bin")).AsSpan().SequenceEqual(bytes), Is.True, "the file arrived byte-exact");
        Assert.That(wire.Current[lane].Generation, Is.EqualTo(1), "the lane was dialed again once");
        Assert.That(sender.Reconnects, Is.EqualTo(1));
        Assert.That(recipient.Reconnects, Is.EqualTo(1));
        Assert.That(unacknowledgedAtCut, Is.GreaterThan(0));
        Assert.That(sender.BytesResent, Is.GreaterThan(0).And.LessThanOrEqualTo(unacknowledgedAtCut), "only what the recipient had not acknowledged went again");
        Assert.That(sender.Progress.Bytes, Is.EqualTo(bytes.Length), "progress counts re-sent bytes once");
        Assert.That(recipient.Progress.Bytes, Is.EqualTo(bytes.Length));
        TestContext.Out.WriteLine($"unacknowledged at the cut {unacknowledgedAtCut:N0} B, re-sent {sender.BytesResent:N0} B");
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task RunAsync_LegCutTwiceOnTwoLanes_Completes(CancellationToken cancellationToken)
    {
        var (path, bytes) = NewFile(16 * MiB);
        using var wire = new LaneWire(2);
        using var sender = Side(wire, sender: true);
        using var recipient = Side(wire, sender: false);
        wire.Current[0].SenderEnd.CutAt = 3L * MiB;
        wire.Current[1].RecipientEnd.CutAt = 100;
        var target = NewFolder();

        var send = FileSender.RunAsync(Plan(path), sender, cancellationToken);
        var receive = FileReceiver.RunAsync(recipient, new ReceiveTarget { OutputDirectory = target }, cancellationToken);
        await Task.WhenAll(send, receive);

        Assert.That(File.ReadAllBytes(Path.Join(target, "data.bin")).AsSpan().SequenceEqual(bytes), Is.True);
        Assert.That(sender.Reconnects, Is.EqualTo(2));
        Assert.That(recipient.Reconnects, Is.EqualTo(2));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task RunAsync_EveryNewLegCutSoonAfterItOpens_GivesUpAfterTheReconnectBudget(CancellationToken cancellationToken)
    {
        // A relay that cuts every re-attached leg a little after the resume exchange: each recovery looks like
        // progress, so without a budget of its own the lane would reconnect for ever.
        var (path, _) = NewFile(8 * MiB);
        using var wire = new LaneWire(2);
        using var sender = Side(wire, sender: true);
        using var recipient = Side(wire, sender: false);
        wire.Current[1].SenderEnd.CutAt = 2L * MiB;
        wire.WrapSenderLeg = (lane, _, leg) => lane == 1 ? new CutOnFirstData(leg) : leg;
        var target = NewFolder();

        var send = FileSender.RunAsync(Plan(path), sender, cancellationToken);
        var receive = FileReceiver.RunAsync(recipient, new ReceiveTarget { OutputDirectory = target }, cancellationToken);

        Assert.That(Assert.CatchAsync<CrocException>(async () => await send)!.Code, Is.EqualTo(CrocErrorCode.ConnectionLost));
        Assert.That(Assert.CatchAsync<CrocException>(async () => await receive), Is.Not.Null);
        var error = Assert.CatchAsync<CrocException>(async () => await send)!;
        Assert.That(sender.Reconnects, Is.EqualTo(ReliableLane.MaxReconnects), $"the lane came back as often as its budget allows, then gave up: {error.Message}");
        Assert.That(FinalNames(target), Is.Empty, "only resumable partials are left");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task RunAsync_LegCutWithReconnectOff_ConnectionLostAndNothingKept(CancellationToken cancellationToken)
    {
        var (path, _) = NewFile(8 * MiB);
        using var wire = new LaneWire(2);
        using var sender = Side(wire, sender: true, reconnect: false);
        using var recipient = Side(wire, sender: false, reconnect: false);
        wire.Current[1].SenderEnd.CutAt = 2L * MiB;
        var target = NewFolder();

        var send = FileSender.RunAsync(Plan(path), sender, cancellationToken);
        var receive = FileReceiver.RunAsync(recipient, new ReceiveTarget { OutputDirectory = target }, cancellationToken);

        Assert.That(Assert.CatchAsync<CrocException>(async () => await send)!.Code, Is.EqualTo(CrocErrorCode.ConnectionLost));
        Assert.That(Assert.CatchAsync<CrocException>(async () => await receive)!.Code, Is.EqualTo(CrocErrorCode.ConnectionLost));
        Assert.That(wire.Redials, Is.Zero);
        Assert.That(FinalNames(target), Is.Empty, "only resumable partials are left");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task RunAsync_ResumedLegTampered_DataTamperedAndNothingKept(CancellationToken cancellationToken)
    {
        var (path, _) = NewFile(8 * MiB);
        using var wire = new LaneWire(1);
        using var sender = Side(wire, sender: true);
        using var recipient = Side(wire, sender: false);
        wire.Current[0].SenderEnd.CutAt = 2L * MiB;
        // On the new leg, one bit of the sender's data (past its greeting and resume) is flipped on the way.
        wire.WrapSenderLeg = (_, _, leg) => new FlipAfter(leg, 4096);
        var target = NewFolder();

        var send = FileSender.RunAsync(Plan(path), sender, cancellationToken);
        var receive = FileReceiver.RunAsync(recipient, new ReceiveTarget { OutputDirectory = target }, cancellationToken);

        Assert.That(Assert.CatchAsync<CrocException>(async () => await receive)!.Code, Is.EqualTo(CrocErrorCode.DataTampered));
        Assert.That(Assert.CatchAsync<CrocException>(async () => await send), Is.Not.Null);
        Assert.That(FinalNames(target), Is.Empty, "nothing from a tampered leg is kept under a final name (verified chunks may stay resumable)");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task RunAsync_RelayReplaysAnOldGreeting_DataTampered(CancellationToken cancellationToken)
    {
        // The first re-dial's greeting from the sender is recorded; on the second re-dial the relay sends it again
        // instead of the new one. The recipient then derives keys the sender never used: authentication fails.
        var (path, _) = NewFile(12 * MiB);
        using var wire = new LaneWire(1);
        using var sender = Side(wire, sender: true);
        using var recipient = Side(wire, sender: false);
        wire.Current[0].SenderEnd.CutAt = 2L * MiB;
        byte[]? recorded = null;
        wire.WrapSenderLeg = (_, generation, leg) =>
        {
            if (generation == 1)
            {
                leg.CutAt = 3L * MiB;
                return new RecordGreeting(leg, hello => recorded = hello);
            }

            return new ReplaceGreeting(leg, () => recorded!);
        };
        var target = NewFolder();

        var send = FileSender.RunAsync(Plan(path), sender, cancellationToken);
        var receive = FileReceiver.RunAsync(recipient, new ReceiveTarget { OutputDirectory = target }, cancellationToken);

        // Whichever side reads the other's resume first finds it forged and drops the leg; the other may see that first.
        var codes = new[] { Assert.CatchAsync<CrocException>(async () => await receive)!.Code, Assert.CatchAsync<CrocException>(async () => await send)!.Code };
        Assert.That(codes, Has.Some.EqualTo(CrocErrorCode.DataTampered));
        Assert.That(codes, Is.All.AnyOf(CrocErrorCode.DataTampered, CrocErrorCode.ConnectionLost));
        Assert.That(recorded, Is.Not.Null);
        Assert.That(FinalNames(target), Is.Empty, "only resumable partials are left");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task RunAsync_RelayRefusesTheRedial_TypedErrorNothingKept(CancellationToken cancellationToken)
    {
        var (path, _) = NewFile(8 * MiB);
        using var wire = new LaneWire(1) { RefuseWith = new CrocRelayException(CrocErrorCode.RelayRefused, "The relay refused data connection 1 (reconnect_limit).", CrocNet.Protocol.CrocWire.Errors.ReconnectLimit) };
        using var sender = Side(wire, sender: true);
        using var recipient = Side(wire, sender: false);
        wire.Current[0].SenderEnd.CutAt = 2L * MiB;
        var target = NewFolder();

        var send = FileSender.RunAsync(Plan(path), sender, cancellationToken);
        var receive = FileReceiver.RunAsync(recipient, new ReceiveTarget { OutputDirectory = target }, cancellationToken);

        var error = Assert.CatchAsync<CrocRelayException>(async () => await send);
        Assert.That(error!.RelayCode, Is.EqualTo(CrocNet.Protocol.CrocWire.Errors.ReconnectLimit));
        Assert.That(Assert.CatchAsync<CrocRelayException>(async () => await receive)!.RelayCode, Is.EqualTo(CrocNet.Protocol.CrocWire.Errors.ReconnectLimit));
        Assert.That(FinalNames(target), Is.Empty, "only resumable partials are left");
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task RunAsync_SixtyFourMiBToASlowRecipient_KeptBytesStayWithinTheWindow(CancellationToken cancellationToken)
    {
        // Legs without back-pressure: only the window keeps the sender from holding the whole file while the
        // recipient's first write is held back until the sender has filled the window.
        var (path, bytes) = NewFile(64 * MiB);
        using var wire = new LaneWire(1, pipeLimit: 0);
        using var sender = Side(wire, sender: true);
        using var recipient = Side(wire, sender: false);
        var lane = sender.Lanes[0];
        using var output = new MemoryStream();
        var destination = new GatedStream(output, async token =>
        {
            while (lane.Unacknowledged < LaneSettings.DefaultWindow && !token.IsCancellationRequested)
            {
                await Task.Delay(5, token);
            }
        });

        var send = FileSender.RunAsync(Plan(path), sender, cancellationToken);
        var receive = FileReceiver.RunAsync(recipient, new ReceiveTarget { Destination = destination }, cancellationToken);
        await Task.WhenAll(send, receive);

        Assert.That(output.ToArray().AsSpan().SequenceEqual(bytes), Is.True);
        TestContext.Out.WriteLine($"peak kept {lane.PeakUnacknowledged:N0} B (window {LaneSettings.DefaultWindow:N0} B)");
        Assert.That(lane.PeakUnacknowledged, Is.GreaterThanOrEqualTo(LaneSettings.DefaultWindow), "the sender ran into the window");
        Assert.That(lane.PeakUnacknowledged, Is.LessThanOrEqualTo(LaneSettings.DefaultWindow + DataPlane.MaxFramePayload), "never more than the window and one frame");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task RunAsync_ChunkNotYetWritten_IsNotAcknowledged(CancellationToken cancellationToken)
    {
        // The recipient's first write into its destination is held; meanwhile it has read that chunk's frame.
        var (path, bytes) = NewFile(3 * MiB);
        using var wire = new LaneWire(1);
        using var sender = Side(wire, sender: true);
        using var recipient = Side(wire, sender: false);
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var output = new MemoryStream();
        var destination = new GatedStream(output, async token =>
        {
            held.TrySetResult();
            await release.Task.WaitAsync(token);
        });

        var send = FileSender.RunAsync(Plan(path), sender, cancellationToken);
        var receive = FileReceiver.RunAsync(recipient, new ReceiveTarget { Destination = destination }, cancellationToken);
        await held.Task.WaitAsync(cancellationToken);

        // Frames so far: the manifest (0), then data chunk 0 (1), whose write is what is held.
        var lane = recipient.Lanes[0];
        Assert.That(lane.AcknowledgedFrames, Is.LessThanOrEqualTo(1), "the chunk being written is not acknowledged yet");
        release.SetResult();
        await Task.WhenAll(send, receive);

        Assert.That(output.ToArray().AsSpan().SequenceEqual(bytes), Is.True);
        Assert.That(lane.AcknowledgedFrames, Is.GreaterThanOrEqualTo(4), "once written, every frame up to the end is acknowledged");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task ReadAsync_AckBeyondWhatWasSent_ProtocolViolation(CancellationToken cancellationToken)
    {
        using var wire = new LaneWire(1);
        using var sender = Side(wire, sender: true);
        using var rogue = new FrameWriter(wire.RecipientStreams[0], FrameKeys.Derive(_key, StreamDirection.RecipientToSender, 0));
        var ack = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(ack, 5);

        await rogue.WriteAsync(FrameType.Ack, ack, cancellationToken);

        var error = Assert.CatchAsync<CrocProtocolException>(async () => await sender.Lanes[0].ReadAsync(cancellationToken));
        Assert.That(error!.Code, Is.EqualTo(CrocErrorCode.ProtocolViolation));
    }

    /// <summary>Flips one bit of what is written once <paramref name="after"/> bytes went through.</summary>
    private sealed class FlipAfter(Stream inner, long after) : DelegatingStream(inner)
    {
        private long _written;

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var copy = buffer.ToArray();
            if (_written <= after && _written + copy.Length > after)
            {
                copy[after - _written] ^= 0x10;
            }

            _written += copy.Length;
            await Inner.WriteAsync(copy, cancellationToken);
        }
    }

    /// <summary>Hands the leg's first 17 bytes written (the greeting) to <paramref name="record"/>.</summary>
    private sealed class RecordGreeting(Stream inner, Action<byte[]> record) : DelegatingStream(inner)
    {
        private bool _done;

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!_done)
            {
                _done = true;
                Assert.That(buffer.Length, Is.EqualTo(LegHello.Size), "the greeting is written whole, first");
                record(buffer.ToArray());
            }

            await Inner.WriteAsync(buffer, cancellationToken);
        }
    }

    /// <summary>Writes <paramref name="replacement"/> instead of the leg's greeting.</summary>
    private sealed class ReplaceGreeting(Stream inner, Func<byte[]> replacement) : DelegatingStream(inner)
    {
        private bool _done;

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!_done)
            {
                _done = true;
                await Inner.WriteAsync(replacement(), cancellationToken);
                return;
            }

            await Inner.WriteAsync(buffer, cancellationToken);
        }
    }

    /// <summary>A destination whose every write first waits for <paramref name="gate"/>.</summary>
    private sealed class GatedStream(Stream inner, Func<CancellationToken, Task> gate) : DelegatingStream(inner)
    {
        private bool _opened;

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!_opened)
            {
                await gate(cancellationToken);
                _opened = true;
            }

            await Inner.WriteAsync(buffer, cancellationToken);
        }
    }

    private abstract class DelegatingStream(Stream inner) : Stream
    {
        protected Stream Inner => inner;

        public override bool CanRead => inner.CanRead;

        public override bool CanWrite => true;

        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

        public override void Flush()
        {
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    /// <summary>What is left under <paramref name="folder"/> other than resumable partials and their journals.</summary>
    private static IEnumerable<string> FinalNames(string folder) =>
        Directory.EnumerateFileSystemEntries(folder).Where(p => !CrocNet.Files.PartialNames.IsOurs(Path.GetFileName(p)));

    /// <summary>A re-dialed leg that carries the greeting and the resume point, then is cut at its first data frame.</summary>
    [Test]
    [CancelAfter(30_000)]
    public async Task WaitForGoodbyeAsync_ControlLegBreaksWithTheVerdictInFlight_LaneComesBackAndTheSenderSucceeds(CancellationToken cancellationToken)
    {
        // The recipient has verified everything and written its verdict and its end; the leg breaks before the sender
        // reads them. The sender still waits for them and dials again; the recipient must not take the break for the
        // sender's goodbye, or the sender fails a transfer that arrived.
        var (path, bytes) = NewFile(3 * MiB);
        using var wire = new LaneWire(2);
        using var recipient = Side(wire, sender: false);
        var held = new HoldAfterVerifying(wire.SenderStreams[0], wire.Current[0], () => recipient.Progress.Stage >= TransferStage.Verifying);
        using var sender = Side(wire, sender: true, streams: [held, wire.SenderStreams[1]]);
        var target = NewFolder();

        var send = FileSender.RunAsync(Plan(path), sender, cancellationToken);
        var received = await FileReceiver.RunAsync(recipient, new ReceiveTarget { OutputDirectory = target }, cancellationToken);
        Assert.That(send.IsCompleted, Is.False, "the verdict has not reached the sender");
        wire.Current[0].Cut();
        await recipient.Lanes[0].WaitForGoodbyeAsync(TimeSpan.FromSeconds(10), cancellationToken);

        var files = await send.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
        Assert.That(files.Single().Length, Is.EqualTo(bytes.Length));
        Assert.That(received.Files.Single().Length, Is.EqualTo(bytes.Length));
        Assert.That((sender.Lanes[0].Reconnects, recipient.Lanes[0].Reconnects), Is.EqualTo((1, 1)), "lane 0 came back once on each side");
        Assert.That((await File.ReadAllBytesAsync(Path.Join(target, "data.bin"), cancellationToken)).AsSpan().SequenceEqual(bytes), Is.True);
    }

    [TestCase(true)]
    [TestCase(false)]
    [CancelAfter(60_000)]
    public async Task RunAsync_FirstLegJoinsALaneThePeerRedials_GreetedAsReattachedAndCompletes(bool toldReattached, CancellationToken cancellationToken)
    {
        // The sender's first try on lane 1 was paired and broke in its hello; the recipient's leg broke with it, so the
        // recipient dials the lane again (and greets it). The sender's second try joins that new pair as its first leg,
        // and the relay answers it "ok again": the sender greets it too. Told nothing, the two would not understand
        // each other.
        var (path, bytes) = NewFile(6 * MiB);
        using var wire = new LaneWire(2);
        wire.Current[1].Cut();
        var secondTry = wire.Attach(1, sender: true);
        using var recipient = Side(wire, sender: false);
        using var sender = Side(wire, sender: true, streams: [wire.SenderStreams[0], toldReattached ? new CrocNet.Transport.ReattachedLeg(secondTry) : secondTry]);
        var target = NewFolder();

        var send = FileSender.RunAsync(Plan(path), sender, cancellationToken);
        var receive = FileReceiver.RunAsync(recipient, new ReceiveTarget { OutputDirectory = target }, cancellationToken);

        if (!toldReattached)
        {
            Assert.That(Assert.CatchAsync<CrocException>(async () => await send.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken)), Is.Not.Null, "first-leg keys against a greeting");
            return;
        }

        await Task.WhenAll(send, receive);
        Assert.That((await File.ReadAllBytesAsync(Path.Join(target, "data.bin"), cancellationToken)).AsSpan().SequenceEqual(bytes), Is.True);
        Assert.That((recipient.Lanes[1].Reconnects, sender.Lanes[1].Reconnects), Is.EqualTo((1, 0)), "the recipient re-dialed; the sender only greeted its first leg");
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task RunAsync_ControlLaneBreaksDuringTheOfferAndTheAcceptanceOvertakesTheResend_Completes(CancellationToken cancellationToken)
    {
        // Lane 0 breaks inside the offer. The recovery sends the offer again on the new leg and completes the sender's
        // write only after that; here the recipient's acceptance of it is read before the write completes (as happens
        // under load). That is not an acceptance of an offer never read to the end: the transfer goes on.
        var (path, bytes) = NewFile(MiB);
        using var wire = new LaneWire(2);
        ReadCounter? redialed = null;
        var overtaken = false;
        wire.WrapSenderLeg = (lane, _, end) => lane == 0 ? redialed = new ReadCounter(end) : end;
        wire.Current[0].SenderEnd.CutAt = 64;
        using var recipient = Side(wire, sender: false);
        using var sender = Side(wire, sender: true, reconnected: (lane, _) =>
        {
            // The recovery is done resending: hold its end until the recipient said yes and the sender read it.
            // (A synchronous callback on the recovery's own task: it may block it, which is the point.)
            long? accepted = null;
            for (var i = 0; i < 2_000 && !overtaken; i++)
            {
                if (accepted is null && recipient.Progress.Stage >= TransferStage.Transferring)
                {
                    accepted = wire.Current[0].RecipientEnd.Written;
                }

                overtaken = accepted is { } written && redialed!.BytesRead >= written;
                Thread.Sleep(5);
            }
        });
        var target = NewFolder();

        var send = FileSender.RunAsync(Plan(path), sender, cancellationToken);
        var receive = FileReceiver.RunAsync(recipient, new ReceiveTarget { OutputDirectory = target }, cancellationToken);
        var files = await send;
        var received = await receive;

        Assert.That(overtaken, Is.True, "the sender read the acceptance before its write of the offer completed");
        Assert.That((files.Single().Length, received.Files.Single().Length), Is.EqualTo((bytes.Length, bytes.Length)));
        Assert.That(sender.Lanes[0].Reconnects, Is.EqualTo(1));
        Assert.That((await File.ReadAllBytesAsync(Path.Join(target, "data.bin"), cancellationToken)).AsSpan().SequenceEqual(bytes), Is.True);
    }

    /// <summary>Counts the bytes read through it.</summary>
    private sealed class ReadCounter(Stream inner) : CrocNet.Tests.EndToEnd.PassThroughStream(inner)
    {
        private long _read;

        public long BytesRead => Interlocked.Read(ref _read);

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await Inner.ReadAsync(buffer, cancellationToken);
            Interlocked.Add(ref _read, read);
            return read;
        }
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Dispose_WhileARedialedLegIsBeingTakenIntoUse_TheNewLegIsClosedNotKept(CancellationToken cancellationToken)
    {
        // A recovery runs on its own: the lane's owner may dispose it while a re-dialed leg has been greeted and is
        // about to be taken into use. That leg must be closed then, not adopted by a disposed lane (nobody would close
        // it, and its keys would come from a zeroed session key).
        using var wire = new LaneWire(1);
        var held = new HeldDialer(wire.RecipientDialer);
        using var sender = new ReliableLane(0, wire.SenderStreams[0], _key, StreamDirection.SenderToRecipient, new LaneSettings { Dialer = wire.SenderDialer });
        var recipient = new ReliableLane(0, wire.RecipientStreams[0], _key, StreamDirection.RecipientToSender, new LaneSettings { Dialer = held });
        var senderReads = sender.ReadAsync(cancellationToken).AsTask();
        var recipientReads = recipient.ReadAsync(cancellationToken).AsTask();

        wire.Current[0].Cut();
        await held.Greeted.WaitAsync(cancellationToken);
        recipient.Dispose();
        held.Release.SetResult();

        Assert.That(await EventuallyAsync(() => held.Leg!.Disposed, cancellationToken), Is.True, "the new leg is closed");
        Assert.That(recipient.DialedStreams, Is.Empty, "the disposed lane kept no leg");
        Assert.CatchAsync<ObjectDisposedException>(async () => await recipientReads);
        sender.Dispose();
        await senderReads.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
    }

    private static async Task<bool> EventuallyAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        for (var i = 0; i < 500 && !condition(); i++)
        {
            await Task.Delay(10, cancellationToken);
        }

        return condition();
    }

    /// <summary>Re-dials through <paramref name="inner"/>, then, the new leg greeted, holds it until told to go on.</summary>
    private sealed class HeldDialer(ILaneDialer inner) : ILaneDialer
    {
        private readonly TaskCompletionSource _greeted = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TimeSpan Timeout => inner.Timeout;

        public Task Greeted => _greeted.Task;

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TrackedStream? Leg { get; private set; }

        public Task<T> RedialAsync<T>(int lane, Stream previous, Func<Stream, CancellationToken, Task<T>> onLeg, CancellationToken cancellationToken) =>
            inner.RedialAsync(
                lane,
                previous,
                async (stream, token) =>
                {
                    Leg = new TrackedStream(stream);
                    var result = await onLeg(Leg, token);
                    _greeted.TrySetResult();
                    await Release.Task;
                    return result;
                },
                cancellationToken);
    }

    private sealed class TrackedStream(Stream inner) : CrocNet.Tests.EndToEnd.PassThroughStream(inner)
    {
        public bool Disposed { get; private set; }

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }
    }

    /// <summary>
    /// The sender's first control leg: once the recipient is verifying, what arrives is held back (never handed on)
    /// until the leg is cut, as if it were lost on the way.
    /// </summary>
    private sealed class HoldAfterVerifying(Stream leg, LegPair pair, Func<bool> verifying) : CrocNet.Tests.EndToEnd.PassThroughStream(leg)
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await Inner.ReadAsync(buffer, cancellationToken);
            while (verifying())
            {
                if (pair.IsCut)
                {
                    // The bytes read are dropped with the leg.
                    throw new IOException("The leg was cut.");
                }

                await Task.Delay(5, cancellationToken);
            }

            return read;
        }
    }

    private sealed class CutOnFirstData(CuttableLeg leg) : CrocNet.Tests.EndToEnd.PassThroughStream(leg)
    {
        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (buffer.Length > 64 * 1024)
            {
                // Give the peer time to finish its side of the greeting, so only the data is lost.
                await Task.Delay(50, cancellationToken);
                leg.Break();
                throw new IOException("The leg was cut.");
            }

            await Inner.WriteAsync(buffer, cancellationToken);
        }
    }
}

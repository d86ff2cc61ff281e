using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using CrocNet.Rendezvous;
using CrocNet.Tests.Rendezvous;
using CrocNet.Tests.Transport;
using CrocNet.Codes;
using CrocNet.Crypto;
using CrocNet.Files;
using CrocNet.Pake;
using CrocNet.Transport;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;

namespace CrocNet.Tests.EndToEnd;

public class HostileTransferTests : TransferTestBase
{
    private const int FileSize = 8 * 1024 * 1024;

    [TestCase(TamperingStream.Mode.FlipBit, CrocErrorCode.DataTampered)]
    [TestCase(TamperingStream.Mode.Drop, CrocErrorCode.DataTampered)] // or a stream cut short, below
    [TestCase(TamperingStream.Mode.Reorder, CrocErrorCode.DataTampered)]
    [TestCase(TamperingStream.Mode.Cut, CrocErrorCode.ConnectionLost)]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_HostileRelayOnOneConnection_DetectedAndNothingKept(TamperingStream.Mode mode, CrocErrorCode expected, CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var output = NewFolder();
        WriteRandomFile(Path.Join(source, "payload.bin"), FileSize);
        var receiver = NewCroc(o =>
        {
            o.WithOutputDirectory(output);
            // A cut is what reconnecting repairs (ReliableLaneTests, ReconnectTransferTests); here it must be reported.
            o.WithReconnect(0, TimeSpan.FromSeconds(30));
            // Every connection misbehaves once it has carried 300 kB: whichever ones the chunks went to.
            o.UseTransport(new InterceptingTransport((stream, index) => new TamperingStream(stream, mode, at: 300_000 + index)));
        });

        await using var operation = await NewCroc().StartSendAsync(SendContent.FromPath(Path.Join(source, "payload.bin")), cancellationToken: cancellationToken);
        var receive = receiver.ReceiveAsync(operation.Code, cancellationToken);

        var received = Assert.CatchAsync<CrocException>(async () => await receive);
        // Dropped bytes shift every later frame: the reader either fails a tag or runs out of stream first.
        Assert.That(received!.Code, mode == TamperingStream.Mode.Drop ? Is.AnyOf(expected, CrocErrorCode.ConnectionLost) : Is.EqualTo(expected));
        Assert.CatchAsync<CrocException>(async () => await operation.Completion, "the sender never reports success");
        Assert.That(Directory.GetFileSystemEntries(output), Is.Empty, "no file, complete-looking or partial, is left");
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task SendAsync_SenderConnectionCut_RecipientFailsAndKeepsNothing(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var output = NewFolder();
        WriteRandomFile(Path.Join(source, "payload.bin"), FileSize);
        // With reconnecting off, as before it existed: every leg the sender opens is cut part-way.
        var sender = NewCroc(o => o.WithReconnect(0, TimeSpan.FromSeconds(30)).UseTransport(new InterceptingTransport((stream, index) => new CuttingWriteStream(stream, 500_000 + index))));

        await using var operation = await sender.StartSendAsync(SendContent.FromPath(Path.Join(source, "payload.bin")), cancellationToken: cancellationToken);
        var receive = NewCroc(o => o.WithOutputDirectory(output).WithReconnect(0, TimeSpan.FromSeconds(30))).ReceiveAsync(operation.Code, cancellationToken);

        Assert.That(Assert.CatchAsync<CrocException>(async () => await receive)!.Code, Is.AnyOf(CrocErrorCode.ConnectionLost, CrocErrorCode.DataTampered));
        Assert.CatchAsync<Exception>(async () => await operation.Completion);
        Assert.That(Directory.GetFileSystemEntries(output), Is.Empty);
    }

    [TestCase(true)]
    [TestCase(false)]
    [CancelAfter(60_000)]
    public async Task Cancellation_MidTransfer_LeavesNoFileAndFailsThePeer(bool cancelRecipient, CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var output = NewFolder();
        WriteRandomFile(Path.Join(source, "payload.bin"), 32 * 1024 * 1024);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var progress = new CancelAfterBytes(cancel, 4 * 1024 * 1024);
        var sender = NewCroc();
        var receiver = NewCroc(o =>
        {
            o.WithOutputDirectory(output);
            o.UseTransport(new InterceptingTransport((stream, _) => new TamperingStream(stream, TamperingStream.Mode.Slow, 0, span: 64 * 1024)));
        });

        var operation = await sender.StartSendAsync(
            SendContent.FromPath(Path.Join(source, "payload.bin")), new SendOptions { Progress = cancelRecipient ? null : progress }, cancelRecipient ? cancellationToken : cancel.Token);
        var receive = receiver.ReceiveAsync(operation.Code, new ReceiveOptions { Progress = cancelRecipient ? progress : null }, cancelRecipient ? cancel.Token : cancellationToken);

        var canceller = cancelRecipient ? receive : operation.Completion;
        var peer = cancelRecipient ? operation.Completion : receive;
        Assert.CatchAsync<OperationCanceledException>(async () => await canceller);
        Assert.CatchAsync<CrocException>(async () => await peer, "the other side learns promptly");
        await operation.DisposeAsync();
        // What arrived stays for a later resume, under hidden names only: never a file that looks complete.
        Assert.That(Directory.GetFileSystemEntries(output).Select(Path.GetFileName), Has.All.Matches<string>(n => CrocNet.Files.PartialNames.IsOurs(n)), "only resumable partials remain");
    }

    [Test]
    [CancelAfter(30_000)]
    public void SendAsync_RelayUnreachable_ClearErrorAfterRetries(CancellationToken cancellationToken)
    {
        using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens there any more: connection refused
        var source = NewFolder();
        WriteRandomFile(Path.Join(source, "f.bin"), 10);
        var attempts = 0;
        var croc = Croc.New(o => o.WithRelay($"http://127.0.0.1:{port}").WithRetries(3, TimeSpan.FromMilliseconds(10))
            .UseHttpMessageHandler(new CountingHandler(() => Interlocked.Increment(ref attempts))));

        var ex = Assert.ThrowsAsync<CrocRelayException>(() => croc.SendAsync(SendContent.FromPath(Path.Join(source, "f.bin")), new SendOptions { Code = Croc.GenerateCode() }, cancellationToken));

        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.RelayUnreachable));
        Assert.That(ex.Message, Does.Contain($"127.0.0.1:{port}"));
        Assert.That(attempts, Is.EqualTo(4), "one try and three retries");
    }

    private static readonly string[] HostileNames =
    [
        "../evil.txt",
        "a/../../evil.txt",
        "/tmp/evil.txt",
        "C:/evil.txt",
        "\u001b]0;owned\u0007.txt",
        "evil\u202Etxt.exe",
        "NUL",
    ];

    [TestCaseSource(nameof(HostileNames))]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_HostileManifestName_RefusedAndNothingWritten(string name, CancellationToken cancellationToken)
    {
        var output = NewFolder();
        var manifest = new Manifest { ChunkSize = 1024 * 1024, Hash = "xxh128", Entries = [new ManifestEntry { Path = name, Size = 5 }] };

        var (rogue, receive) = await OfferAsync(manifest, output, cancellationToken);
        await using var rogueLifetime = rogue;
        var answer = await rogue.ReadAnswerAsync(cancellationToken);

        Assert.That(Assert.ThrowsAsync<CrocTransferException>(async () => await receive)!.Code, Is.EqualTo(CrocErrorCode.UnsafePath));
        Assert.That(answer.Accept, Is.False);
        Assert.That(answer.Code, Is.EqualTo("unsafe_path"));
        Assert.That(Directory.GetFileSystemEntries(output), Is.Empty);
        Assert.That(File.Exists(Path.Join(Path.GetDirectoryName(output), "evil.txt")), Is.False);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_ChunkOutsideTheDeclaredFile_RefusedAndNothingKept(CancellationToken cancellationToken)
    {
        var output = NewFolder();
        var manifest = new Manifest { ChunkSize = 1024 * 1024, Hash = "xxh128", Entries = [new ManifestEntry { Path = "ok.txt", Size = 5 }] };

        var (rogue, receive) = await OfferAsync(manifest, output, cancellationToken);
        await using var rogueLifetime = rogue;
        Assert.That((await rogue.ReadAnswerAsync(cancellationToken)).Accept, Is.True);
        await rogue.SendDataAsync(0, 1024 * 1024, "hello"u8.ToArray(), cancellationToken);

        Assert.ThrowsAsync<CrocProtocolException>(async () => await receive);
        Assert.That(Directory.GetFileSystemEntries(output), Is.Empty);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_TrailerHashDoesNotMatch_HashMismatchAndNothingKept(CancellationToken cancellationToken)
    {
        var output = NewFolder();
        var manifest = new Manifest { ChunkSize = 1024 * 1024, Hash = "xxh128", Entries = [new ManifestEntry { Path = "ok.txt", Size = 5 }] };

        var (rogue, receive) = await OfferAsync(manifest, output, cancellationToken);
        await using var rogueLifetime = rogue;
        Assert.That((await rogue.ReadAnswerAsync(cancellationToken)).Accept, Is.True);
        await rogue.SendDataAsync(0, 0, "hello"u8.ToArray(), cancellationToken);
        await rogue.FinishAsync(new TrailerMessage { Files = [new TrailerFile { Index = 0, Size = 5, Hash = new string('0', 64) }] }, cancellationToken);

        Assert.That(Assert.ThrowsAsync<CrocTransferException>(async () => await receive)!.Code, Is.EqualTo(CrocErrorCode.HashMismatch));
        Assert.That(Directory.GetFileSystemEntries(output), Is.Empty);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_UnknownHashAlgorithm_RefusedAsProtocolViolation(CancellationToken cancellationToken)
    {
        var output = NewFolder();
        var manifest = new Manifest { ChunkSize = 1024 * 1024, Hash = "md5", Entries = [new ManifestEntry { Path = "ok.txt", Size = 5 }] };

        var (rogue, receive) = await OfferAsync(manifest, output, cancellationToken);
        await using var rogueLifetime = rogue;

        Assert.ThrowsAsync<CrocProtocolException>(async () => await receive);
        Assert.That(Directory.GetFileSystemEntries(output), Is.Empty);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_SenderGoesSilentAfterConnecting_TimesOutAndWritesNothing(CancellationToken cancellationToken)
    {
        var output = NewFolder();

        await using var rogue = await RogueSender.StartAsync(Relay.BaseAddress, cancellationToken);
        var receive = NewCroc(o => o.WithOutputDirectory(output).WithIdleTimeout(TimeSpan.FromSeconds(1))).ReceiveAsync(rogue.Code.Code, cancellationToken);
        await rogue.ConnectAsync(cancellationToken);

        Assert.That(Assert.CatchAsync<CrocException>(async () => await receive)!.Code, Is.EqualTo(CrocErrorCode.Timeout));
        Assert.That(Directory.GetFileSystemEntries(output), Is.Empty);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_ManifestDeclaringPetabytes_CostsNoMemoryAndIsAskedAbout(CancellationToken cancellationToken)
    {
        var output = NewFolder();
        var entries = Enumerable.Range(0, 1000).Select(i => new ManifestEntry { Path = $"huge{i}.bin", Size = 1L << 40 }).ToList();
        var manifest = new Manifest { ChunkSize = 64 * 1024, Hash = "xxh128", Entries = entries };
        TransferOffer? offered = null;

        await using var rogue = await RogueSender.StartAsync(Relay.BaseAddress, cancellationToken);
        var receive = NewCroc(o => o.WithOutputDirectory(output)).ReceiveAsync(
            rogue.Code.Code,
            new ReceiveOptions
            {
                ConfirmOffer = (offer, _) =>
                {
                    offered = offer;
                    return ValueTask.FromResult(false);
                },
            },
            cancellationToken);
        await rogue.ConnectAsync(cancellationToken);
        var before = GC.GetTotalAllocatedBytes(precise: true);
        await rogue.SendManifestAsync(manifest, cancellationToken);

        Assert.That((await rogue.ReadAnswerAsync(cancellationToken)).Accept, Is.False);
        Assert.That(Assert.ThrowsAsync<CrocTransferException>(async () => await receive)!.Code, Is.EqualTo(CrocErrorCode.TransferRejected));
        Assert.That(GC.GetTotalAllocatedBytes(precise: true) - before, Is.LessThan(100_000_000), "declared sizes must not turn into allocations");
        Assert.That(offered!.TotalBytes, Is.EqualTo(1000L << 40));
    }

    [TestCase(1L << 51)]
    [TestCase(long.MaxValue)]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_ImpossibleSizes_RefusedAsProtocolViolation(long size, CancellationToken cancellationToken)
    {
        var output = NewFolder();
        var manifest = new Manifest
        {
            ChunkSize = 1024 * 1024,
            Hash = "xxh128",
            Entries = [new ManifestEntry { Path = "a", Size = size }, new ManifestEntry { Path = "b", Size = size }],
        };

        var (rogue, receive) = await OfferAsync(manifest, output, cancellationToken);
        await using var rogueLifetime = rogue;

        // Read the answer as a real sender would, at once: it is on the wire before the recipient gives up.
        Assert.That((await rogue.ReadAnswerAsync(cancellationToken)).Accept, Is.False);
        Assert.ThrowsAsync<CrocProtocolException>(async () => await receive);
        Assert.That(Directory.GetFileSystemEntries(output), Is.Empty);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveAsync_IntoStream_HostileNameStillRefused(CancellationToken cancellationToken)
    {
        var manifest = new Manifest { ChunkSize = 1024 * 1024, Hash = "xxh128", Entries = [new ManifestEntry { Path = "../\u001b]0;owned\u0007x", Size = 5 }] };
        var offered = false;

        await using var rogue = await RogueSender.StartAsync(Relay.BaseAddress, cancellationToken);
        var receive = NewCroc().ReceiveToStreamAsync(
            rogue.Code.Code,
            new MemoryStream(),
            new ReceiveOptions
            {
                ConfirmOffer = (_, _) =>
                {
                    offered = true;
                    return ValueTask.FromResult(true);
                },
            },
            cancellationToken);
        await rogue.ConnectAsync(cancellationToken);
        await rogue.SendManifestAsync(manifest, cancellationToken);

        Assert.That((await rogue.ReadAnswerAsync(cancellationToken)).Code, Is.EqualTo("unsafe_path"));
        Assert.That(Assert.ThrowsAsync<CrocTransferException>(async () => await receive)!.Code, Is.EqualTo(CrocErrorCode.UnsafePath));
        Assert.That(offered, Is.False, "an unsafe name never reaches the application");
    }

    /// <summary>A rogue sender joined, a default recipient receiving into <paramref name="output"/>, and <paramref name="manifest"/> offered.</summary>
    private async Task<(RogueSender Rogue, Task<TransferResult> Receive)> OfferAsync(Manifest manifest, string output, CancellationToken cancellationToken)
    {
        var rogue = await RogueSender.StartAsync(Relay.BaseAddress, cancellationToken);
        var receive = NewCroc(o => o.WithOutputDirectory(output)).ReceiveAsync(rogue.Code.Code, cancellationToken);
        await rogue.ConnectAsync(cancellationToken);
        await rogue.SendManifestAsync(manifest, cancellationToken);
        return (rogue, receive);
    }

    /// <summary>A sender that speaks the protocol correctly up to the data plane, then says what a test wants.</summary>
    private sealed class RogueSender : IAsyncDisposable
    {
        private readonly HttpClient _http = new();
        private RelaySession _relay = null!;
        private HandshakeResult? _handshake;
        private Stream[] _streams = [];
        private FrameWriter[] _writers = [];
        private FrameReader? _control;

        public CodePhrase Code { get; } = CodePhrase.Generate();

        public static async Task<RogueSender> StartAsync(Uri relay, CancellationToken cancellationToken)
        {
            var rogue = new RogueSender();
            var client = new RelayClient(rogue._http, relay, ResiliencePipeline.Empty, TimeProvider.System, NullLogger.Instance);
            rogue._relay = await client.JoinAsync(rogue.Code.Channel, "p256", CrocNet.Protocol.ParticipantRole.Sender, cancellationToken);
            return rogue;
        }

        public async Task ConnectAsync(CancellationToken cancellationToken)
        {
            using var password = new PasswordScalar(Code, Spake2Suite.P256);
            _handshake = await Handshake.RunSenderAsync(_relay, Code, Spake2Suite.P256, password, TimeSpan.FromSeconds(30), NullLogger.Instance, static () => { }, cancellationToken);
            var target = new StapleTarget(_relay.BaseAddress, _relay.BaseAddress.IdnHost, _handshake.State.Ports);
            _streams = await StapleConnector.ConnectAllAsync(
                TcpStapleTransport.Instance, target, new StapleTicket(_relay.Channel, _relay.Uuid), ResiliencePipeline.Empty, TimeProvider.System, cancellationToken);
            await _relay.WaitForAsync(_handshake.State, s => s.Stapled, TimeSpan.FromSeconds(30), cancellationToken);
            var key = _handshake.Keys.SessionKey.ToArray();
            _writers = _streams.Select((s, i) => new FrameWriter(s, FrameKeys.Derive(key, StreamDirection.SenderToRecipient, i))).ToArray();
            _control = new FrameReader(_streams[0], FrameKeys.Derive(key, StreamDirection.RecipientToSender, 0));
        }

        public async Task SendManifestAsync(Manifest manifest, CancellationToken cancellationToken) =>
            await _writers[0].WriteAsync(FrameType.Manifest, JsonSerializer.SerializeToUtf8Bytes(manifest, TransferJsonContext.Default.Manifest), cancellationToken, FrameFlags.Last);

        public async Task<AcceptMessage> ReadAnswerAsync(CancellationToken cancellationToken)
        {
            var frame = await _control!.ReadAsync(cancellationToken);
            Assert.That(frame.Type, Is.EqualTo(FrameType.Accept));
            return JsonSerializer.Deserialize(frame.Payload.Span, TransferJsonContext.Default.AcceptMessage)!;
        }

        public async Task SendDataAsync(int entry, long offset, byte[] data, CancellationToken cancellationToken)
        {
            var payload = new byte[CrocNet.Transfer.DataRecord.HeaderSize + data.Length];
            CrocNet.Transfer.DataRecord.WriteHeader(payload, entry, offset, data.Length);
            data.CopyTo(payload, CrocNet.Transfer.DataRecord.HeaderSize);
            await _writers[0].WriteAsync(FrameType.Data, payload, cancellationToken);
        }

        public async Task FinishAsync(TrailerMessage trailer, CancellationToken cancellationToken)
        {
            await _writers[0].WriteAsync(FrameType.Trailer, JsonSerializer.SerializeToUtf8Bytes(trailer, TransferJsonContext.Default.TrailerMessage), cancellationToken, FrameFlags.Last);
            foreach (var writer in _writers)
            {
                await writer.WriteEndAsync(cancellationToken);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _relay.CloseAsync();
            foreach (var stream in _streams)
            {
                await stream.DisposeAsync();
            }

            _handshake?.Dispose();
            _http.Dispose();
        }
    }

    private sealed class CancelAfterBytes(CancellationTokenSource? cancel, long threshold) : IProgress<TransferProgress>
    {
        public void Report(TransferProgress value)
        {
            if (cancel is not null && value.BytesTransferred >= threshold)
            {
                cancel.Cancel();
            }
        }
    }
}

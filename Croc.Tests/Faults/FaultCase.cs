using System.Diagnostics;
using System.Globalization;
using System.Text;
using CrocNet.Relay;

namespace CrocNet.Tests.Faults;

/// <summary>How a faulted transfer ended.</summary>
internal enum FaultOutcome
{
    /// <summary>Both sides succeeded and every file on disk is byte-identical to its source, digests equal.</summary>
    Completed,

    /// <summary>Both sides failed with a typed <see cref="CrocException"/>; no wrong or incomplete file under a final name.</summary>
    FailedTyped,

    /// <summary>
    /// The recipient succeeded (every file verified and in place) but the sender failed typed: the recipient's last
    /// word was lost. docs/receiving-safely.md: once every file is in place the receive has succeeded, even if the
    /// goodbye to the sender is lost.
    /// </summary>
    DeliveredSenderFailed,
}

/// <summary>What a fault kind may end in.</summary>
internal enum Expected
{
    /// <summary>The transfer must complete (<see cref="FaultOutcome.Completed"/>).</summary>
    Completes,

    /// <summary>Any of <see cref="FaultOutcome.Completed"/>, <see cref="FaultOutcome.FailedTyped"/>, <see cref="FaultOutcome.DeliveredSenderFailed"/>.</summary>
    CompletesOrFailsTyped,
}

/// <summary>
/// The expected outcome per fault kind, in one place. A reset leg re-dials and the transfer carries on, so a reset must
/// complete. A cut half-way (one direction ended with a FIN) usually completes too, but a few cases still end typed (a
/// half-closed leg the relay takes for a clean end, then the re-attachment is refused): it stays "completes or fails
/// typed" until those are understood. A stall runs into the idle timeout, and a dropped relay takes its channels with it.
/// </summary>
internal static class FaultExpectations
{
    public static readonly IReadOnlyDictionary<FaultKind, Expected> ByKind = new Dictionary<FaultKind, Expected>
    {
        [FaultKind.None] = Expected.Completes,
        [FaultKind.Delay] = Expected.Completes,
        // A reset leg re-dials and the lane carries on (docs/protocol.md, "Reconnecting a lane").
        [FaultKind.Reset] = Expected.Completes,
        [FaultKind.CutHalfway] = Expected.CompletesOrFailsTyped,
        [FaultKind.Stall] = Expected.CompletesOrFailsTyped,
        [FaultKind.DropRelay] = Expected.CompletesOrFailsTyped,
    };

    /// <summary>How long each side may take to end, success or failure (the timeouts below plus retries and slack on a busy machine).</summary>
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    /// <summary>The idle timeout of both sides: short for a stall, so it ends the case quickly; generous otherwise.</summary>
    public static TimeSpan IdleTimeout(FaultKind kind) => kind == FaultKind.Stall ? TimeSpan.FromSeconds(1.5) : TimeSpan.FromSeconds(8);

    /// <summary>Generous: each side derives its Argon2id password scalar (CPU and memory bound), and many cases run at once on few cores.</summary>
    public static readonly TimeSpan PeerTimeout = TimeSpan.FromSeconds(25);

    /// <summary>The relay's reconnect window in every fault case.</summary>
    public static readonly TimeSpan ReconnectWindow = TimeSpan.FromSeconds(10);

    public static readonly TimeSpan ChannelWaitTimeout = TimeSpan.FromSeconds(10);
}

/// <summary>One file of a case: its path under the sent folder and its content.</summary>
internal sealed record FaultFile(string RelativePath, byte[] Content)
{
    public override string ToString() => $"{RelativePath} ({Content.Length} B)";
}

/// <summary>
/// A seeded fault case: fault kind, target connection, byte offset, transport and a small file set, all derived from
/// <see cref="Seed"/> with <see cref="Random"/>, so a failing seed replays alone.
/// </summary>
internal sealed record FaultCase(int Seed, Fault Fault, CrocTransport Transport, IReadOnlyList<FaultFile> Files)
{
    public const int Lanes = 4;

    private const int FileChunk = 1024 * 1024;

    /// <summary>Where the sender's files live under its source folder; the recipient gets the same tree.</summary>
    public const string Root = "payload";

    public long TotalBytes => Files.Sum(f => (long)f.Content.Length);

    public static FaultCase From(int seed)
    {
        var random = new Random(seed);
        var files = MakeFiles(random);
        var total = files.Sum(f => (long)f.Content.Length);
        var transport = random.Next(5) == 0 ? CrocTransport.WebSocket : CrocTransport.Tcp;

        var kind = random.Next(100) switch
        {
            < 24 => FaultKind.Reset,
            < 40 => FaultKind.CutHalfway,
            < 56 => FaultKind.Stall,
            < 72 => FaultKind.Delay,
            < 88 => FaultKind.DropRelay,
            _ => FaultKind.None,
        };

        FaultTarget target;
        long offset;
        var side = random.Next(3) == 0 ? ProxySide.Recipient : ProxySide.Sender;
        var legKind = transport == CrocTransport.WebSocket ? LegKind.WebSocketLeg : LegKind.TcpLane;
        var dataFlow = side == ProxySide.Sender ? Flow.Up : Flow.Down;
        var pick = random.Next(100);
        if (pick < 20)
        {
            // The rendezvous: a participant's first HTTP connection (rarely its second), within the requests it
            // carries (about 1.2 KB up and 2.5 KB down for a whole transfer).
            var flow = random.Next(2) == 0 ? Flow.Up : Flow.Down;
            target = new FaultTarget(side, LegKind.Http, random.Next(8) == 0 ? 1 : 0, flow);
            offset = random.Next(0, flow == Flow.Up ? 1100 : 2000);
        }
        else if (pick < 32)
        {
            // The control direction of the first leg (the recipient's answers, the sender's view of them): a few
            // hundred bytes, the hello and its "ok" included.
            target = new FaultTarget(side, legKind, 0, dataFlow == Flow.Up ? Flow.Down : Flow.Up);
            offset = random.Next(0, 90);
        }
        else if (pick < 50)
        {
            // The start of the first leg: hello, manifest, the first data.
            target = new FaultTarget(side, legKind, 0, dataFlow);
            offset = random.Next(0, 400);
        }
        else
        {
            // The file data: lanes take 1 MiB chunks from one queue as they free up, so which leg carries what is
            // decided at run time; the fault hits whichever of the participant's legs reaches the offset first.
            var chunks = files.Sum(f => Math.Max(1, (f.Content.Length + FileChunk - 1) / FileChunk));
            var perLane = total / Math.Min(Lanes, chunks);
            target = new FaultTarget(side, legKind, -1, dataFlow);
            offset = random.NextInt64(0, Math.Max(1, perLane * 9 / 10) + 64);
        }

        var delay = kind == FaultKind.Delay ? TimeSpan.FromMilliseconds(random.Next(1, 9)) : TimeSpan.Zero;
        return new FaultCase(seed, new Fault(kind, target, offset, delay), transport, files);
    }

    /// <summary>1–4 files of 0 B–8 MiB (at most one above 1.5 MiB), some with real zero blocks, one maybe in a subfolder.</summary>
    private static List<FaultFile> MakeFiles(Random random)
    {
        var count = random.Next(1, 5);
        var big = false;
        var files = new List<FaultFile>();
        for (var i = 0; i < count; i++)
        {
            var size = random.Next(100) switch
            {
                < 15 => 0,
                < 60 => random.Next(1, 64 * 1024),
                < 96 => random.Next(64 * 1024, 1100 * 1024),
                _ when !big => random.Next(1536 * 1024, (8 * 1024 * 1024) + 1),
                _ => random.Next(1, 256 * 1024),
            };
            big |= size > 1536 * 1024;
            var content = new byte[size];
            random.NextBytes(content);
            if (size > 0 && random.Next(3) == 0)
            {
                ZeroBlocks(content, random);
            }

            var name = $"f{i}-{size}.bin";
            files.Add(new FaultFile(random.Next(4) == 0 ? $"{Root}/sub/{name}" : $"{Root}/{name}", content));
        }

        return files;
    }

    /// <summary>Real zero blocks (32 KiB aligned, as croc's resume would mistake for missing), or a file all zero.</summary>
    private static void ZeroBlocks(byte[] content, Random random)
    {
        const int Block = 32 * 1024;
        if (random.Next(4) == 0)
        {
            Array.Clear(content);
            return;
        }

        var blocks = (content.Length + Block - 1) / Block;
        for (var b = 0; b < blocks; b++)
        {
            if (random.Next(3) == 0)
            {
                var start = b * Block;
                Array.Clear(content, start, Math.Min(Block, content.Length - start));
            }
        }
    }

    public override string ToString() =>
        $"seed {Seed}: {Fault}, {Transport}, {Files.Count} file(s) [{string.Join(", ", Files)}] = {TotalBytes} B";
}

/// <summary>What one case did: the outcome (or why it broke the rules) and the numbers to assert.</summary>
internal sealed record FaultRun(FaultCase Case)
{
    public FaultOutcome? Outcome { get; set; }

    /// <summary>Why the case broke the outcome rules; null when it kept them.</summary>
    public string? Violation { get; set; }

    public bool Fired { get; set; }

    public Exception? SenderError { get; set; }

    public Exception? RecipientError { get; set; }

    public TimeSpan SenderTime { get; set; }

    public TimeSpan RecipientTime { get; set; }

    /// <summary>Bytes the sender sent on its data legs (TCP lanes or WebSocket legs, hellos and upgrades included), as forwarded by the proxy.</summary>
    public long SenderDataBytes { get; set; }

    /// <summary>Bytes the recipient received on its data legs.</summary>
    public long RecipientDataBytes { get; set; }

    /// <summary>Every file's size in the source.</summary>
    public IReadOnlyList<long> FileSizes => [.. Case.Files.Select(f => (long)f.Content.Length)];

    /// <summary>Final (not hidden partial) files found in the destination after a failure.</summary>
    public int FinalFilesAfterFailure { get; set; }

    /// <summary>Hidden <c>.croc-*.partial</c> files (and their journals) left in the destination.</summary>
    public int PartialFiles { get; set; }

    /// <summary>The proxy's connections with their byte counts.</summary>
    public IReadOnlyList<string> Connections { get; set; } = [];

    /// <summary>Both sides' log lines and the proxy's, timed.</summary>
    public CaseLog Log { get; } = new();

    public string Describe(bool verbose = false)
    {
        var text = new StringBuilder(Case.ToString());
        text.Append(CultureInfo.InvariantCulture, $" | fired {Fired}, outcome {Outcome?.ToString() ?? "-"}");
        text.Append(CultureInfo.InvariantCulture, $", sender {Name(SenderError)} in {SenderTime.TotalSeconds:0.0} s, recipient {Name(RecipientError)} in {RecipientTime.TotalSeconds:0.0} s");
        text.Append(CultureInfo.InvariantCulture, $", sender sent {SenderDataBytes} B on its legs");
        if (Violation is not null)
        {
            text.Append(" | VIOLATION: ").Append(Violation);
        }

        if (Violation is not null || verbose)
        {
            text.Append("\n  connections: ").AppendJoin("; ", Connections).Append("\n  log:\n").Append(Log.Text);
        }

        return text.ToString();
    }

    private static string Name(Exception? error) => error switch
    {
        null => "ok",
        CrocRelayException r => $"{r.GetType().Name}({r.Code}, {r.RelayCode ?? "-"}): {r.Message}",
        CrocException c => $"{c.GetType().Name}({c.Code}): {c.Message}",
        _ => $"{error.GetType().Name}: {error.Message}",
    };
}

/// <summary>Runs a <see cref="FaultCase"/>: its own relay (so a dropped relay harms no other case), a proxy, a real transfer.</summary>
internal static class FaultCaseRunner
{
    /// <summary>Runs one case on a relay from <paramref name="relays"/> (its own relay when none is given, or when it drops the relay).</summary>
    public static async Task<FaultRun> RunAsync(FaultCase fault, RelayPool? relays, CancellationToken cancellationToken)
    {
        var run = new FaultRun(fault);
        var folder = Directory.CreateTempSubdirectory("croc-fault-").FullName;
        try
        {
            await RunInAsync(run, folder, relays, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            run.Violation ??= $"the harness failed: {e}";
        }
        finally
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
            }
        }

        return run;
    }

    private static async Task RunInAsync(FaultRun run, string folder, RelayPool? relays, CancellationToken cancellationToken)
    {
        var fault = run.Case;
        var source = Path.Combine(folder, "src");
        var destination = Path.Combine(folder, "dst");
        Directory.CreateDirectory(destination);
        foreach (var file in fault.Files)
        {
            var path = Path.Combine(source, file.RelativePath);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await File.WriteAllBytesAsync(path, file.Content, cancellationToken);
        }

        Directory.CreateDirectory(Path.Combine(source, FaultCase.Root));

        // A relay that will be dropped is the case's own, and so is its log; the others are shared between cases.
        var own = relays is null || fault.Fault.Kind == FaultKind.DropRelay;
        using var relayLog = run.Log.Factory("relay");
        var relay = own ? await StartRelayAsync(cancellationToken, relayLog) : await relays!.RentAsync(cancellationToken);
        try
        {
            await RunOnAsync(run, relay, source, destination, cancellationToken);
        }
        finally
        {
            if (own)
            {
                await relay.DisposeAsync();
            }
            else
            {
                relays!.Return(relay);
            }
        }
    }

    private static async Task RunOnAsync(FaultRun run, CrocRelayServer relay, string source, string destination, CancellationToken cancellationToken)
    {
        var fault = run.Case;
        await using var proxy = FaultProxy.Start(relay.BaseAddress, relay.Ports, fault.Fault, () => DropAsync(relay));
        using var senderHandler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5) };
        using var recipientHandler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5) };
        using var senderLog = run.Log.Factory("sender");
        using var recipientLog = run.Log.Factory("recipient");
        var sender = NewCroc(proxy.SenderRelay, fault, senderHandler, senderLog);
        var recipient = NewCroc(proxy.RecipientRelay, fault, recipientHandler, recipientLog);
        _ = proxy.Fired.ContinueWith(t => run.Log.Add($"proxy: fault fired on {t.Result}"), TaskScheduler.Default);

        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bound.CancelAfter(FaultExpectations.Bound + TimeSpan.FromSeconds(15));
        var started = Stopwatch.GetTimestamp();
        TransferResult? sent = null;
        TransferResult? received = null;
        CrocSendOperation? operation = null;
        try
        {
            operation = await sender.StartSendAsync(SendContent.FromPath(Path.Combine(source, FaultCase.Root)), cancellationToken: bound.Token);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            run.SenderError = e;
            run.SenderTime = Stopwatch.GetElapsedTime(started);
        }

        if (operation is not null)
        {
            await using (operation)
            {
                var receiving = Timed(() => recipient.ReceiveAsync(operation.Code, new ReceiveOptions { OutputDirectory = destination }, bound.Token));
                var sending = Timed(() => operation.Completion);
                await Task.WhenAll(receiving, sending);
                (received, run.RecipientError, run.RecipientTime) = await receiving;
                (sent, run.SenderError, run.SenderTime) = await sending;
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        run.Fired = proxy.HasFired;
        run.Connections = [.. proxy.Connections.Select(c => c.ToString())];
        run.SenderDataBytes = proxy.Bytes(ProxySide.Sender, Flow.Up, LegKind.TcpLane, LegKind.WebSocketLeg);
        run.RecipientDataBytes = proxy.Bytes(ProxySide.Recipient, Flow.Down, LegKind.TcpLane, LegKind.WebSocketLeg);
        Judge(run, sent, received, destination);
    }

    private static async Task<(TransferResult? Result, Exception? Error, TimeSpan Time)> Timed(Func<Task<TransferResult>> action)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            var result = await action();
            return (result, null, Stopwatch.GetElapsedTime(started));
        }
        catch (Exception e)
        {
            return (null, e, Stopwatch.GetElapsedTime(started));
        }
    }

    /// <summary>Applies the outcome rules and the expectation of the case's fault kind.</summary>
    internal static void Judge(FaultRun run, TransferResult? sent, TransferResult? received, string destination)
    {
        var fault = run.Case;
        var problems = new List<string>();
        var byPath = fault.Files.ToDictionary(f => f.RelativePath, StringComparer.Ordinal);
        var onDisk = Directory.EnumerateFiles(destination, "*", SearchOption.AllDirectories)
            .Select(f => (Path: Path.GetRelativePath(destination, f).Replace('\\', '/'), Full: f))
            .ToList();
        var partials = onDisk.Where(f => IsPartial(f.Path)).ToList();
        var finals = onDisk.Where(f => !IsPartial(f.Path)).ToList();
        run.PartialFiles = partials.Count;

        // Whatever happened, a file under a final name must be the file sent.
        foreach (var (path, full) in finals)
        {
            if (!byPath.TryGetValue(path, out var expected))
            {
                problems.Add($"'{path}' is in the destination but was never sent");
            }
            else if (!File.ReadAllBytes(full).AsSpan().SequenceEqual(expected.Content))
            {
                problems.Add($"'{path}' is under its final name but differs from its source");
            }
        }

        foreach (var (side, error) in new[] { ("sender", run.SenderError), ("recipient", run.RecipientError) })
        {
            if (error is not null && (error is not CrocException typed || typed.Code == CrocErrorCode.Unknown))
            {
                problems.Add($"the {side} failed untyped: {error}");
            }

            var time = side == "sender" ? run.SenderTime : run.RecipientTime;
            if (time > FaultExpectations.Bound)
            {
                problems.Add($"the {side} took {time.TotalSeconds:0.0} s, past the bound of {FaultExpectations.Bound.TotalSeconds} s");
            }
        }

        if (sent is { Reconnects: > 0 } reconnected)
        {
            // After a reconnect only what was not yet acknowledged goes again: at most a lane's window (plus the frame
            // that filled it) per reconnect, whatever the file sizes.
            var bound = reconnected.Reconnects * (long)(CrocNet.Transfer.LaneSettings.DefaultWindow + CrocNet.Session.DataPlane.MaxFramePayload);
            if (reconnected.BytesResent > bound)
            {
                problems.Add($"the sender re-sent {reconnected.BytesResent} B after {reconnected.Reconnects} reconnect(s), above the {bound} B that can be unacknowledged");
            }
        }

        if (received is not null)
        {
            // A successful receive: every file there, byte-identical, digests equal to the sender's where it has a result.
            foreach (var file in fault.Files)
            {
                if (!finals.Any(f => f.Path == file.RelativePath))
                {
                    problems.Add($"the receive succeeded but '{file.RelativePath}' is missing");
                }
            }

            if (partials.Count > 0)
            {
                problems.Add($"the receive succeeded but left {partials.Count} partial file(s)");
            }

            var got = received.Files.ToDictionary(f => f.RelativePath, f => f.Digest, StringComparer.Ordinal);
            if (got.Count != fault.Files.Count || fault.Files.Any(f => !got.ContainsKey(f.RelativePath)))
            {
                problems.Add($"the recipient's result lists {got.Count} file(s), not the {fault.Files.Count} sent");
            }

            if (sent is not null)
            {
                foreach (var file in sent.Files)
                {
                    if (!got.TryGetValue(file.RelativePath, out var digest) || digest != file.Digest)
                    {
                        problems.Add($"'{file.RelativePath}': the recipient's digest differs from the sender's");
                    }
                }
            }
        }
        else
        {
            run.FinalFilesAfterFailure = finals.Count;
        }

        if (sent is not null && received is null && run.RecipientError is not null)
        {
            problems.Add("the sender reported success but the recipient failed: the sender was told a delivery that did not happen");
        }

        run.Outcome = (sent, received) switch
        {
            (not null, not null) => FaultOutcome.Completed,
            (null, not null) => FaultOutcome.DeliveredSenderFailed,
            _ => FaultOutcome.FailedTyped,
        };

        if (FaultExpectations.ByKind[fault.Fault.Kind] == Expected.Completes && run.Outcome != FaultOutcome.Completed)
        {
            problems.Add($"a {fault.Fault.Kind} fault must let the transfer complete; it ended {run.Outcome}");
        }

        if (problems.Count > 0)
        {
            run.Violation = string.Join("; ", problems);
        }
    }

    private static bool IsPartial(string relativePath)
    {
        var name = Path.GetFileName(relativePath);
        // A resumable file's partial keeps its journal beside it (docs/protocol.md, "Resume").
        return CrocNet.Files.PartialNames.IsOurs(name);
    }

    private static Croc NewCroc(Uri relay, FaultCase fault, HttpMessageHandler handler, Microsoft.Extensions.Logging.ILoggerFactory log) => Croc.New(o => o
        .UseLoggerFactory(log)
        .WithRelay(relay)
        .WithTransport(fault.Transport)
        .WithIdleTimeout(FaultExpectations.IdleTimeout(fault.Fault.Kind))
        .WithPeerTimeout(FaultExpectations.PeerTimeout)
        .WithChannelWaitTimeout(FaultExpectations.ChannelWaitTimeout)
        .WithRetries(2, TimeSpan.FromMilliseconds(20))
        .UseHttpMessageHandler(handler));

    internal static Task<CrocRelayServer> StartRelayAsync(CancellationToken cancellationToken, Microsoft.Extensions.Logging.ILoggerFactory? log = null) => CrocRelayServer.StartAsync(
        o =>
        {
            o.LoggerFactory = log;
            // Relays serve many cases from the same two addresses: lift the per-address limits (the relay tests check them).
            o.MaxConnectionsPerAddress = 10_000;
            o.Relay.MaxChannelsPerAddress = 100_000;
            o.Relay.MaxJoinsPerMinute = 100_000;
            o.Relay.MaxFailedLookupsPerMinute = 100_000;
            o.Relay.MaxConnectionsPerAddress = 10_000;
            o.Relay.MaxPendingHellosPerAddress = 10_000;
            o.Relay.MaxWaitingConnectionsPerAddress = 10_000;
            // A broken leg's lane waits this long for its re-attachment before the relay gives up on the channel:
            // short, so a case whose peer is gone ends well within the bound.
            o.Relay.ReconnectWindow = FaultExpectations.ReconnectWindow;
            o.Url = "http://127.0.0.1:0";
            o.Relay.Ports = [0, 0, 0, 0];
            o.Relay.ListenAddress = "127.0.0.1";
        },
        cancellationToken);

    /// <summary>Stops the relay host at once: a short grace, then whatever is still open is cut.</summary>
    internal static async Task DropAsync(CrocRelayServer relay)
    {
        using var grace = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        try
        {
            await relay.StopAsync(grace.Token);
        }
        catch (OperationCanceledException)
        {
        }
    }
}

/// <summary>Relays shared by the cases of a run: a case rents an idle one (or a new one starts) and returns it.</summary>
internal sealed class RelayPool : IAsyncDisposable
{
    private readonly Microsoft.Extensions.Logging.ILoggerFactory _logFactory;

    public RelayPool() => _logFactory = Log.Factory("relay");

    /// <summary>What every shared relay logged (no secrets: channel names and lanes), for the cases that break a rule.</summary>
    public CaseLog Log { get; } = new();

    private readonly System.Collections.Concurrent.ConcurrentBag<CrocRelayServer> _idle = [];
    private readonly System.Collections.Concurrent.ConcurrentBag<CrocRelayServer> _all = [];

    public async Task<CrocRelayServer> RentAsync(CancellationToken cancellationToken)
    {
        if (_idle.TryTake(out var relay))
        {
            return relay;
        }

        relay = await FaultCaseRunner.StartRelayAsync(cancellationToken, _logFactory);
        _all.Add(relay);
        return relay;
    }

    public void Return(CrocRelayServer relay) => _idle.Add(relay);

    public async ValueTask DisposeAsync()
    {
        foreach (var relay in _all)
        {
            await relay.DisposeAsync();
        }

        _logFactory.Dispose();
    }
}

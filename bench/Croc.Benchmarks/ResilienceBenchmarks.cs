using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using CrocNet.Relay;
using CrocNet.Tests.Faults;

namespace CrocNet.Benchmarks;

/// <summary>
/// What a broken network costs: one 1 GiB file through a real relay on loopback (Kestrel, four TCP lanes), sender and
/// recipient in this process, received to disk. Each case compares with its undisturbed twin measured in the same run.
/// </summary>
public abstract class ResilienceBenchmarkBase
{
    protected const long FileSize = 1L << 30;

    private CrocRelayServer _relay = null!;
    private string _root = null!;

    protected string Source { get; private set; } = null!;

    protected string Destination { get; private set; } = null!;

    protected CrocRelayServer Relay => _relay;

    [GlobalSetup]
    public void Setup()
    {
        _root = Path.Combine(Path.GetTempPath(), "croc-bench-resilience-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_root);
        Source = Path.Combine(_root, "big.bin");
        Destination = Path.Combine(_root, "out");
        var block = new byte[4 << 20];
        using (var file = File.Create(Source))
        {
            for (long written = 0; written < FileSize; written += block.Length)
            {
                RandomNumberGenerator.Fill(block);
                file.Write(block);
            }
        }

        _relay = CrocRelayServer.StartAsync(o =>
        {
            o.Url = "http://127.0.0.1:0";
            o.Relay.Ports = [0, 0, 0, 0];
            o.Relay.ListenAddress = "127.0.0.1";
        }).GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _relay.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_root, recursive: true);
    }

    /// <summary>A fresh, empty destination folder (no partials).</summary>
    protected void EmptyDestination()
    {
        if (Directory.Exists(Destination))
        {
            Directory.Delete(Destination, recursive: true);
        }

        Directory.CreateDirectory(Destination);
    }

    /// <summary>One transfer of the file, through <paramref name="relay"/> for the sender and <paramref name="recipientRelay"/> for the recipient.</summary>
    protected async Task<(TransferResult Sent, TransferResult Received)> TransferAsync(
        Uri relay, Uri recipientRelay, IProgress<TransferProgress>? progress = null, CancellationToken recipientToken = default)
    {
        using var senderHandler = new SocketsHttpHandler();
        using var recipientHandler = new SocketsHttpHandler();
        var sender = Croc.New(o => o.WithRelay(relay).UseHttpMessageHandler(senderHandler));
        var recipient = Croc.New(o => o.WithRelay(recipientRelay).UseHttpMessageHandler(recipientHandler));
        await using var operation = await sender.StartSendAsync(SendContent.FromPath(Source), cancellationToken: CancellationToken.None).ConfigureAwait(false);
        var received = recipient.ReceiveAsync(operation.Code, new ReceiveOptions { OutputDirectory = Destination, Progress = progress }, recipientToken);
        await Task.WhenAll(received, operation.Completion).ConfigureAwait(false);
        var result = (await operation.Completion.ConfigureAwait(false), await received.ConfigureAwait(false));
        if (new FileInfo(Path.Combine(Destination, "big.bin")).Length != FileSize)
        {
            throw new InvalidOperationException("The received file has the wrong size.");
        }

        return result;
    }
}

/// <summary>
/// 1 GiB with one data leg reset when it has carried half its share (lane 1 of 4, the sender's side, at 128 MiB: about
/// half-way through the transfer) against the same transfer undisturbed, both through the same byte-level proxy in front
/// of the relay. The reset lane re-dials, re-attaches within the relay's reconnect window and re-sends what was not
/// acknowledged; <c>BytesResent</c> is printed after each iteration.
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 3)]
public class ReconnectBenchmarks : ResilienceBenchmarkBase
{
    private TransferResult? _last;

    [Params(false, true)]
    public bool ResetAtHalf { get; set; }

    [IterationSetup]
    public void Prepare() => EmptyDestination();

    [Benchmark]
    public async Task OneGiB()
    {
        var fault = ResetAtHalf
            ? new Fault(FaultKind.Reset, new FaultTarget(ProxySide.Sender, LegKind.TcpLane, 1, Flow.Up), FileSize / 4 / 2)
            : null;
        await using var proxy = FaultProxy.Start(Relay.BaseAddress, Relay.Ports, fault);
        var (sent, _) = await TransferAsync(proxy.SenderRelay, proxy.RecipientRelay).ConfigureAwait(false);
        if (ResetAtHalf && (!proxy.HasFired || sent.Reconnects == 0))
        {
            throw new InvalidOperationException("The reset did not happen: nothing was measured.");
        }

        _last = sent;
    }

    [IterationCleanup]
    public void Report()
    {
        if (_last is { } sent)
        {
            Console.WriteLine($"// reconnect: reset={ResetAtHalf} reconnects={sent.Reconnects} bytes_resent={sent.BytesResent}");
        }
    }
}

/// <summary>
/// 1 GiB into a folder that already holds the first half from an interrupted receive (the recipient cancelled when half
/// had arrived; its partial and journal are kept) against the same transfer into an empty folder. The resumed receive
/// re-verifies what it kept, the sender skips what matches, and the file's digest is checked as always.
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 3)]
public class ResumeBenchmarks : ResilienceBenchmarkBase
{
    private TransferResult? _last;

    [Params(false, true)]
    public bool HalfAlreadyHere { get; set; }

    [IterationSetup]
    public void Prepare()
    {
        EmptyDestination();
        if (HalfAlreadyHere)
        {
            InterruptAtHalfAsync().GetAwaiter().GetResult();
        }
    }

    [Benchmark]
    public async Task OneGiB()
    {
        var (_, received) = await TransferAsync(Relay.BaseAddress, Relay.BaseAddress).ConfigureAwait(false);
        if (HalfAlreadyHere && received.ResumedBytes == 0)
        {
            throw new InvalidOperationException("Nothing was resumed: nothing was measured.");
        }

        _last = received;
    }

    [IterationCleanup]
    public void Report()
    {
        if (_last is { } received)
        {
            Console.WriteLine($"// resume: half_here={HalfAlreadyHere} resumed_bytes={received.ResumedBytes} moved={received.TotalBytes - received.ResumedBytes}");
        }
    }

    private async Task InterruptAtHalfAsync()
    {
        using var stop = new CancellationTokenSource();
        var progress = new Progress(p =>
        {
            if (p.BytesTransferred >= FileSize / 2)
            {
                stop.Cancel();
            }
        });
        try
        {
            await TransferAsync(Relay.BaseAddress, Relay.BaseAddress, progress, stop.Token).ConfigureAwait(false);
            throw new InvalidOperationException("The interrupted receive completed.");
        }
        catch (Exception e) when (e is OperationCanceledException or CrocException)
        {
            // Expected: the recipient cancelled half-way and kept what it had.
        }
    }

    /// <summary>Reports on the calling thread, unlike <see cref="Progress{T}"/>, so the cut is made at once.</summary>
    private sealed class Progress(Action<TransferProgress> report) : IProgress<TransferProgress>
    {
        public void Report(TransferProgress value) => report(value);
    }
}

using System.Diagnostics;
using System.Text;
using CrocNet.Cli;
using CrocNet.Tests.Cli;

namespace CrocNet.Tests.Faults;

/// <summary>
/// SIGKILL of a real <c>croc send</c> or <c>croc receive</c> process (the built <c>Croc.Cli.dll</c> through <c>dotnet</c>)
/// at a seeded moment once bytes flow: when the recipient's hidden partial file has passed a seeded size. The
/// transfer runs sender@127.0.0.2 → recipient@127.0.0.3 through a <see cref="FaultProxy"/> (no fault) in front of a
/// real relay. The survivor must exit within a bound: with success only if the victim's part was already done (then the
/// file is exact), else with its documented code for a failed transfer, and the destination must hold no file under a
/// final name, only resumable partials. The same transfer run again then resumes: it completes, the file is exact, and
/// the sender moves at most what the journals did not vouch for plus one chunk per lane.
/// </summary>
[TestFixture]
[Parallelizable(ParallelScope.Children)]
public sealed class CliKillTests
{
    private const int FileSize = 32 * 1024 * 1024;

    /// <summary>How long the survivor may take to notice and exit.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    public static IEnumerable<int> Seeds => Enumerable.Range(1, 6);

    [TestCaseSource(nameof(Seeds))]
    [CancelAfter(180_000)]
    public async Task Kill_AfterBytesFlow_SurvivorFailsTypedThenTheSameTransferResumes(int seed, CancellationToken cancellationToken)
    {
        if (!File.Exists(TerminalSession.CliDll))
        {
            Assert.Ignore($"{TerminalSession.CliDll} is not built; run dotnet test Croc.sln.");
        }

        var random = new Random(seed);
        var killRecipient = seed % 2 == 1;
        var threshold = (long)(FileSize * (0.05 + (random.NextDouble() * 0.6)));
        var folder = Directory.CreateTempSubdirectory("croc-kill-").FullName;
        try
        {
            var source = Path.Combine(folder, "big.bin");
            var content = new byte[FileSize];
            random.NextBytes(content);
            await File.WriteAllBytesAsync(source, content, cancellationToken);
            var destination = Path.Combine(folder, "dst");
            Directory.CreateDirectory(destination);

            await using var relay = await FaultCaseRunner.StartRelayAsync(cancellationToken);
            await using var proxy = FaultProxy.Start(relay.BaseAddress, relay.Ports);
            var code = Croc.GenerateCode();
            using var sender = CliProcess.Start(["send", "--relay", proxy.SenderRelay.ToString(), "--no-progress", source], folder, code);
            await sender.WaitForOutputAsync("code:", TimeSpan.FromSeconds(60), cancellationToken);
            using var recipient = CliProcess.Start(["receive", "--relay", proxy.RecipientRelay.ToString(), "--yes", "--no-progress", "--out", destination], folder, code);

            // Bytes flow: the recipient's partial file passes the seeded size, or for a killed sender, what it sent
            // does (socket and relay buffers hold megabytes, so a partial file lags far behind the sender).
            long Progress() => killRecipient ? PartialSize(destination) : proxy.Bytes(ProxySide.Sender, Flow.Up, LegKind.TcpLane, LegKind.WebSocketLeg);
            var flowed = await PollAsync(() => Progress() >= threshold || sender.HasExited || recipient.HasExited, TimeSpan.FromSeconds(90), cancellationToken);
            var (victim, survivor) = killRecipient ? (recipient, sender) : (sender, recipient);
            var killedAt = Progress();
            var killed = !victim.HasExited;
            victim.Kill();
            var clock = Stopwatch.StartNew();
            var exit = await survivor.WaitForExitAsync(Bound, cancellationToken);
            var context = $"seed {seed}: killed the {(killRecipient ? "recipient at partial size" : "sender at bytes sent")} {killedAt} (threshold {threshold}), "
                + $"proxy saw the sender send {proxy.Bytes(ProxySide.Sender, Flow.Up, LegKind.TcpLane, LegKind.WebSocketLeg)} B; "
                + $"survivor exit {(exit is { } e ? e.ToString(System.Globalization.CultureInfo.InvariantCulture) : "none")} after {clock.Elapsed.TotalSeconds:0.0} s\n"
                + $"sender:\n{sender.Output}\nrecipient:\n{recipient.Output}";
            TestContext.Out.WriteLine(context);

            Assert.That(flowed, Is.True, "the transfer never reached the threshold: " + context);
            Assert.That(killed, Is.True, "the transfer ended before the kill: " + context);
            Assert.That(exit, Is.Not.Null, $"the survivor did not exit within {Bound.TotalSeconds} s: " + context);
            var final = Path.Combine(destination, "big.bin");
            if (exit == 0)
            {
                // The victim died after its part was done (a sender whose bytes had all gone, a recipient that had said
                // Done): the transfer completed, and then the file must be whole and exact.
                Assert.That(File.ReadAllBytes(final).AsSpan().SequenceEqual(content), Is.True, "a completed transfer's file is exact: " + context);
                return;
            }

            Assert.That(exit, Is.EqualTo(ExitCodes.TransferFailed), "the survivor must fail with the documented code for a lost connection: " + context);
            var finals = Directory.EnumerateFiles(destination, "*", SearchOption.AllDirectories).Select(Path.GetFileName)
                .Where(n => !CrocNet.Files.PartialNames.IsOurs(n)).ToList();
            Assert.That(finals, Is.Empty, "an interrupted transfer must leave no file under a final name, only resumable partials: " + context);

            // The same file again into the same folder: it resumes from what the crash left, and only the rest moves.
            var kept = KeptBytes(destination);
            var before = proxy.Bytes(ProxySide.Sender, Flow.Up, LegKind.TcpLane, LegKind.WebSocketLeg);
            var again = Croc.GenerateCode();
            using var sender2 = CliProcess.Start(["send", "--relay", proxy.SenderRelay.ToString(), "--no-progress", source], folder, again);
            await sender2.WaitForOutputAsync("code:", TimeSpan.FromSeconds(60), cancellationToken);
            using var recipient2 = CliProcess.Start(["receive", "--relay", proxy.RecipientRelay.ToString(), "--yes", "--no-progress", "--out", destination], folder, again);
            var received = await recipient2.WaitForExitAsync(Bound, cancellationToken);
            var sent = await sender2.WaitForExitAsync(Bound, cancellationToken);
            var moved = proxy.Bytes(ProxySide.Sender, Flow.Up, LegKind.TcpLane, LegKind.WebSocketLeg) - before;
            var again2 = $"{context}\nresume: kept {kept} B, the sender moved {moved} B; exits {received}/{sent}\nsender:\n{sender2.Output}\nrecipient:\n{recipient2.Output}";
            TestContext.Out.WriteLine(again2);
            Assert.That((received, sent), Is.EqualTo(((int?)0, (int?)0)), "the resumed transfer completes: " + again2);
            Assert.That(File.ReadAllBytes(final).AsSpan().SequenceEqual(content), Is.True, "the resumed file is exact: " + again2);
            // Bytes sent after a resume: at most what was missing plus one chunk per lane (and the frames' own overhead).
            Assert.That(moved, Is.LessThanOrEqualTo(FileSize - kept + (4 * ChunkSize) + (256 * 1024)), again2);
            Assert.That(Directory.EnumerateFiles(destination).Select(Path.GetFileName), Is.EquivalentTo(new[] { "big.bin" }), "nothing is left over: " + again2);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private const int ChunkSize = 1024 * 1024;

    /// <summary>What the journals in <paramref name="destination"/> vouch for: the bytes a resume may keep.</summary>
    private static long KeptBytes(string destination)
    {
        long kept = 0;
        foreach (var journal in Directory.EnumerateFiles(destination, ".croc-*.journal"))
        {
            var bytes = File.ReadAllBytes(journal);
            if (bytes.Length >= CrocNet.Files.ResumeJournal.HeaderSize
                && CrocNet.Files.ResumeJournal.TryRead(bytes, bytes.AsSpan(0, CrocNet.Files.ResumeJournal.HeaderSize), FileSize / ChunkSize, CrocHashAlgorithm.XxHash128, out var chunks))
            {
                kept += chunks.Count * (long)ChunkSize;
            }
        }

        return kept;
    }

    private static long PartialSize(string destination)
    {
        try
        {
            return new DirectoryInfo(destination).EnumerateFiles(".croc-*.partial").Select(f => f.Length).DefaultIfEmpty(0).Max();
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static async Task<bool> PollAsync(Func<bool> condition, TimeSpan within, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > within)
            {
                return false;
            }

            await Task.Delay(5, cancellationToken);
        }

        return true;
    }

    /// <summary>One <c>dotnet Croc.Cli.dll</c> process, its output captured; the code goes in <c>CROC_SECRET</c>, never on the command line.</summary>
    private sealed class CliProcess : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();
        private readonly Lock _lock = new();

        private CliProcess(Process process) => _process = process;

        public bool HasExited => _process.HasExited;

        public string Output
        {
            get
            {
                lock (_lock)
                {
                    return _output.ToString();
                }
            }
        }

        public static CliProcess Start(IReadOnlyList<string> args, string workingDirectory, string code)
        {
            var start = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
                WorkingDirectory = workingDirectory,
            };
            start.ArgumentList.Add(TerminalSession.CliDll);
            foreach (var arg in args)
            {
                start.ArgumentList.Add(arg);
            }

            start.Environment["CROC_SECRET"] = code;
            start.Environment.Remove("CROC_RELAY");
            var process = new Process { StartInfo = start };
            var cli = new CliProcess(process);
            process.OutputDataReceived += (_, e) => cli.Append(e.Data);
            process.ErrorDataReceived += (_, e) => cli.Append(e.Data);
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return cli;
        }

        private void Append(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (_lock)
            {
                _output.AppendLine(line);
            }
        }

        public async Task WaitForOutputAsync(string text, TimeSpan within, CancellationToken cancellationToken)
        {
            if (!await PollAsync(() => Output.Contains(text, StringComparison.Ordinal) || HasExited, within, cancellationToken) || !Output.Contains(text, StringComparison.Ordinal))
            {
                Assert.Fail($"croc did not print '{text}' within {within.TotalSeconds} s:\n{Output}");
            }
        }

        /// <summary>SIGKILL: no handler runs, nothing is cleaned up.</summary>
        public void Kill()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: false);
            }
        }

        /// <summary>The exit code, or null if the process is still running after <paramref name="within"/>.</summary>
        public async Task<int?> WaitForExitAsync(TimeSpan within, CancellationToken cancellationToken)
        {
            using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            bound.CancelAfter(within);
            try
            {
                await _process.WaitForExitAsync(bound.Token);
                return _process.ExitCode;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return null;
            }
        }

        public void Dispose()
        {
            Kill();
            _process.WaitForExit(5_000);
            _process.Dispose();
        }
    }
}

using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using CrocNet.Tests.EndToEnd;

namespace CrocNet.Tests.Cli;

/// <summary>The croc command line end to end: in-process runs with redirected streams against a real relay on loopback.</summary>
[TestFixture]
[NonParallelizable]
public sealed class CliTests : TransferTestBase
{
    private string RelayUrl => Relay.BaseAddress.ToString();

    private static string NewCode() => Croc.GenerateCode();

    [Test]
    [CancelAfter(60_000)]
    public async Task SendReceive_File_ArrivesByteExactAndSummariesPrinted(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var data = WriteRandomFile(Path.Combine(source, "report.bin"), 300_000);
        var target = NewFolder();
        var code = NewCode();

        var send = new CliRun(["send", "--relay", RelayUrl, "--code", code, Path.Combine(source, "report.bin")], cancellationToken: cancellationToken);
        Assert.That(await send.WaitForLineAsync("code: ", cancellationToken), Is.EqualTo("code: " + code));
        var receive = await CliRun.CompleteAsync(["receive", "--relay", RelayUrl, "--yes", "--out", target, code], cancellationToken);

        Assert.Multiple(async () =>
        {
            Assert.That(await receive.ExitAsync(cancellationToken), Is.Zero, receive.Stderr);
            Assert.That(await send.ExitAsync(cancellationToken), Is.Zero, send.Stderr);
            Assert.That(File.ReadAllBytes(Path.Combine(target, "report.bin")), Is.EqualTo(data));
            Assert.That(receive.Stderr, Does.Contain("report.bin").And.Contain("Received 1 file"));
            Assert.That(send.Stderr, Does.Contain("Sent 1 file").And.Contain("300000 bytes").And.Contain("MB/s"));
            // Messages never go to a standard output that is not a terminal.
            Assert.That(send.Stdout, Is.Empty);
            Assert.That(receive.Stdout, Is.Empty);
        });
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Send_FolderOnEmbeddedRelay_PrintedReceiveCommandWorks(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var folder = Path.Combine(source, "album");
        WriteRandomFile(Path.Combine(folder, "a.jpg"), 50_000);
        WriteRandomFile(Path.Combine(folder, "nested", "b.raw"), 1_500_000);
        Directory.CreateDirectory(Path.Combine(folder, "empty"));
        var target = NewFolder();

        // No --relay: the CLI starts its own relay (moved off the fixed port 9009 for the test).
        var send = new CliRun(["send", "--embedded-url", "http://127.0.0.1:0", "--embedded-ports", "0,0,0,0", folder], cancellationToken: cancellationToken);
        var printed = await send.WaitForLineAsync("CROC_SECRET=", cancellationToken);
        Assert.That(printed, Does.Match(@"^CROC_SECRET=[a-z0-9]+-[a-z]+-[a-z]+-[a-z]+ croc receive --relay http://127\.0\.0\.1:\d+$"));
        var (environment, args) = PrintedCommand(printed);
        var receive = await CliRun.CompleteAsync([.. args, "--yes", "--out", target], cancellationToken, environment: environment);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.Zero, receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.Zero, send.Stderr);
        var sent = Snapshot(source);
        var received = Snapshot(target);
        Assert.That(received.Folders, Is.EquivalentTo(sent.Folders));
        Assert.That(received.Files.Keys, Is.EquivalentTo(sent.Files.Keys));
        foreach (var (path, bytes) in sent.Files)
        {
            Assert.That(received.Files[path], Is.EqualTo(bytes), path);
        }

        Assert.That(send.Stderr, Does.Contain("Started a relay on this machine"));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Send_TwoConcurrentSendsOnOneMachine_SecondOutlivesTheFirst(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var first = WriteRandomFile(Path.Combine(source, "first.bin"), 20_000);
        var second = WriteRandomFile(Path.Combine(source, "second.bin"), 30_000);
        var target = NewFolder();
        // Both ask for the same relay address, as two `croc send` in two terminals do (9009 by default).
        var url = $"http://127.0.0.1:{FreePort()}";

        using var sendOne = new CliRun(["send", "--embedded-url", url, "--embedded-ports", "0,0", "--discovery-port", "0", Path.Combine(source, "first.bin")], cancellationToken: cancellationToken);
        var (envOne, argsOne) = PrintedCommand(await sendOne.WaitForLineAsync("CROC_SECRET=", cancellationToken));
        using var sendTwo = new CliRun(["send", "--embedded-url", url, "--embedded-ports", "0,0", "--discovery-port", "0", Path.Combine(source, "second.bin")], cancellationToken: cancellationToken);
        var (envTwo, argsTwo) = PrintedCommand(await sendTwo.WaitForLineAsync("CROC_SECRET=", cancellationToken));
        Assert.That(sendTwo.Stderr, Does.Contain("started this send's own relay on free ports"));

        // The first transfer ends and its relay stops; the second is still served by its own.
        using var receiveOne = await CliRun.CompleteAsync([.. argsOne, "--yes", "--out", Path.Combine(target, "1")], cancellationToken, environment: envOne);
        Assert.That(await receiveOne.ExitAsync(cancellationToken), Is.Zero, receiveOne.Stderr);
        Assert.That(await sendOne.ExitAsync(cancellationToken), Is.Zero, sendOne.Stderr);
        using var receiveTwo = await CliRun.CompleteAsync([.. argsTwo, "--yes", "--out", Path.Combine(target, "2")], cancellationToken, environment: envTwo);

        Assert.That(await receiveTwo.ExitAsync(cancellationToken), Is.Zero, receiveTwo.Stderr);
        Assert.That(await sendTwo.ExitAsync(cancellationToken), Is.Zero, sendTwo.Stderr);
        Assert.That(File.ReadAllBytes(Path.Combine(target, "1", "first.bin")), Is.EqualTo(first));
        Assert.That(File.ReadAllBytes(Path.Combine(target, "2", "second.bin")), Is.EqualTo(second));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Send_EmbeddedPortHeldByOtherProgram_MovesToFreePortsAndTransfers(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var data = WriteRandomFile(Path.Combine(source, "x.bin"), 10);
        var target = NewFolder();
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;

        using var send = new CliRun(["send", "--embedded-url", $"http://127.0.0.1:{port}", "--embedded-ports", "0", "--discovery-port", "0", Path.Combine(source, "x.bin")], cancellationToken: cancellationToken);
        var (environment, args) = PrintedCommand(await send.WaitForLineAsync("CROC_SECRET=", cancellationToken));
        Assert.That(args, Does.Not.Contain($"http://127.0.0.1:{port}"));
        using var receive = await CliRun.CompleteAsync([.. args, "--yes", "--out", target], cancellationToken, environment: environment);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.Zero, receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.Zero, send.Stderr);
        Assert.That(send.Stderr, Does.Contain($"Port {port} or 0 is in use"));
        Assert.That(File.ReadAllBytes(Path.Combine(target, "x.bin")), Is.EqualTo(data));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Stdin_PipedToReceiverStdout_ByteExact(CancellationToken cancellationToken)
    {
        var data = RandomNumberGenerator.GetBytes(2_500_000 + 17);
        var code = NewCode();

        // No path and a non-interactive standard input: the data is streamed from stdin.
        var send = new CliRun(["send", "--relay", RelayUrl, "--code", code, "--name", "dump.bin"], stdin: new PipeLikeStream(data), cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);
        var receive = await CliRun.CompleteAsync(["receive", "--relay", RelayUrl, "--yes", "--stdout", code], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.Zero, receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.Zero, send.Stderr);
        Assert.That(receive.Stdout, Is.EqualTo(data), "stdout must carry exactly the bytes and nothing else");
        Assert.That(receive.Stderr, Does.Contain("dump.bin"));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task SendDash_WithDefaultName_ReceivesFileNamedStdin(CancellationToken cancellationToken)
    {
        var data = Encoding.UTF8.GetBytes("line one\nline two\n");
        var target = NewFolder();
        var code = NewCode();

        var send = new CliRun(["send", "--relay", RelayUrl, "--code", code, "-"], stdin: new PipeLikeStream(data), cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);
        var receive = await CliRun.CompleteAsync(["receive", "--relay", RelayUrl, "--yes", "--out", target, code], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.Zero, receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.Zero, send.Stderr);
        Assert.That(File.ReadAllBytes(Path.Combine(target, "stdin")), Is.EqualTo(data));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Text_IsPrintedOnReceiverStdout(CancellationToken cancellationToken)
    {
        const string text = "meet at 10 — café ✓";
        var target = NewFolder();
        var code = NewCode();

        var send = new CliRun(["send", "--relay", RelayUrl, "--code", code, "--text", text], cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);
        var receive = await CliRun.CompleteAsync(["receive", "--relay", RelayUrl, "--yes", "--out", target, code], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.Zero, receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.Zero, send.Stderr);
        Assert.That(receive.StdoutText, Is.EqualTo(text + "\n"), "not a terminal: printed exactly as sent");
        Assert.That(Directory.EnumerateFileSystemEntries(target), Is.Empty);
        Assert.That(send.Stderr, Does.Contain("Sent a text (19 characters)."));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task CodeFromCrocSecret_BothSides_Transfers(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var data = WriteRandomFile(Path.Combine(source, "s.bin"), 1000);
        var target = NewFolder();
        var environment = new Dictionary<string, string> { ["CROC_SECRET"] = NewCode(), ["CROC_RELAY"] = RelayUrl };

        var send = new CliRun(["send", Path.Combine(source, "s.bin")], environment: environment, cancellationToken: cancellationToken);
        Assert.That(await send.WaitForLineAsync("code: ", cancellationToken), Is.EqualTo("code: " + environment["CROC_SECRET"]));
        var receive = await CliRun.CompleteAsync(["receive", "--yes", "--out", target], cancellationToken, environment: environment);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.Zero, receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.Zero, send.Stderr);
        Assert.That(File.ReadAllBytes(Path.Combine(target, "s.bin")), Is.EqualTo(data));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Receive_WrongCode_Exit2AndNothingWritten(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        WriteRandomFile(Path.Combine(source, "secret.bin"), 5000);
        var target = NewFolder();
        var code = NewCode();
        var wrong = code.Split('-')[0] + "-wrong-guess-here";

        var send = new CliRun(["send", "--relay", RelayUrl, "--code", code, Path.Combine(source, "secret.bin")], cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);
        var receive = await CliRun.CompleteAsync(["receive", "--relay", RelayUrl, "--yes", "--out", target, wrong], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.EqualTo(2), receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.EqualTo(2), send.Stderr);
        Assert.That(Directory.EnumerateFileSystemEntries(target), Is.Empty);
        Assert.That(receive.Stderr, Does.StartWith("error: "));
        Assert.That(receive.Stderr + send.Stderr, Does.Not.Contain("wrong-guess-here"), "the secret never appears in an error");
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Receive_ExistingFileWithoutOverwrite_Exit5ThenOverwriteReplacesIt(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var data = WriteRandomFile(Path.Combine(source, "same.txt"), 2000);
        var target = NewFolder();
        var existing = Path.Combine(target, "same.txt");
        File.WriteAllText(existing, "keep me");
        var code = NewCode();

        var send = new CliRun(["send", "--relay", RelayUrl, "--code", code, Path.Combine(source, "same.txt")], cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);
        var receive = await CliRun.CompleteAsync(["receive", "--relay", RelayUrl, "--yes", "--out", target, code], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.EqualTo(5), receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.EqualTo(5), send.Stderr);
        Assert.That(File.ReadAllText(existing), Is.EqualTo("keep me"));
        Assert.That(Directory.EnumerateFileSystemEntries(target), Has.Exactly(1).Items);

        code = NewCode();
        send = new CliRun(["send", "--relay", RelayUrl, "--code", code, Path.Combine(source, "same.txt")], cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);
        receive = await CliRun.CompleteAsync(["receive", "--relay", RelayUrl, "--yes", "--overwrite", "--out", target, code], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.Zero, receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.Zero, send.Stderr);
        Assert.That(File.ReadAllBytes(existing), Is.EqualTo(data));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Receive_NonInteractiveWithoutYes_RefusesClearlyAndWritesNothing(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        WriteRandomFile(Path.Combine(source, "offer.bin"), 4000);
        var target = NewFolder();
        var code = NewCode();

        var send = new CliRun(["send", "--relay", RelayUrl, "--code", code, Path.Combine(source, "offer.bin")], cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);
        var receive = await CliRun.CompleteAsync(["receive", "--relay", RelayUrl, "--out", target, code], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.EqualTo(5), receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.EqualTo(5), send.Stderr);
        Assert.That(receive.Stderr, Does.Contain("offer.bin"), "the offer is shown first");
        Assert.That(receive.Stderr, Does.Contain("error: Not accepting without confirmation").And.Contain("--yes"));
        Assert.That(send.Stderr, Does.Contain("declined").And.Not.Contain("--yes"), "the recipient's own advice is not the sender's");
        Assert.That(Directory.EnumerateFileSystemEntries(target), Is.Empty);
    }

    [TestCase("n\n", 5)]
    [TestCase("y\n", 0)]
    [CancelAfter(60_000)]
    public async Task Receive_InteractivePrompt_FollowsTheAnswer(string answer, int expected, CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var data = WriteRandomFile(Path.Combine(source, "ask.bin"), 3000);
        var target = NewFolder();
        var code = NewCode();

        var send = new CliRun(["send", "--relay", RelayUrl, "--code", code, Path.Combine(source, "ask.bin")], cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);
        var receive = await CliRun.CompleteAsync(
            ["receive", "--relay", RelayUrl, "--out", target, code], cancellationToken, stdin: new MemoryStream(Encoding.UTF8.GetBytes(answer)), interactive: true);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.EqualTo(expected), receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.EqualTo(expected), send.Stderr);
        Assert.That(receive.Stderr, Does.Contain("Accept? [y/N]"));
        if (expected == 0)
        {
            Assert.That(File.ReadAllBytes(Path.Combine(target, "ask.bin")), Is.EqualTo(data));
        }
        else
        {
            Assert.That(Directory.EnumerateFileSystemEntries(target), Is.Empty);
        }
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ReceiveStdout_FolderOffered_RefusedWithExit5(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        WriteRandomFile(Path.Combine(source, "d", "1.bin"), 100);
        WriteRandomFile(Path.Combine(source, "d", "2.bin"), 100);
        var code = NewCode();

        var send = new CliRun(["send", "--relay", RelayUrl, "--code", code, Path.Combine(source, "d")], cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);
        var receive = await CliRun.CompleteAsync(["receive", "--relay", RelayUrl, "--yes", "--stdout", code], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.EqualTo(5), receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.EqualTo(5), send.Stderr);
        Assert.That(receive.Stdout, Is.Empty);
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Receive_NoRelayAndNothingRunning_PlainMessageExit3(CancellationToken cancellationToken)
    {
        var port = FreePort();

        // Discovery asks a loopback UDP port where nobody listens instead of broadcasting.
        var receive = await CliRun.CompleteAsync(["receive", "--embedded-url", $"http://0.0.0.0:{port}", "--discovery-target", $"127.0.0.1:{FreeUdpPort()}", "--yes", NewCode()], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.EqualTo(3));
        var lines = receive.Stderr.TrimEnd().Split('\n');
        Assert.That(lines, Has.Length.EqualTo(2), "the search, then one error line without a stack trace");
        Assert.That(lines[0], Is.EqualTo("Looking for the sender on the local network…"));
        Assert.That(lines[1], Does.StartWith("error: No relay given, none is running on this machine").And.Contain("no sender answered on the local network").And.Contain("--relay"));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Receive_NoRelay_FindsTheSendersEmbeddedRelayByDiscovery(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var data = WriteRandomFile(Path.Combine(source, "lan.bin"), 120_000);
        var target = NewFolder();
        var code = NewCode();

        var send = new CliRun(["send", "--embedded-url", "http://127.0.0.1:0", "--embedded-ports", "0,0,0,0", "--discovery-port", "0", "--code", code, Path.Combine(source, "lan.bin")], cancellationToken: cancellationToken);
        var udpPort = DiscoveryPort(await send.WaitForLineAsync("Receivers on the local network can find it", cancellationToken));
        await send.WaitForLineAsync("code: ", cancellationToken);

        // No --relay and no relay at the receiver's default address: only discovery can find the sender.
        var receive = await CliRun.CompleteAsync(
            ["receive", "--embedded-url", $"http://127.0.0.1:{FreePort()}", "--discovery-target", $"127.0.0.1:{udpPort}", "--yes", "--out", target, code], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.Zero, receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.Zero, send.Stderr);
        Assert.That(File.ReadAllBytes(Path.Combine(target, "lan.bin")), Is.EqualTo(data));
        Assert.That(receive.Stderr, Does.Contain("Looking for the sender on the local network").And.Match(@"Found the sender's relay: http://127\.0\.0\.1:\d+/"));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Receive_NoRelay_SenderOnAnotherChannelDoesNotAnswer_Exit3(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        WriteRandomFile(Path.Combine(source, "x.bin"), 10);
        using var ctrlC = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        var send = new CliRun(["send", "--embedded-url", "http://127.0.0.1:0", "--embedded-ports", "0,0,0,0", "--discovery-port", "0", "--code", NewCode(), Path.Combine(source, "x.bin")], cancellationToken: ctrlC.Token);
        var udpPort = DiscoveryPort(await send.WaitForLineAsync("Receivers on the local network can find it", cancellationToken));
        await send.WaitForLineAsync("code: ", cancellationToken);

        var receive = await CliRun.CompleteAsync(
            ["receive", "--embedded-url", $"http://127.0.0.1:{FreePort()}", "--discovery-target", $"127.0.0.1:{udpPort}", "--yes", NewCode()], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.EqualTo(3), receive.Stderr);
        Assert.That(receive.Stderr, Does.Contain("no sender answered on the local network"));
        await ctrlC.CancelAsync();
        Assert.That(await send.ExitAsync(cancellationToken), Is.EqualTo(130), send.Stderr);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Send_DiscoveryPortTaken_WarnsAndTransfersWithPrintedCommand(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var data = WriteRandomFile(Path.Combine(source, "y.bin"), 1000);
        var target = NewFolder();
        using var squatter = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        squatter.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var taken = ((IPEndPoint)squatter.LocalEndPoint!).Port;

        var send = new CliRun(["send", "--embedded-url", "http://127.0.0.1:0", "--embedded-ports", "0,0,0,0", "--discovery-port", $"{taken}", Path.Combine(source, "y.bin")], cancellationToken: cancellationToken);
        var (environment, args) = PrintedCommand(await send.WaitForLineAsync("CROC_SECRET=", cancellationToken));
        var receive = await CliRun.CompleteAsync([.. args, "--yes", "--out", target], cancellationToken, environment: environment);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.Zero, receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.Zero, send.Stderr);
        Assert.That(send.Stderr, Does.Contain($"LAN discovery is off (UDP port {taken}"));
        Assert.That(File.ReadAllBytes(Path.Combine(target, "y.bin")), Is.EqualTo(data));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Receive_RelayUnreachable_Exit3(CancellationToken cancellationToken)
    {
        var receive = await CliRun.CompleteAsync(["receive", "--relay", $"http://127.0.0.1:{FreePort()}", "--yes", NewCode()], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.EqualTo(3), receive.Stderr);
        Assert.That(receive.Stderr, Does.StartWith("error: "));
    }

    [TestCase("send|--bogus")]
    [TestCase("receive|--curve|p999|x-y")]
    [TestCase("send|--curve|p999|--text|hi")]
    [TestCase("receive|--relay|http://127.0.0.1:1")]
    [TestCase("receive|--relay|http://127.0.0.1:1|--yes|nodashatall")]
    [TestCase("send|--relay|http://127.0.0.1:1|/definitely/not/here.txt")]
    [TestCase("send|--relay|http://127.0.0.1:1|--text|hi|also-a-file.txt")]
    [CancelAfter(30_000)]
    public async Task UsageErrors_Exit1(string commandLine, CancellationToken cancellationToken)
    {
        var run = await CliRun.CompleteAsync(commandLine.Split('|'), cancellationToken);

        Assert.That(await run.ExitAsync(cancellationToken), Is.EqualTo(1), run.Stderr);
        Assert.That(run.Stderr, Is.Not.Empty);
        Assert.That(run.Stderr, Does.Not.Contain("   at "), "no stack trace without --debug");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Send_NothingToSendOnInteractiveStdin_Exit1(CancellationToken cancellationToken)
    {
        var run = await CliRun.CompleteAsync(["send", "--relay", RelayUrl], cancellationToken, interactive: true);

        Assert.That(await run.ExitAsync(cancellationToken), Is.EqualTo(1));
        Assert.That(run.Stderr, Does.StartWith("error: Nothing to send"));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Send_CancelledWhileWaiting_Exit130(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        WriteRandomFile(Path.Combine(source, "x.bin"), 10);
        using var ctrlC = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        var send = new CliRun(["send", "--relay", RelayUrl, Path.Combine(source, "x.bin")], cancellationToken: ctrlC.Token);
        await send.WaitForLineAsync("code: ", cancellationToken);
        await ctrlC.CancelAsync();

        Assert.That(await send.ExitAsync(cancellationToken), Is.EqualTo(130));
        Assert.That(send.Stderr, Does.Contain("error: cancelled"));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task RelayCommand_ServesTransfersUntilCancelled(CancellationToken cancellationToken)
    {
        using var ctrlC = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var relay = new CliRun(["relay", "--listen", "http://127.0.0.1:0", "--ports", "0,0", "--quiet"], cancellationToken: ctrlC.Token);
        var listening = await relay.WaitForLineAsync("relay listening at ", cancellationToken);
        var url = listening.Split(' ')[3];
        Assert.That(listening, Does.Match(@"\(TCP ports \d+,\d+ on 127\.0\.0\.1; WebSocket legs on /staple; plain http; open: no relay password\)"));

        var source = NewFolder();
        var data = WriteRandomFile(Path.Combine(source, "r.bin"), 200_000);
        var target = NewFolder();
        var code = NewCode();
        var send = new CliRun(["send", "--relay", url, "--code", code, Path.Combine(source, "r.bin")], cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);
        var receive = await CliRun.CompleteAsync(["receive", "--relay", url, "--yes", "--out", target, code], cancellationToken);
        Assert.That(await receive.ExitAsync(cancellationToken), Is.Zero, receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.Zero, send.Stderr);
        Assert.That(File.ReadAllBytes(Path.Combine(target, "r.bin")), Is.EqualTo(data));

        await ctrlC.CancelAsync();
        Assert.That(await relay.ExitAsync(cancellationToken), Is.Zero, relay.Stderr);
        Assert.That(relay.Stderr, Does.Contain("relay stopped."));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task RelayCommand_BadPorts_Exit1(CancellationToken cancellationToken)
    {
        var relay = await CliRun.CompleteAsync(["relay", "--listen", "http://127.0.0.1:0", "--ports", "90x0"], cancellationToken);

        Assert.That(await relay.ExitAsync(cancellationToken), Is.EqualTo(1));
        Assert.That(relay.Stderr, Does.StartWith("error: --ports '90x0'"));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Help_ListsCommandsAndExitCodes(CancellationToken cancellationToken)
    {
        var help = await CliRun.CompleteAsync(["--help"], cancellationToken);
        var sendHelp = await CliRun.CompleteAsync(["send", "--help"], cancellationToken);

        Assert.That(await help.ExitAsync(cancellationToken), Is.Zero);
        Assert.That(help.StdoutText, Does.Contain("send").And.Contain("receive").And.Contain("relay"));
        Assert.That(help.StdoutText, Does.Contain("130  cancelled").And.Contain("2    authentication failed").And.Contain("CROC_SECRET"));
        Assert.That(sendHelp.StdoutText, Does.Contain("--text").And.Contain("--code").And.Contain("Exit codes:"));
        Assert.That(sendHelp.StdoutText, Does.Not.Contain("--embedded-url"), "test seams stay hidden");
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Receive_SeveralExistingFiles_NamesEveryOneAndTheFlag(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var target = NewFolder();
        foreach (var name in new[] { "a.txt", "b.txt", "c.bin", "new.txt" })
        {
            WriteRandomFile(Path.Combine(source, name), 100);
        }

        foreach (var name in new[] { "a.txt", "b.txt", "c.bin" })
        {
            File.WriteAllText(Path.Combine(target, name), "keep");
        }

        var code = NewCode();
        using var send = new CliRun(["send", "--relay", RelayUrl, "--code", code, .. new[] { "a.txt", "b.txt", "c.bin", "new.txt" }.Select(n => Path.Combine(source, n))], cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);
        using var receive = await CliRun.CompleteAsync(["receive", "--relay", RelayUrl, "--yes", "--out", target, code], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.EqualTo(5), receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.EqualTo(5), send.Stderr);
        Assert.That(receive.Stderr, Does.Contain("3 files already exist").And.Contain("\"a.txt\", \"b.txt\", \"c.bin\"").And.Contain("pass --overwrite"));
        Assert.That(File.Exists(Path.Combine(target, "new.txt")), Is.False);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Receive_WrongCode_OutputFolderNotCreated(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        WriteRandomFile(Path.Combine(source, "s.bin"), 100);
        var target = Path.Combine(NewFolder(), "not-yet");
        var code = NewCode();

        using var send = new CliRun(["send", "--relay", RelayUrl, "--code", code, Path.Combine(source, "s.bin")], cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);
        using var receive = await CliRun.CompleteAsync(["receive", "--relay", RelayUrl, "--yes", "--out", target, code.Split('-')[0] + "-wrong-guess-here"], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.EqualTo(2), receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.EqualTo(2), send.Stderr);
        Assert.That(Directory.Exists(target), Is.False, "--out is created only once the offer is accepted");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Send_MalformedCode_UsageErrorNamingTheFlagBeforeAnyRelayStarts(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        WriteRandomFile(Path.Combine(source, "x.bin"), 10);

        // No --relay: a relay would be started on this address if the code were not checked first.
        using var send = await CliRun.CompleteAsync(["send", "--embedded-url", "http://127.0.0.1:0", "--embedded-ports", "0", "--discovery-port", "0", "--code", "short", Path.Combine(source, "x.bin")], cancellationToken);
        using var secret = await CliRun.CompleteAsync(
            ["send", "--embedded-url", "http://127.0.0.1:0", "--embedded-ports", "0", "--discovery-port", "0", Path.Combine(source, "x.bin")], cancellationToken, environment: new Dictionary<string, string> { ["CROC_SECRET"] = "nodash" });

        Assert.That(await send.ExitAsync(cancellationToken), Is.EqualTo(1));
        Assert.That(send.Stderr, Does.StartWith("error: --code is not a usable code").And.Not.Contain("Started a relay").And.Not.Contain("options"));
        Assert.That(await secret.ExitAsync(cancellationToken), Is.EqualTo(1));
        Assert.That(secret.Stderr, Does.StartWith("error: CROC_SECRET is not a usable code"));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Receive_StdoutWithOut_UsageErrorBeforeLookingForARelay(CancellationToken cancellationToken)
    {
        using var receive = await CliRun.CompleteAsync(
            ["receive", "--embedded-url", $"http://127.0.0.1:{FreePort()}", "--discovery-target", $"127.0.0.1:{FreeUdpPort()}", "--stdout", "--out", NewFolder(), NewCode()], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.EqualTo(1));
        Assert.That(receive.Stderr, Is.EqualTo("error: --stdout and --out cannot be used together.\n"));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Receive_ChannelTypo_FailsAfterAShortGraceNotHalfAMinute(CancellationToken cancellationToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var receive = await CliRun.CompleteAsync(["receive", "--relay", RelayUrl, "--yes", "--out", NewFolder(), NewCode()], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.EqualTo(3), receive.Stderr);
        Assert.That(receive.Stderr, Does.Contain("No sender is using channel").And.Contain("waited 5.0 s"));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)), "a typo is reported in seconds");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Send_RelayUrlMissingItsPath_HintsAtThePath(CancellationToken cancellationToken)
    {
        using var send = await CliRun.CompleteAsync(["send", "--relay", RelayUrl + "croc", "--text", "hi"], cancellationToken);

        Assert.That(await send.ExitAsync(cancellationToken), Is.EqualTo(3), send.Stderr);
        Assert.That(send.Stderr, Does.Contain("(not_found)").And.Contain("give it in full: --relay http://host:9009/croc"));
    }

    [TestCase("waited 00:00:30.", "waited 30 s.")]
    [TestCase("within 00:10:00 and 00:00:05", "within 10 min and 5.0 s")]
    [TestCase("at 12:34 nothing", "at 12:34 nothing")]
    public void ForCommandLine_TimeSpansForPeople(string message, string expected) =>
        Assert.That(CrocNet.Cli.CrocCli.ForCommandLine(new CrocTimeoutException(message)), Is.EqualTo(expected));

    [Test]
    [CancelAfter(30_000)]
    public async Task RelayCommand_PortInUse_OneLineExit3(CancellationToken cancellationToken)
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;

        using var relay = await CliRun.CompleteAsync(["relay", "--listen", $"http://127.0.0.1:{port}", "--ports", "0", "--quiet"], cancellationToken);

        Assert.That(await relay.ExitAsync(cancellationToken), Is.EqualTo(3));
        Assert.That(relay.Stderr, Does.StartWith($"error: Cannot listen on http://127.0.0.1:{port}").And.Contain("--listen"));
        Assert.That(relay.Stderr.TrimEnd(), Does.Not.Contain("\n"), "one line, no stack trace");
    }

    [TestCase("--listen|https://127.0.0.1:0", "error: --listen https://127.0.0.1:0 is https:// but no certificate is given: pass --certificate <file>")]
    [TestCase("--certificate|relay.pem", "error: A certificate is given (--certificate, --certificate-key or --certificate-password) but --listen http://0.0.0.0:9009 is not https://")]
    [TestCase("--max-wait|soon", "error: --max-wait 'soon' is not valid: expected a duration")]
    [TestCase("--max-channels|0", "error: The relay settings are invalid: MaxChannels")]
    [TestCase("--http-max-connections-per-address|0", "error: The relay settings are invalid: MaxConnectionsPerAddress")]
    [CancelAfter(30_000)]
    public async Task RelayCommand_BadSetting_OneLineExit1(string arguments, string expected, CancellationToken cancellationToken)
    {
        using var relay = await CliRun.CompleteAsync(["relay", "--ports", "0", .. arguments.Split('|')], cancellationToken);

        Assert.That(await relay.ExitAsync(cancellationToken), Is.EqualTo(1), relay.Stderr);
        Assert.That(relay.Stderr, Does.StartWith(expected));
        Assert.That(relay.Stderr.TrimEnd(), Does.Not.Contain("\n"));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task RelayCommand_SettingsFromFileEnvironmentAndFlags_FlagsWinThenEnvironment(CancellationToken cancellationToken)
    {
        var config = Path.Combine(NewFolder(), "relay.json");
        // The file asks for three ports and a bad host, the environment overrides the ports, the flag the host.
        File.WriteAllText(config, """{ "Listen": "http://127.0.0.1:0", "Ports": [0, 0, 0], "MaxChannels": 5, "Host": "from-file" }""");
        var environment = new Dictionary<string, string> { ["CROC_CONFIG"] = config, ["CROC_PORTS"] = "0,0", ["CROC_HOST"] = "from-env" };
        using var ctrlC = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        using var relay = new CliRun(["relay", "--host", "from-flag", "--quiet"], environment: environment, cancellationToken: ctrlC.Token);
        var listening = await relay.WaitForLineAsync("relay listening at ", cancellationToken);
        var others = await relay.WaitForLineAsync("others use: ", cancellationToken);
        await ctrlC.CancelAsync();

        Assert.That(await relay.ExitAsync(cancellationToken), Is.Zero, relay.Stderr);
        Assert.That(listening, Does.Match(@"^relay listening at http://127\.0\.0\.1:\d+/ \(TCP ports \d+,\d+ on 127\.0\.0\.1;"));
        Assert.That(others, Does.Match(@"^others use: --relay http://from-flag:\d+$"));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task RelayCommand_UnknownSettingInFile_Exit1(CancellationToken cancellationToken)
    {
        var config = Path.Combine(NewFolder(), "relay.json");
        File.WriteAllText(config, """{ "MaxChanels": 5 }""");

        using var relay = await CliRun.CompleteAsync(["relay", "--config", config], cancellationToken);

        Assert.That(await relay.ExitAsync(cancellationToken), Is.EqualTo(1));
        Assert.That(relay.Stderr, Does.Contain("unknown setting \"MaxChanels\""));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Help_NamesCrocAndListsOnlyOptionsThatApply(CancellationToken cancellationToken)
    {
        using var root = await CliRun.CompleteAsync(["--help"], cancellationToken);
        using var send = await CliRun.CompleteAsync(["send", "--help"], cancellationToken);
        using var receive = await CliRun.CompleteAsync(["receive", "--help"], cancellationToken);
        using var relay = await CliRun.CompleteAsync(["relay", "--help"], cancellationToken);

        Assert.Multiple(() =>
        {
            Assert.That(root.StdoutText, Does.Contain("  croc [command] [options]").And.Not.Contain("Croc.Cli"));
            Assert.That(receive.StdoutText, Does.Contain("  croc receive [<code>] [options]"));
            Assert.That(send.StdoutText, Does.Contain("--curve").And.Contain("--relay"));
            Assert.That(receive.StdoutText, Does.Not.Contain("--curve").And.Contain("--relay").And.Contain("--overwrite"));
            Assert.That(relay.StdoutText, Does.Not.Contain("--curve").And.Not.Contain("--relay ").And.Not.Contain("--no-progress").And.Contain("--listen"));
        });
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Shorthand_CodeAsFirstArgument_Receives(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var data = WriteRandomFile(Path.Combine(source, "short.bin"), 4_000);
        var target = NewFolder();
        var code = NewCode();

        using var send = new CliRun(["send", "--relay", RelayUrl, "--code", code, Path.Combine(source, "short.bin")], cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);
        // croc <code> [options]: as in croc, a code on its own means receive.
        using var receive = await CliRun.CompleteAsync([code, "--relay", RelayUrl, "--yes", "--out", target], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.Zero, receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.Zero, send.Stderr);
        Assert.That(File.ReadAllBytes(Path.Combine(target, "short.bin")), Is.EqualTo(data));
    }

    [TestCase("http://127.0.0.1:9009/", false, "CROC_SECRET=k-a-b croc receive")]
    [TestCase("http://192.168.1.20:9009/", false, "CROC_SECRET=k-a-b croc receive --relay http://192.168.1.20:9009")]
    [TestCase("https://relay.example/croc/", false, "CROC_SECRET=k-a-b croc receive --relay https://relay.example/croc")]
    [TestCase("http://127.0.0.1:9009/", true, "croc receive k-a-b")]
    [TestCase("http://192.168.1.20:9009/", true, "croc receive --relay http://192.168.1.20:9009 k-a-b")]
    public void ReceiveCommandLine_SecretInEnvironmentExceptOnWindows(string relay, bool windows, string expected) =>
        Assert.That(CrocNet.Cli.SendCommand.ReceiveCommandLine(new Uri(relay), "k-a-b", "croc", windows), Is.EqualTo(expected));

    [TestCase("http://[::]:9009", "::")]
    [TestCase("http://0.0.0.0:9009", "0.0.0.0")]
    [TestCase("http://localhost:9009", "127.0.0.1")]
    [TestCase("http://[::1]:9009", "::1")]
    [TestCase("http://192.168.1.20:9009", "192.168.1.20")]
    public void ListenAddressFor_TcpListenersFollowTheHttpAddress(string listen, string expected) =>
        Assert.That(CrocNet.Cli.LocalRelay.ListenAddressFor(new Uri(listen)), Is.EqualTo(expected));

    [TestCase("9010-9013", new[] { 9010, 9011, 9012, 9013 })]
    [TestCase("9010, 9020", new[] { 9010, 9020 })]
    [TestCase("0,0,0", new[] { 0, 0, 0 })]
    public void ParsePorts_RangesAndLists(string text, int[] expected) =>
        Assert.That(CrocNet.Cli.LocalRelay.ParsePorts(text, "--ports"), Is.EqualTo(expected));

    /// <summary>The printed <c>CROC_SECRET=… croc receive …</c> line as an environment and the arguments after <c>croc</c>.</summary>
    private static (Dictionary<string, string> Environment, string[] Args) PrintedCommand(string line)
    {
        var words = line.Split(' ');
        Assert.That(words[0], Does.StartWith("CROC_SECRET="));
        Assert.That(words[1], Is.EqualTo("croc"));
        return (new Dictionary<string, string> { ["CROC_SECRET"] = words[0]["CROC_SECRET=".Length..] }, words[2..]);
    }

    private static int DiscoveryPort(string line) =>
        int.Parse(System.Text.RegularExpressions.Regex.Match(line, @"UDP port (\d+)\)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);

    private static int FreeUdpPort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}

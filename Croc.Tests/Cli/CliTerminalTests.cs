using CrocNet.Tests.EndToEnd;

namespace CrocNet.Tests.Cli;

/// <summary>
/// The croc command line in a real terminal (a tmux pseudo-terminal), judged by the screen a person sees once
/// the display settles: prompts stay visible while progress is shown, Ctrl+C at a prompt ends with 130 and a
/// visible cursor, and the progress line leaves nothing behind.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class CliTerminalTests : TransferTestBase
{
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(600);
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private string RelayUrl => Relay.BaseAddress.ToString();

    [SetUp]
    public void RequireTmux()
    {
        if (!TerminalSession.IsAvailable)
        {
            if (Environment.GetEnvironmentVariable("CI") is { Length: > 0 })
            {
                Assert.Fail("tmux is missing; .ci/run installs it.");
            }

            Assert.Ignore("tmux is not installed: the terminal tests need it (apt-get install tmux).");
        }
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Receive_AcceptPromptWhileProgressShown_StaysVisibleAndIsAnswered(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var data = WriteRandomFile(Path.Combine(source, "photo.jpg"), 200_000);
        var target = NewFolder();
        var code = Croc.GenerateCode();
        using var send = new CliRun(["send", "--relay", RelayUrl, "--code", code, Path.Combine(source, "photo.jpg")], cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);

        await using var terminal = await TerminalSession.StartAsync(["receive", "--relay", RelayUrl, "--out", target, code], target, cancellationToken);
        await terminal.WaitForTextAsync("Accept? [y/N]", cancellationToken);
        // Settled: nothing redraws while the question is open, and the question is the line the cursor is on.
        var screen = await terminal.WaitForSettledScreenAsync(Settle, Bound, cancellationToken);
        Assert.That(screen[^1], Is.EqualTo("Accept? [y/N]"), string.Join('\n', screen));
        Assert.That(screen, Has.Some.Contains("photo.jpg (200.0 KB)"));
        Assert.That(Directory.EnumerateFileSystemEntries(target), Is.Empty, "nothing is written before the answer");

        await terminal.TypeAsync("y", cancellationToken);
        await terminal.PressAsync("Enter", cancellationToken);

        Assert.That(await terminal.WaitForExitAsync(Bound, cancellationToken), Is.Zero, string.Join('\n', await terminal.ScreenAsync(cancellationToken)));
        Assert.That(await send.ExitAsync(cancellationToken), Is.Zero, send.Stderr);
        Assert.That(File.ReadAllBytes(Path.Combine(target, "photo.jpg")), Is.EqualTo(data));
        screen = await terminal.ScreenAsync(cancellationToken);
        Assert.That(screen, Has.Some.StartsWith("Accept? [y/N] y"), "the answer stays on screen after the prompt");
        Assert.That(screen, Has.Some.StartsWith("Received 1 file, 200.0 KB"));
        Assert.That(await terminal.CursorVisibleAsync(cancellationToken), Is.True);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Receive_CtrlCAtAcceptPrompt_Exits130WithCursorVisibleAndNothingWritten(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        WriteRandomFile(Path.Combine(source, "a.bin"), 5_000);
        var target = NewFolder();
        var code = Croc.GenerateCode();
        using var send = new CliRun(["send", "--relay", RelayUrl, "--code", code, Path.Combine(source, "a.bin")], cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);

        await using var terminal = await TerminalSession.StartAsync(["receive", "--relay", RelayUrl, "--out", target, code], target, cancellationToken);
        await terminal.WaitForTextAsync("Accept? [y/N]", cancellationToken);
        await terminal.WaitForSettledScreenAsync(Settle, Bound, cancellationToken);
        await terminal.PressAsync("C-c", cancellationToken);

        Assert.That(await terminal.WaitForExitAsync(Bound, cancellationToken), Is.EqualTo(130), string.Join('\n', await terminal.ScreenAsync(cancellationToken)));
        Assert.That(await terminal.ScreenAsync(cancellationToken), Has.Some.StartsWith("error: cancelled"));
        Assert.That(await terminal.CursorVisibleAsync(cancellationToken), Is.True);
        Assert.That(await send.ExitAsync(cancellationToken), Is.Not.Zero);
        Assert.That(Directory.EnumerateFileSystemEntries(target), Is.Empty);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Receive_CtrlCAtCodePrompt_Exits130WithCursorVisible(CancellationToken cancellationToken)
    {
        var target = NewFolder();

        await using var terminal = await TerminalSession.StartAsync(["receive", "--relay", RelayUrl, "--out", target], target, cancellationToken);
        await terminal.WaitForTextAsync("Enter the code:", cancellationToken);
        var screen = await terminal.WaitForSettledScreenAsync(Settle, Bound, cancellationToken);
        Assert.That(screen[^1], Is.EqualTo("Enter the code:"));
        await terminal.PressAsync("C-c", cancellationToken);

        Assert.That(await terminal.WaitForExitAsync(Bound, cancellationToken), Is.EqualTo(130), string.Join('\n', await terminal.ScreenAsync(cancellationToken)));
        Assert.That(await terminal.ScreenAsync(cancellationToken), Has.Some.StartsWith("error: cancelled"));
        Assert.That(await terminal.CursorVisibleAsync(cancellationToken), Is.True);
    }

    [TestCase(100)]
    [TestCase(40)]
    [CancelAfter(60_000)]
    public async Task Send_ProgressWhileWaitingThenDone_LeavesOnlyTheMessages(int width, CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var data = WriteRandomFile(Path.Combine(source, "big.bin"), 3_000_000);
        var target = NewFolder();
        var code = Croc.GenerateCode();

        await using var terminal = await TerminalSession.StartAsync(["send", "--relay", RelayUrl, "--code", code, "big.bin"], source, cancellationToken, width: width);
        // The live line is drawn while the sender waits for the other side.
        await terminal.WaitForTextAsync("waiting for the other side", cancellationToken);
        using var receive = await CliRun.CompleteAsync(["receive", "--relay", RelayUrl, "--yes", "--out", target, code], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.Zero, receive.Stderr);
        Assert.That(await terminal.WaitForExitAsync(Bound, cancellationToken), Is.Zero, string.Join('\n', await terminal.ScreenAsync(cancellationToken)));
        Assert.That(File.ReadAllBytes(Path.Combine(target, "big.bin")), Is.EqualTo(data));
        var screen = await terminal.ScreenAsync(cancellationToken);
        var relay = RelayUrl.TrimEnd('/');
        // Rows as a person reads them (wrapped rows joined): the messages, once each, and nothing of the live line.
        Assert.That(screen, Is.EqualTo(new[]
        {
            "code: " + code,
            "On the other computer run:",
            $"  CROC_SECRET={code} dotnet {TerminalSession.CliDll} receive --relay {relay}",
        }.Append(screen[^1])), string.Join('\n', screen));
        Assert.That(screen[^1], Does.Match(@"^Sent 1 file, 3\.0 MB \(3000000 bytes\) in [0-9.]+ m?s, [0-9.]+ [KMG]?B/s$"));
        Assert.That(await terminal.CursorVisibleAsync(cancellationToken), Is.True);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Receive_TextWithTerminalEscapes_ShownNotObeyed(CancellationToken cancellationToken)
    {
        // Would set the window title, clear the screen and forge a status line if printed raw.
        const string text = "\u001b]0;pwned\u0007\u001b[2J\u001b[Hhello\rerror: fake\nsecond line";
        var code = Croc.GenerateCode();
        var folder = NewFolder();
        using var send = new CliRun(["send", "--relay", RelayUrl, "--code", code, "--text", text], cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);

        await using var terminal = await TerminalSession.StartAsync(["receive", "--relay", RelayUrl, "--yes", code], folder, cancellationToken);

        Assert.That(await terminal.WaitForExitAsync(Bound, cancellationToken), Is.Zero, string.Join('\n', await terminal.ScreenAsync(cancellationToken)));
        Assert.That(await send.ExitAsync(cancellationToken), Is.Zero, send.Stderr);
        var screen = await terminal.ScreenAsync(cancellationToken);
        Assert.That(screen, Has.Some.EqualTo(@"\u001B]0;pwned\u0007\u001B[2J\u001B[Hhello\u000Derror: fake"), string.Join('\n', screen));
        Assert.That(screen, Has.Some.EqualTo("second line"));
        Assert.That(screen[0], Is.EqualTo($"Incoming text ({text.EnumerateRunes().Count()} characters)."), "nothing cleared the screen");
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Relay_LogToFileWhileStdoutIsATerminal_NoColourCodes(CancellationToken cancellationToken)
    {
        var folder = NewFolder();
        var log = Path.Combine(folder, "relay.log");

        await using var terminal = await TerminalSession.StartAsync(["relay", "--listen", "http://127.0.0.1:0", "--ports", "0"], folder, cancellationToken, stderrFile: log);
        var deadline = DateTime.UtcNow + Bound;
        while (!(File.Exists(log) && File.ReadAllText(log).Contains("relay listening at", StringComparison.Ordinal)))
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the relay did not start");
            await Task.Delay(50, cancellationToken);
        }

        await terminal.PressAsync("C-c", cancellationToken);

        Assert.That(await terminal.WaitForExitAsync(Bound, cancellationToken), Is.Zero);
        var text = await File.ReadAllTextAsync(log, cancellationToken);
        Assert.That(text, Does.Contain("info:"), "the relay logged");
        // Ordinal: a culture-aware search ignores control characters such as ESC.
        Assert.That(text.Contains('\u001b', StringComparison.Ordinal), Is.False, "a log file gets no colour codes: " + text.Replace("\u001b", "<ESC>", StringComparison.Ordinal));
        Assert.That(text, Does.Not.Contain("Hosting environment").And.Not.Contain("Content root path"));
    }
}

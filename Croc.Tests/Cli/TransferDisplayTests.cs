using CrocNet.Cli;
using Microsoft.Extensions.Time.Testing;

namespace CrocNet.Tests.Cli;

/// <summary>The CLI's progress line, summaries and terminal-safe text.</summary>
public sealed class TransferDisplayTests
{
    [Test]
    public void Summary_TimesTheDataNotTheWaitForAPerson()
    {
        var time = new FakeTimeProvider();
        var display = new TransferDisplay(new CliConsole { Input = Stream.Null, Output = Stream.Null, Error = TextWriter.Null }, dataOnStdout: false, quiet: true, noProgress: true, time);
        display.Report(new TransferProgress(TransferStage.WaitingForPeer, 0, -1, 0, 0));
        time.Advance(TimeSpan.FromSeconds(50)); // the code is passed on
        display.Report(new TransferProgress(TransferStage.Connecting, 0, 4_000_000, 0, 1));
        time.Advance(TimeSpan.FromSeconds(20)); // the offer is read
        display.Report(new TransferProgress(TransferStage.Transferring, 0, 4_000_000, 0, 1));
        time.Advance(TimeSpan.FromSeconds(2));
        display.Report(new TransferProgress(TransferStage.Completed, 4_000_000, 4_000_000, 1, 1));
        time.Advance(TimeSpan.FromSeconds(5));
        var result = new TransferResult
        {
            Direction = TransferDirection.Receive,
            Channel = "c",
            Curve = "p256",
            Files = [new TransferredFile("a.bin", 4_000_000, "00", null)],
            Directories = [],
            TotalBytes = 4_000_000,
            Duration = TimeSpan.FromSeconds(72),
        };

        Assert.That(display.TransferDuration, Is.EqualTo(TimeSpan.FromSeconds(2)));
        Assert.That(display.Summary("Received", result), Is.EqualTo("Received 1 file, 4.0 MB (4000000 bytes) in 2.0 s, 2.0 MB/s"));
    }

    [Test]
    public void Summary_AfterReconnects_SaysHowManyAndWhatWentAgain() =>
        Assert.That(
            TransferDisplay.Summary("Sent", new TransferResult
            {
                Direction = TransferDirection.Send, Channel = "c", Curve = "p256", Files = [new TransferredFile("a.bin", 4_000_000, "00", null)], Directories = [],
                TotalBytes = 4_000_000, Duration = TimeSpan.FromSeconds(2), Reconnects = 2, BytesResent = 1_500_000,
            }, TimeSpan.FromSeconds(2)),
            Is.EqualTo("Sent 1 file, 4.0 MB (4000000 bytes) in 2.0 s, 2.0 MB/s (2 reconnects, 1.5 MB sent again)"));

    [Test]
    public void Summary_Text_CountsCharacters() =>
        Assert.That(
            TransferDisplay.Summary("Sent", new TransferResult { Direction = TransferDirection.Send, Channel = "c", Curve = "p256", Files = [], Directories = [], TotalBytes = 0, Duration = TimeSpan.FromSeconds(4) }, TimeSpan.FromSeconds(1), "café ☕ 🐊"),
            Is.EqualTo("Sent a text (8 characters)."));

    [TestCase(20)]
    [TestCase(40)]
    [TestCase(80)]
    public void ProgressLine_NeverReachesTheLastColumn(int width)
    {
        var line = TransferDisplay.ProgressLine(new TransferProgress(TransferStage.Transferring, 1_234_567_890, 9_876_543_210, 3, 70), "receiving", TimeSpan.FromSeconds(12), width);

        Assert.That(line.Length, Is.LessThan(width));
        Assert.That(line, Does.StartWith("receiving"));
    }

    [Test]
    public void ProgressLine_UsesTheSameUnitsAsTheMessages() =>
        Assert.That(
            TransferDisplay.ProgressLine(new TransferProgress(TransferStage.Transferring, 4_944, 9_888, 0, 1), "receiving", TimeSpan.FromSeconds(1), 200),
            Does.Contain("4.9 KB of 9.9 KB").And.Contain("50%"));

    [TestCase("\u001b]0;title\u0007", @"\u001B]0;title\u0007")]
    [TestCase("line\r\nnext\ttab", "line\nnext\ttab")]
    [TestCase("over\rwrite", @"over\u000Dwrite")]
    [TestCase("\u202Eevil", @"\u202Eevil")]
    [TestCase("\u009b2J", @"\u009B2J")]
    [TestCase("café ☕", "café ☕")]
    public void Neutralise_ShowsControlCharactersInsteadOfSendingThem(string text, string shown) =>
        Assert.That(TerminalText.Neutralise(text), Is.EqualTo(shown));
}

using CrocNet.Cli;

namespace CrocNet.Tests.Cli;

/// <summary>What the CLI shows when a receive resumes: one line naming what is already here, and a summary that says so.</summary>
public sealed class ResumeDisplayTests
{
    [Test]
    public void Report_ResumedBytes_ShowsTheResumeLineOnce()
    {
        var output = new StringWriter();
        var display = new TransferDisplay(new CliConsole { Input = Stream.Null, Output = Stream.Null, Error = output }, dataOnStdout: false, quiet: false, noProgress: true)
        {
            Subject = "photos.tar",
        };

        display.Report(new TransferProgress(TransferStage.Connecting, 0, 3_000_000_000, 0, 1));
        display.Report(new TransferProgress(TransferStage.Transferring, 0, 3_000_000_000, 0, 1) { ResumedBytes = 1_200_000_000 });
        display.Report(new TransferProgress(TransferStage.Transferring, 5_000_000, 3_000_000_000, 0, 1) { ResumedBytes = 1_200_000_000 });

        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.That(lines, Is.EqualTo(new[] { "resuming photos.tar: 1.2 GB of 3.0 GB already here" }));
    }

    [Test]
    public void Report_NothingResumed_NoResumeLine()
    {
        var output = new StringWriter();
        var display = new TransferDisplay(new CliConsole { Input = Stream.Null, Output = Stream.Null, Error = output }, dataOnStdout: false, quiet: false, noProgress: true);

        display.Report(new TransferProgress(TransferStage.Transferring, 5_000_000, 3_000_000_000, 0, 1));

        Assert.That(output.ToString(), Is.Empty);
    }

    [Test]
    public void ProgressLine_Resumed_CountsKeptBytesAsDone()
    {
        var line = TransferDisplay.ProgressLine(new TransferProgress(TransferStage.Transferring, 300_000_000, 3_000_000_000, 0, 1) { ResumedBytes = 1_200_000_000 }, "receiving", null, 200);

        Assert.That(line, Does.Contain(" 50% 1.5 GB of 3.0 GB"));
    }

    [Test]
    public void Summary_Resumed_SaysSoAndRatesWhatMoved()
    {
        var result = new TransferResult
        {
            Direction = TransferDirection.Receive,
            Channel = "c",
            Curve = "p256",
            Files = [new TransferredFile("a.bin", 4_000_000, "00", null) { ResumedBytes = 2_000_000 }],
            Directories = [],
            TotalBytes = 4_000_000,
            ResumedBytes = 2_000_000,
            Duration = TimeSpan.FromSeconds(2),
        };

        Assert.That(TransferDisplay.Summary("Received", result, TimeSpan.FromSeconds(2)), Is.EqualTo("Received 1 file, 4.0 MB (4000000 bytes) (2.0 MB of it resumed) in 2.0 s, 1.0 MB/s"));
    }
}

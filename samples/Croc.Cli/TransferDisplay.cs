using System.Globalization;
using Spectre.Console;

namespace CrocNet.Cli;

/// <summary>
/// Where people-facing messages go (standard output when it is a terminal and not carrying data, standard error
/// otherwise) and the live progress bar drawn there.
/// </summary>
internal sealed class TransferDisplay : IProgress<TransferProgress>
{
    private readonly bool _quiet;
    private readonly bool _progress;
    private TransferProgress _latest;

    public TransferDisplay(CliConsole console, bool dataOnStdout, bool quiet, bool noProgress)
    {
        var useStdout = console.IsOutputTerminal && !dataOnStdout;
        Writer = useStdout ? console.OutputText : console.Error;
        var terminal = useStdout || console.IsErrorTerminal;
        Console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new Output(Writer, terminal),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = terminal ? InteractionSupport.Yes : InteractionSupport.No,
        });
        _quiet = quiet;
        // A live bar only makes sense on a terminal: in a pipe or a file it would be noise.
        _progress = terminal && !quiet && !noProgress;
    }

    public TextWriter Writer { get; }

    public IAnsiConsole Console { get; }

    public void Report(TransferProgress value) => _latest = value;

    /// <summary>A line for people (suppressed by --quiet).</summary>
    public void Info(string markup)
    {
        if (!_quiet)
        {
            Console.MarkupLine(markup);
        }
    }

    /// <summary>A line that is printed even with --quiet (the code a sender must pass on).</summary>
    public void Always(string text)
    {
        Writer.WriteLine(text);
        Writer.Flush();
    }

    /// <summary>Draws the progress bar until <paramref name="transfer"/> ends (without observing its outcome).</summary>
    public async Task ShowUntilDoneAsync(Task transfer, string verb)
    {
        if (!_progress)
        {
            await Task.WhenAny(transfer);
            return;
        }

        await Console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(
                new TaskDescriptionColumn(),
                new ProgressBarColumn(),
                new PercentageColumn(),
                new DownloadedColumn(),
                new TransferSpeedColumn(),
                new RemainingTimeColumn(),
                new SpinnerColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask(verb, autoStart: true, maxValue: 1);
                while (true)
                {
                    var done = transfer.IsCompleted;
                    Update(task, _latest, verb);
                    if (done)
                    {
                        if (transfer.IsCompletedSuccessfully)
                        {
                            task.Value = task.MaxValue;
                        }

                        task.StopTask();
                        return;
                    }

                    await Task.WhenAny(transfer, Task.Delay(100));
                }
            });
    }

    private static void Update(ProgressTask task, TransferProgress p, string verb)
    {
        task.Description = p.Stage switch
        {
            TransferStage.WaitingForPeer => "waiting for the other side",
            TransferStage.Authenticating => "checking the code",
            TransferStage.Connecting => "connecting",
            TransferStage.Verifying => "verifying",
            TransferStage.Completed => "done",
            _ => verb,
        };
        if (p.TotalBytes > 0)
        {
            task.IsIndeterminate = false;
            task.MaxValue = p.TotalBytes;
        }
        else if (p.TotalBytes < 0)
        {
            task.IsIndeterminate = true;
            task.MaxValue = Math.Max(1, p.BytesTransferred);
        }

        task.Value = Math.Min(p.BytesTransferred, task.MaxValue);
    }

    public static string Size(long bytes)
    {
        string[] units = ["B", "KB", "MB", "GB", "TB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1000 && unit < units.Length - 1)
        {
            value /= 1000;
            unit++;
        }

        return unit == 0
            ? string.Create(CultureInfo.InvariantCulture, $"{bytes} B")
            : string.Create(CultureInfo.InvariantCulture, $"{value:0.0} {units[unit]}");
    }

    public static string Summary(string verb, TransferResult result)
    {
        var seconds = Math.Max(result.Duration.TotalSeconds, 0.001);
        var rate = result.TotalBytes / seconds / 1_000_000;
        var files = result.Files.Count == 1 ? "1 file" : $"{result.Files.Count} files";
        return string.Create(CultureInfo.InvariantCulture, $"{verb} {files}, {Size(result.TotalBytes)} ({result.TotalBytes} bytes) in {seconds:0.0} s, {rate:0.00} MB/s");
    }

    private sealed class Output(TextWriter writer, bool terminal) : IAnsiConsoleOutput
    {
        public TextWriter Writer { get; } = writer;

        public bool IsTerminal { get; } = terminal;

        public int Width => IsTerminal && !System.Console.IsOutputRedirected ? SafeWidth() : 100;

        public int Height => IsTerminal && !System.Console.IsOutputRedirected ? SafeHeight() : 40;

        public void SetEncoding(System.Text.Encoding encoding)
        {
            // The writer's encoding is fixed by whoever created it.
        }

        private static int SafeWidth()
        {
            try
            {
                return System.Console.WindowWidth > 0 ? System.Console.WindowWidth : 100;
            }
            catch (IOException)
            {
                return 100;
            }
        }

        private static int SafeHeight()
        {
            try
            {
                return System.Console.WindowHeight > 0 ? System.Console.WindowHeight : 40;
            }
            catch (IOException)
            {
                return 40;
            }
        }
    }
}

using System.Globalization;
using System.Text;
using Spectre.Console;

namespace CrocNet.Cli;

/// <summary>
/// Where people-facing messages go (standard output when it is a terminal and not carrying data, standard error
/// otherwise), the one-line live progress display drawn there, and prompts.
/// </summary>
/// <remarks>
/// The progress line is drawn by hand (carriage return, the line, erase to its end) rather than by a live
/// widget, so that messages and prompts can share the terminal with it: every write goes through one lock, a
/// message first erases the line and the next tick redraws it below, and while a prompt waits for an answer
/// nothing is redrawn at all. The cursor is never hidden, so nothing needs restoring however the process ends.
/// </remarks>
internal sealed class TransferDisplay : IProgress<TransferProgress>
{
    private const string EraseLine = "\r\u001b[K";
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);

    private readonly CliConsole _console;
    private readonly TimeProvider _time;
    private readonly bool _quiet;
    private readonly bool _progress;
    private readonly Lock _lock = new();
    private TransferProgress _latest;
    private bool _lineShown;
    private bool _prompting;
    private bool _resumeShown;
    private string _verb = string.Empty;
    private long? _transferStarted;
    private long? _transferEnded;

    public TransferDisplay(CliConsole console, bool dataOnStdout, bool quiet, bool noProgress, TimeProvider? time = null)
    {
        _console = console;
        _time = time ?? TimeProvider.System;
        var useStdout = console.IsOutputTerminal && !dataOnStdout;
        Writer = useStdout ? console.OutputText : console.Error;
        IsTerminal = useStdout || console.IsErrorTerminal;
        Console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new Output(Writer, IsTerminal),
            Ansi = IsTerminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = IsTerminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        _quiet = quiet;
        // A live line only makes sense on a terminal: in a pipe or a file it would be noise.
        _progress = IsTerminal && !quiet && !noProgress;
    }

    public TextWriter Writer { get; }

    /// <summary>Whether messages go to a terminal.</summary>
    public bool IsTerminal { get; }

    private IAnsiConsole Console { get; }

    /// <summary>
    /// How long the data moved: from the first report of the transferring stage to completion, so the time a
    /// person took to read the offer or pass on the code is not counted. Null when no data stage was seen.
    /// </summary>
    public TimeSpan? TransferDuration
    {
        get
        {
            lock (_lock)
            {
                return MovingLocked();
            }
        }
    }

    /// <summary>What is being received, named in the resume line: one file's name, or how many files.</summary>
    public string? Subject { get; set; }

    /// <summary>The line shown once when a receive finds part of its files already here: <c>resuming photos.tar: 1.2 GB of 3.0 GB already here</c>.</summary>
    internal static string ResumeLine(string subject, long resumed, long total) =>
        $"resuming {subject}: {Size(resumed)} of {Size(total)} already here";

    public void Report(TransferProgress value)
    {
        string? resume = null;
        lock (_lock)
        {
            if (!_resumeShown && value.ResumedBytes > 0 && value.Stage >= TransferStage.Transferring)
            {
                _resumeShown = true;
                resume = ResumeLine(Subject ?? (value.TotalFiles == 1 ? "1 file" : $"{value.TotalFiles} files"), value.ResumedBytes, value.TotalBytes);
            }
        }

        if (resume is not null)
        {
            Info("[grey]" + Markup.Escape(resume) + "[/]");
        }

        lock (_lock)
        {
            _latest = value;
            if (value.Stage >= TransferStage.Transferring && _transferStarted is null)
            {
                _transferStarted = _time.GetTimestamp();
            }

            if (value.Stage == TransferStage.Completed && _transferEnded is null)
            {
                _transferEnded = _time.GetTimestamp();
            }
        }
    }

    /// <summary>A line for people (suppressed by --quiet).</summary>
    public void Info(string markup)
    {
        if (!_quiet)
        {
            lock (_lock)
            {
                HideLineLocked();
                Console.MarkupLine(markup);
                Writer.Flush();
            }
        }
    }

    /// <summary>A line that is printed even with --quiet (the code a sender must pass on).</summary>
    public void Always(string text)
    {
        lock (_lock)
        {
            HideLineLocked();
            Writer.WriteLine(text);
            Writer.Flush();
        }
    }

    /// <summary>
    /// Asks a question and reads one line. The progress line is taken off the screen first and is not redrawn
    /// until the answer is in; Ctrl+C (<paramref name="cancellationToken"/>) ends the wait at once.
    /// </summary>
    public async Task<string?> PromptAsync(string question, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            _prompting = true;
            HideLineLocked();
            Console.Markup(Markup.Escape(question));
            Writer.Flush();
        }

        try
        {
            // A blocking read of a terminal does not observe a token: it runs on its own and is abandoned when
            // the token fires (the process is about to end then).
            var input = _console.InputText;
            return await Task.Run(input.ReadLine, CancellationToken.None).WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The question stays unanswered on its line; what follows (the error) starts on the next one.
            lock (_lock)
            {
                Writer.WriteLine();
                Writer.Flush();
            }

            throw;
        }
        finally
        {
            lock (_lock)
            {
                _prompting = false;
            }
        }
    }

    /// <summary>
    /// Draws the progress line until <paramref name="transfer"/> ends (without observing its outcome), then takes
    /// it off the screen: the summary or the error line says how it ended.
    /// </summary>
    public async Task ShowUntilDoneAsync(Task transfer, string verb)
    {
        _verb = verb;
        if (!_progress)
        {
            await Task.WhenAny(transfer);
            return;
        }

        try
        {
            while (!transfer.IsCompleted)
            {
                lock (_lock)
                {
                    if (!_prompting)
                    {
                        DrawLineLocked();
                    }
                }

                await Task.WhenAny(transfer, Task.Delay(Tick));
            }
        }
        finally
        {
            lock (_lock)
            {
                HideLineLocked();
                Writer.Flush();
            }
        }
    }

    /// <summary>The live line for <paramref name="p"/>, cut to <paramref name="width"/> columns.</summary>
    internal static string ProgressLine(TransferProgress p, string verb, TimeSpan? moving, int width)
    {
        var description = p.Stage switch
        {
            TransferStage.WaitingForPeer => "waiting for the other side",
            TransferStage.Authenticating => "checking the code",
            TransferStage.Connecting => "connecting",
            TransferStage.Verifying => "verifying",
            TransferStage.Completed => "done",
            _ => verb,
        };
        var line = new StringBuilder(description);
        if (p.Stage >= TransferStage.Transferring)
        {
            var known = p.TotalBytes >= 0;
            // Bytes already here from an interrupted receive count as done; the rate and time left follow what moves.
            var done = p.BytesTransferred + p.ResumedBytes;
            var fraction = p.Stage == TransferStage.Completed ? 1.0 : known && p.TotalBytes > 0 ? Math.Clamp((double)done / p.TotalBytes, 0, 1) : known ? 1.0 : 0.0;
            if (known)
            {
                const int BarWidth = 24;
                var filled = (int)Math.Round(fraction * BarWidth);
                line.Append(' ').Append('━', filled).Append('╺', filled < BarWidth ? 1 : 0).Append('─', Math.Max(0, BarWidth - filled - 1));
                line.Append(CultureInfo.InvariantCulture, $" {fraction * 100,3:0}%");
                line.Append(' ').Append(Size(done)).Append(" of ").Append(Size(p.TotalBytes));
            }
            else
            {
                line.Append(' ').Append(Size(p.BytesTransferred)).Append(" so far");
            }

            if (moving is { TotalSeconds: > 0.2 } elapsed && p.BytesTransferred > 0)
            {
                var rate = p.BytesTransferred / elapsed.TotalSeconds;
                line.Append(", ").Append(Size((long)rate)).Append("/s");
                if (known && p.TotalBytes > done && rate > 0)
                {
                    var left = TimeSpan.FromSeconds(Math.Ceiling((p.TotalBytes - done) / rate));
                    line.Append(", ").Append(Duration(left)).Append(" left");
                }
            }
        }

        // One column short of the width: writing the last column makes some terminals wrap, and a wrapped line
        // is not erased by the next carriage return.
        var max = Math.Max(10, width - 1);
        return line.Length <= max ? line.ToString() : line.ToString(0, max - 1) + "…";
    }

    /// <summary>A byte count in SI units (1 KB = 1000 bytes), the one unit system of every message.</summary>
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

    /// <summary>A time span for people: "40 ms", "1.5 s", "30 s", "2 min 5 s", "1 h 3 min".</summary>
    public static string Duration(TimeSpan span)
    {
        if (span < TimeSpan.FromSeconds(1))
        {
            return string.Create(CultureInfo.InvariantCulture, $"{Math.Max(1, (int)Math.Round(span.TotalMilliseconds))} ms");
        }

        if (span < TimeSpan.FromSeconds(10))
        {
            return string.Create(CultureInfo.InvariantCulture, $"{span.TotalSeconds:0.0} s");
        }

        if (span < TimeSpan.FromMinutes(1))
        {
            return string.Create(CultureInfo.InvariantCulture, $"{span.TotalSeconds:0} s");
        }

        if (span < TimeSpan.FromHours(1))
        {
            return span.Seconds == 0
                ? string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalMinutes} min")
                : string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalMinutes} min {span.Seconds} s");
        }

        return span.Minutes == 0
            ? string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalHours} h")
            : string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalHours} h {span.Minutes} min");
    }

    /// <summary>The closing line of a transfer, timed over <paramref name="duration"/> (the data's own time).</summary>
    public static string Summary(string verb, TransferResult result, TimeSpan duration, string? text = null)
    {
        var seconds = Math.Max(duration.TotalSeconds, 0.001);
        if ((text ?? result.Text) is { } message)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{verb} a text ({message.EnumerateRunes().Count()} characters).");
        }

        // The rate is of what moved: bytes resumed from an earlier receive did not travel.
        var rate = Size((long)((result.TotalBytes - result.ResumedBytes) / seconds));
        var files = result.Files.Count == 1 ? "1 file" : $"{result.Files.Count} files";
        var resumed = result.ResumedBytes > 0 ? $" ({Size(result.ResumedBytes)} of it resumed)" : string.Empty;
        var line = string.Create(CultureInfo.InvariantCulture, $"{verb} {files}, {Size(result.TotalBytes)} ({result.TotalBytes} bytes){resumed} in {Duration(TimeSpan.FromSeconds(seconds))}, {rate}/s");
        return result.Reconnects == 0 ? line : string.Create(
            CultureInfo.InvariantCulture,
            $"{line} ({result.Reconnects} {(result.Reconnects == 1 ? "reconnect" : "reconnects")}, {Size(result.BytesResent)} sent again)");
    }

    /// <summary>The summary of <paramref name="result"/> timed by what this display saw.</summary>
    public string Summary(string verb, TransferResult result, string? text = null) => Summary(verb, result, TransferDuration ?? result.Duration, text);

    private void DrawLineLocked()
    {
        Writer.Write(EraseLine + ProgressLine(_latest, _verb, MovingLocked(), Width()));
        Writer.Flush();
        _lineShown = true;
    }

    private TimeSpan? MovingLocked() =>
        _transferStarted is { } started ? _time.GetElapsedTime(started, _transferEnded ?? _time.GetTimestamp()) : null;

    private void HideLineLocked()
    {
        if (_lineShown)
        {
            Writer.Write(EraseLine);
            _lineShown = false;
        }
    }

    private int Width() => ((Output)Console.Profile.Out).TerminalWidth;

    private sealed class Output(TextWriter writer, bool terminal) : IAnsiConsoleOutput
    {
        public TextWriter Writer { get; } = writer;

        public bool IsTerminal { get; } = terminal;

        // Messages are never wrapped by Spectre: a command to copy must stay on one line; the terminal wraps it.
        public int Width => 10_000;

        public int TerminalWidth => IsTerminal ? SafeWidth() : 100;

        public int Height => IsTerminal ? SafeHeight() : 40;

        public void SetEncoding(Encoding encoding)
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

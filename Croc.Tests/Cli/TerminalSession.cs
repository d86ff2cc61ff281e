using System.Diagnostics;
using System.Globalization;

namespace CrocNet.Tests.Cli;

/// <summary>
/// Runs the built <c>croc</c> (the <c>Croc.Cli.dll</c> next to the tests, through <c>dotnet</c>) as its own process
/// in a pseudo-terminal owned by a private tmux server, so tests see the screen a person sees
/// (<c>tmux capture-pane</c>) rather than the byte stream, and type into it (<c>tmux send-keys</c>).
/// </summary>
/// <remarks>
/// Each session has its own tmux socket and configuration in a temporary folder, so it neither reads the
/// user's tmux set-up nor touches another tmux server; disposing kills that server and deletes the folder.
/// A shell stays in the pane after croc ends, so its last screen and cursor state can still be read.
/// </remarks>
internal sealed class TerminalSession : IAsyncDisposable
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(50);
    private readonly string _folder;
    private readonly string _socket;
    private readonly string _exitFile;

    private TerminalSession(string folder)
    {
        _folder = folder;
        _socket = Path.Combine(folder, "s");
        _exitFile = Path.Combine(folder, "exit");
    }

    /// <summary>Whether tmux is installed (CI installs it; see <c>.ci/run</c>).</summary>
    public static bool IsAvailable { get; } = FindOnPath("tmux") is not null;

    /// <summary>The built command line, as tests run it: <c>dotnet Croc.Cli.dll</c>.</summary>
    public static string CliDll { get; } = Path.Combine(AppContext.BaseDirectory, "Croc.Cli.dll");

    /// <summary>Starts <c>croc <paramref name="args"/></c> in a <paramref name="width"/> × <paramref name="height"/> terminal.</summary>
    public static async Task<TerminalSession> StartAsync(
        IReadOnlyList<string> args, string workingDirectory, CancellationToken cancellationToken, IReadOnlyDictionary<string, string>? environment = null, int width = 100, int height = 30, string? stderrFile = null)
    {
        // Unix socket paths are short (108 bytes): a short folder under /tmp, not the test's own temp path.
        var folder = Path.Combine("/tmp", "croc-tty-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(folder);
        var session = new TerminalSession(folder);
        try
        {
            var config = Path.Combine(folder, "tmux.conf");
            await File.WriteAllTextAsync(config, "set -g remain-on-exit on\nset -g status off\n", cancellationToken);
            List<string> command =
            [
                "-f", config, "new-session", "-d", "-s", "t", "-x", width.ToString(CultureInfo.InvariantCulture), "-y", height.ToString(CultureInfo.InvariantCulture),
                "-c", workingDirectory,
            ];
            foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            {
                command.AddRange(["-e", $"{name}={value}"]);
            }

            // bash stays in the pane after croc ends, so the terminal state croc left (the cursor) can still be read:
            // a dead pane has its cursor hidden by tmux. bash also lets croc handle Ctrl+C itself (it waits for its
            // foreground child and only gives up if the child died of the signal). The exit status goes to a file.
            // With stderrFile, standard error goes to that file while standard output stays the terminal.
            var run = stderrFile is null ? "\"$@\"" : $"\"$@\" 2>'{stderrFile.Replace("'", "'\\''", StringComparison.Ordinal)}'";
            command.AddRange(["--", "bash", "-c", run + "; echo $? > \"$0\"; exec sleep 300", session._exitFile, FindOnPath("dotnet") ?? "dotnet", CliDll]);
            command.AddRange(args);
            await session.TmuxAsync(command, cancellationToken);
            return session;
        }
        catch
        {
            await session.DisposeAsync();
            throw;
        }
    }

    /// <summary>The visible screen, one string per line (rows the terminal wrapped are joined), trailing spaces removed.</summary>
    public async Task<string[]> ScreenAsync(CancellationToken cancellationToken)
    {
        var text = await TmuxAsync(["capture-pane", "-p", "-J", "-t", "t"], cancellationToken);
        var rows = text.Split('\n').Select(r => r.TrimEnd()).ToList();
        while (rows.Count > 0 && rows[^1].Length == 0)
        {
            rows.RemoveAt(rows.Count - 1);
        }

        return [.. rows];
    }

    /// <summary>Polls the screen (every 50 ms, for at most <paramref name="within"/>) until <paramref name="condition"/> holds.</summary>
    public async Task<string[]> WaitForScreenAsync(Func<string[], bool> condition, string what, TimeSpan within, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(within.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            var screen = await ScreenAsync(cancellationToken);
            if (condition(screen))
            {
                return screen;
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                Assert.Fail($"The screen did not show {what} within {within.TotalSeconds} s. It shows:\n{string.Join('\n', screen)}");
            }

            await Task.Delay(Poll, cancellationToken);
        }
    }

    /// <summary>Waits until <paramref name="text"/> is on the screen.</summary>
    public Task<string[]> WaitForTextAsync(string text, CancellationToken cancellationToken, TimeSpan? within = null) =>
        WaitForScreenAsync(s => s.Any(r => r.Contains(text, StringComparison.Ordinal)), $"'{text}'", within ?? TimeSpan.FromSeconds(20), cancellationToken);

    /// <summary>
    /// Waits until the screen has not changed for <paramref name="quiet"/> (the display has settled), at most
    /// <paramref name="within"/>; a display that keeps redrawing fails the test.
    /// </summary>
    public async Task<string[]> WaitForSettledScreenAsync(TimeSpan quiet, TimeSpan within, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(within.TotalSeconds * Stopwatch.Frequency);
        var last = await ScreenAsync(cancellationToken);
        var since = Stopwatch.GetTimestamp();
        while (true)
        {
            await Task.Delay(Poll, cancellationToken);
            var screen = await ScreenAsync(cancellationToken);
            if (!screen.SequenceEqual(last))
            {
                last = screen;
                since = Stopwatch.GetTimestamp();
            }
            else if (Stopwatch.GetElapsedTime(since) >= quiet)
            {
                return screen;
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                Assert.Fail($"The screen kept changing for {within.TotalSeconds} s (never still for {quiet.TotalMilliseconds} ms). Last:\n{string.Join('\n', last)}");
            }
        }
    }

    /// <summary>Types literal text (no Enter).</summary>
    public Task TypeAsync(string text, CancellationToken cancellationToken) => TmuxAsync(["send-keys", "-t", "t", "-l", text], cancellationToken);

    /// <summary>Presses keys by tmux name: <c>Enter</c>, <c>C-c</c>.</summary>
    public Task PressAsync(string key, CancellationToken cancellationToken) => TmuxAsync(["send-keys", "-t", "t", key], cancellationToken);

    /// <summary>Waits (polling, at most <paramref name="within"/>) for croc to end and returns its exit status; a signal death is 128 + the signal.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan within, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(within.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            if (File.Exists(_exitFile) && (await File.ReadAllTextAsync(_exitFile, cancellationToken)).Trim() is { Length: > 0 } written)
            {
                return int.Parse(written, CultureInfo.InvariantCulture);
            }

            // bash itself ends when croc died of Ctrl+C's signal; then the pane's own status says so (once reaped).
            var state = (await TmuxAsync(["display-message", "-p", "-t", "t", "#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}"], cancellationToken)).Trim().Split('|');
            if (state is ["1", { Length: > 0 } status, _])
            {
                return int.Parse(status, CultureInfo.InvariantCulture);
            }

            if (state is ["1", _, { Length: > 0 } signal])
            {
                return 128 + int.Parse(signal, CultureInfo.InvariantCulture);
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                Assert.Fail($"croc did not end within {within.TotalSeconds} s. Screen:\n{string.Join('\n', await ScreenAsync(cancellationToken))}");
            }

            await Task.Delay(Poll, cancellationToken);
        }
    }

    /// <summary>Whether the terminal's cursor is visible now (after croc ended: as croc left it).</summary>
    public async Task<bool> CursorVisibleAsync(CancellationToken cancellationToken) =>
        (await TmuxAsync(["display-message", "-p", "-t", "t", "#{cursor_flag}"], cancellationToken)).Trim() == "1";

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (File.Exists(_socket))
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await TmuxAsync(["kill-server"], cts.Token, check: false);
            }
        }
        finally
        {
            try
            {
                Directory.Delete(_folder, recursive: true);
            }
            catch (IOException)
            {
                // Best effort: a temporary folder.
            }
        }
    }

    private async Task<string> TmuxAsync(IEnumerable<string> args, CancellationToken cancellationToken, bool check = true)
    {
        var start = new ProcessStartInfo("tmux")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-S");
        start.ArgumentList.Add(_socket);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // The server the first call starts inherits this environment; no TMUX variable means no nesting refusal.
        start.Environment.Remove("TMUX");
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (check && process.ExitCode != 0)
        {
            throw new InvalidOperationException($"tmux {string.Join(' ', start.ArgumentList)} failed ({process.ExitCode}): {await stderr}");
        }

        return await stdout;
    }

    private static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, program))
            .FirstOrDefault(File.Exists);
}

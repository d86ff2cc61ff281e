using System.Text;
using CrocNet.Cli;

namespace CrocNet.Tests.Cli;

/// <summary>Runs <c>croc</c> in-process with captured streams.</summary>
internal sealed class CliRun : IDisposable
{
    private readonly WatchedWriter _stderr = new();
    private readonly MemoryStream _stdout = new();

    public CliRun(string[] args, Stream? stdin = null, bool interactive = false, IReadOnlyDictionary<string, string>? environment = null, CancellationToken cancellationToken = default)
    {
        Args = args;
        var console = new CliConsole
        {
            Input = stdin ?? new MemoryStream(),
            Output = _stdout,
            Error = _stderr,
            IsInputInteractive = interactive,
            GetEnvironmentVariable = name => environment is not null && environment.TryGetValue(name, out var value) ? value : null,
        };
        // Off the test thread, as a real second process would be.
        Task = System.Threading.Tasks.Task.Run(() => CrocCli.RunAsync(args, console, cancellationToken), CancellationToken.None);
    }

    public string[] Args { get; }

    public Task<int> Task { get; }

    public byte[] Stdout => _stdout.ToArray();

    public string StdoutText => Encoding.UTF8.GetString(Stdout);

    public string Stderr => _stderr.Text;

    /// <summary>Waits for a line on stderr that starts with <paramref name="prefix"/> (after trimming) and returns it.</summary>
    public async Task<string> WaitForLineAsync(string prefix, CancellationToken cancellationToken)
    {
        var line = _stderr.WaitForLineAsync(prefix);
        var finished = await System.Threading.Tasks.Task.WhenAny(line, Task).WaitAsync(cancellationToken);
        if (finished != line)
        {
            Assert.Fail($"croc {string.Join(' ', Args)} ended (exit {await Task}) before printing '{prefix}'. Stderr:\n{Stderr}");
        }

        return await line;
    }

    public void Dispose()
    {
        _stderr.Dispose();
        _stdout.Dispose();
    }

    public async Task<int> ExitAsync(CancellationToken cancellationToken) => await Task.WaitAsync(cancellationToken);

    public static async Task<CliRun> CompleteAsync(string[] args, CancellationToken cancellationToken, Stream? stdin = null, bool interactive = false, IReadOnlyDictionary<string, string>? environment = null)
    {
        var run = new CliRun(args, stdin, interactive, environment, cancellationToken);
        await run.Task.WaitAsync(cancellationToken);
        return run;
    }

    /// <summary>A thread-safe text sink that can wait for a line.</summary>
    private sealed class WatchedWriter : TextWriter
    {
        private readonly StringBuilder _text = new();
        private readonly List<(string Prefix, TaskCompletionSource<string> Found)> _waiters = [];
        private readonly Lock _lock = new();

        public override Encoding Encoding => Encoding.UTF8;

        public string Text
        {
            get
            {
                lock (_lock)
                {
                    return _text.ToString();
                }
            }
        }

        public override void Write(char value)
        {
            lock (_lock)
            {
                _text.Append(value);
                if (value == '\n')
                {
                    Check();
                }
            }
        }

        public override void Write(string? value)
        {
            lock (_lock)
            {
                _text.Append(value);
                Check();
            }
        }

        public Task<string> WaitForLineAsync(string prefix)
        {
            lock (_lock)
            {
                var waiter = (prefix, new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously));
                _waiters.Add(waiter);
                Check();
                return waiter.Item2.Task;
            }
        }

        private void Check()
        {
            if (_waiters.Count == 0)
            {
                return;
            }

            var lines = _text.ToString().Split('\n');
            // Only complete lines (the last piece may still be growing).
            foreach (var line in lines.Take(lines.Length - 1).Select(l => l.Trim()))
            {
                foreach (var waiter in _waiters.Where(w => line.StartsWith(w.Prefix, StringComparison.Ordinal)).ToList())
                {
                    waiter.Found.TrySetResult(line);
                    _waiters.Remove(waiter);
                }
            }
        }
    }
}

/// <summary>A read-only, non-seekable stream, as a pipe is.</summary>
internal sealed class PipeLikeStream(byte[] data) : Stream
{
    private readonly MemoryStream _inner = new(data);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, 8192));

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

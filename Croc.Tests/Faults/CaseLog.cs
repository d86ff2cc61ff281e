using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;

namespace CrocNet.Tests.Faults;

/// <summary>A case's log: every line of both sides with the time since the case started, shown when the case breaks a rule.</summary>
internal sealed class CaseLog : ILoggerProvider
{
    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly ConcurrentQueue<(long At, string Line)> _raw = new();

    public string Text => string.Join('\n', _lines);

    /// <summary>
    /// The lines that mention <paramref name="needle"/>, timed from <paramref name="other"/>'s start: a shared relay's
    /// lines about one case's channel, shown in that case's time.
    /// </summary>
    public IEnumerable<string> LinesAbout(string needle, CaseLog other) => _raw
        .Where(r => r.Line.Contains(needle, StringComparison.Ordinal))
        .Select(r => $"{Stopwatch.GetElapsedTime(other._started, r.At).TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture)} {r.Line}");

    public ILoggerFactory Factory(string side) => LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(new Prefixed(this, side)));

    public void Add(string line)
    {
        var at = Stopwatch.GetTimestamp();
        _raw.Enqueue((at, line));
        _lines.Enqueue($"{Stopwatch.GetElapsedTime(_started, at).TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture)} {line}");
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, string.Empty);

    public void Dispose()
    {
    }

    private sealed class Prefixed(CaseLog owner, string side) : ILoggerProvider
    {
        // The web host's own chatter (Kestrel, hosting, routing) drowns what the relay and the clients say.
        public ILogger CreateLogger(string categoryName) => categoryName.StartsWith("Microsoft.", StringComparison.Ordinal) ? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance : new Logger(owner, side);

        public void Dispose()
        {
        }
    }

    private sealed class Logger(CaseLog owner, string side) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => owner.Add($"{side} {logLevel} {eventId.Id}: {formatter(state, exception)}{(exception is null ? string.Empty : " [" + exception.GetType().Name + ": " + exception.Message + "]")}");
    }
}

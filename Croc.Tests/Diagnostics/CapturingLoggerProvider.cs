using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace CrocNet.Tests.Diagnostics;

/// <summary>Keeps every log line (category, event, message, structured values, exception) for assertions on what is logged.</summary>
internal sealed class CapturingLoggerProvider : ILoggerProvider
{
    public ConcurrentQueue<string> Lines { get; } = new();

    /// <summary>Every line so far, one per line.</summary>
    public string Text => string.Join(Environment.NewLine, Lines);

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var structured = state is IEnumerable<KeyValuePair<string, object?>> pairs ? string.Join(";", pairs.Select(p => $"{p.Key}={p.Value}")) : string.Empty;
            owner.Lines.Enqueue($"{category}|{eventId}|{formatter(state, exception)}|{structured}|{exception}");
        }
    }
}

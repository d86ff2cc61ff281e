using System.Collections.Concurrent;
using System.Diagnostics;
using CrocNet.Relay;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using static CrocNet.Tests.Relay.RelayTestKit;

namespace CrocNet.Tests.Relay.Hosting;

/// <summary>What the relay logs, and how it stops.</summary>
[CancelAfter(20_000)]
public class RelayLoggingTests
{
    [Test]
    public async Task Logs_FullTransferAndRefusals_NeverContainUuidsOrValues(CancellationToken cancellationToken)
    {
        var lines = new ConcurrentQueue<(int EventId, string Text)>();
        using var factory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(new CollectingProvider(lines)));
        await using var relay = await StartRelayAsync(cancellationToken, o => o.LoggerFactory = factory);
        using var a = Client(relay.BaseAddress);
        using var b = Client(relay.BaseAddress, Second);

        var pair = await OpenAsync(a, b, cancellationToken);
        await PostAsync(a, "channel", new { channel = pair.Channel, uuid = pair.RecipientUuid + "ff" }, cancellationToken);
        var (bad, _) = await HelloAsync(relay.Ports[0], pair.Channel, pair.SenderUuid + "00", cancellationToken);
        bad.Dispose();
        var (s, _) = await HelloAsync(relay.Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        var (r, _) = await HelloAsync(relay.Ports[0], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        using (s)
        using (r)
        {
            await SendAsync(s, "secret payload\n", cancellationToken);
            Assert.That(await ReadLineAsync(r, cancellationToken), Is.EqualTo("secret payload"));
        }

        await OkAsync(PostAsync(a, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid, close = true }, cancellationToken));

        var all = string.Join('\n', lines.Select(l => l.Text));
        Assert.That(lines.Select(l => l.EventId), Does.Contain(1).And.Contain(2).And.Contain(3).And.Contain(10).And.Contain(21).And.Contain(22));
        Assert.That(all, Does.Contain(pair.Channel), "channel names are public and logged");
        foreach (var secret in new[] { pair.SenderUuid, pair.RecipientUuid, B64(1), B64(2), B64(3, 32), B64(4, 32), "secret payload" })
        {
            Assert.That(all, Does.Not.Contain(secret));
        }
    }

    [Test]
    public async Task Logs_SuccessfulClientTransfer_NoRefusalAndNoPairCutAtInformation(CancellationToken cancellationToken)
    {
        var lines = new ConcurrentQueue<(int EventId, string Text)>();
        var refusals = new ConcurrentQueue<string?>();
        using var factory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Information).AddProvider(new CollectingProvider(lines)));
        await using var relay = await StartRelayAsync(cancellationToken, o => o.LoggerFactory = factory);
        var meter = relay.Services.GetRequiredService<CrocNet.Relay.Diagnostics.RelayMetrics>().Meter;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, meter) && instrument.Name == "croc.relay.refusals")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "code")
                {
                    refusals.Enqueue((string?)tag.Value);
                }
            }
        });
        listener.Start();

        Assert.That(await TransferTextAsync(relay.BaseAddress, "hello", cancellationToken), Is.EqualTo("hello"));

        // Both participants close the channel when done; the second close must not count as a refusal.
        Assert.That(await EventuallyAsync(() => lines.Any(l => l.EventId == 3), TimeSpan.FromSeconds(10), cancellationToken), Is.True, "the channel was closed");
        Assert.That(refusals, Is.Empty, "a normal transfer has no refusal");
        Assert.That(lines.Where(l => l.Text.Contains("clean", StringComparison.OrdinalIgnoreCase)).Select(l => l.Text), Is.Empty);
    }

    [Test]
    public async Task StopAsync_LongPollPending_StopsPromptly(CancellationToken cancellationToken)
    {
        var relay = await StartRelayAsync(cancellationToken);
        using var a = Client(relay.BaseAddress);
        using var b = Client(relay.BaseAddress, Second);
        var pair = await OpenAsync(a, b, cancellationToken, confirm: false);
        var poll = PostAsync(a, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid, wait = 30, since = 100 }, cancellationToken);
        var waiting = await HelloAsync(relay.Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        waiting.Socket.Dispose();

        var clock = Stopwatch.StartNew();
        await relay.DisposeAsync();

        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)), "a pending long-poll must not hold the shutdown");
        try
        {
            await poll;
        }
        catch (HttpRequestException)
        {
            // Also fine: the connection closed with the server.
        }
    }

    private sealed class CollectingProvider(ConcurrentQueue<(int, string)> lines) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Collector(lines);

        public void Dispose()
        {
        }

        private sealed class Collector(ConcurrentQueue<(int, string)> lines) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
                => lines.Enqueue((eventId.Id, formatter(state, exception) + " " + exception));
        }
    }
}

using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using CrocNet.Relay;
using CrocNet.Relay.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using static CrocNet.Tests.Relay.RelayTestKit;

namespace CrocNet.Tests.Relay.Hosting;

/// <summary>The relay's instruments on the meter <c>CrocNet.Relay</c>, read with a real <see cref="MeterListener"/>.</summary>
[CancelAfter(30_000)]
public class RelayMetricsTests
{
    [Test]
    public async Task Refusals_FullSuccessfulTransfer_CountsNone(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken);
        var refusals = new ConcurrentQueue<string>();
        using var listener = Listen(relay, (name, _, tags) =>
        {
            if (name == "croc.relay.refusals")
            {
                refusals.Enqueue(string.Join(",", tags.Select(t => $"{t.Key}={t.Value}")));
            }
        });

        Assert.That(await TransferTextAsync(relay.BaseAddress, "hello through the relay", cancellationToken), Is.EqualTo("hello through the relay"));

        // The client closes its legs and the channel after the transfer; give the relay the moment it takes to see it.
        await relay.Services.GetRequiredService<CrocNet.Relay.Channels.ChannelRegistry>().BackgroundWork.WaitAsync(cancellationToken);
        Assert.That(await EventuallyAsync(() => OpenStapleConnections(relay) == 0, TimeSpan.FromSeconds(5), cancellationToken), Is.True);
        Assert.That(refusals, Is.Empty);
    }

    [Test]
    public async Task Gauges_WaitingThenPipedThenDone_ReportTheRelayAsItIs(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken);
        var gauges = new ConcurrentDictionary<string, long>();
        using var listener = Listen(relay, (name, value, _) => gauges[name] = value);
        Dictionary<string, long> Read()
        {
            gauges.Clear();
            listener.RecordObservableInstruments();
            return new Dictionary<string, long>(gauges);
        }

        bool Now(long channels, long waiting, long piped, long connections)
        {
            var now = Read();
            return now.GetValueOrDefault("croc.relay.channels.held", -1) == channels && now.GetValueOrDefault("croc.relay.legs.waiting", -1) == waiting
                && now.GetValueOrDefault("croc.relay.pairs.piped", -1) == piped && now.GetValueOrDefault("croc.relay.connections.open", -1) == connections;
        }

        Assert.That(Now(0, 0, 0, 0), Is.True, string.Join(", ", Read()));
        using var a = Client(relay.BaseAddress);
        using var b = Client(relay.BaseAddress, Second);
        var pair = await OpenAsync(a, b, cancellationToken);
        var (s, _) = await HelloAsync(relay.Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        using (s)
        {
            Assert.That(await EventuallyAsync(() => Now(1, 1, 0, 1), TimeSpan.FromSeconds(5), cancellationToken), Is.True, string.Join(", ", Read()));
            var (r, _) = await HelloAsync(relay.Ports[0], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
            using (r)
            {
                await SendAsync(s, "12345\n", cancellationToken);
                Assert.That(await ReadLineAsync(r, cancellationToken), Is.EqualTo("12345"));
                Assert.That(await EventuallyAsync(() => Now(1, 0, 1, 2), TimeSpan.FromSeconds(5), cancellationToken), Is.True, string.Join(", ", Read()));
            }
        }

        Assert.That(await EventuallyAsync(() => Now(1, 0, 0, 0), TimeSpan.FromSeconds(5), cancellationToken), Is.True, string.Join(", ", Read()));
    }

    [Test]
    public async Task Counters_PairBreaksThenReattaches_OneBrokenPairOneReattachmentAndGaugesFollow(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.Ports = [0]);
        var counters = new ConcurrentDictionary<string, long>();
        using var listener = Listen(relay, (name, value, _) => counters.AddOrUpdate(name, value, (_, total) => total + value));
        using var a = Client(relay.BaseAddress);
        using var b = Client(relay.BaseAddress, Second);
        var pair = await OpenAsync(a, b, cancellationToken);
        var (s, _) = await HelloAsync(relay.Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        var (r, _) = await HelloAsync(relay.Ports[0], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        using (r)
        {
            s.LingerState = new System.Net.Sockets.LingerOption(true, 0);
            s.Dispose();
            Assert.That(await ReadToEndAsync(r, cancellationToken), Is.Empty);
        }

        Assert.That(await EventuallyAsync(() => counters.GetValueOrDefault("croc.relay.pairs.broken") == 1, TimeSpan.FromSeconds(5), cancellationToken), Is.True);
        Assert.That(counters.GetValueOrDefault("croc.relay.reattachments"), Is.Zero);
        var (s2, _) = await HelloAsync(relay.Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        using (s2)
        {
            Assert.That(counters.GetValueOrDefault("croc.relay.reattachments"), Is.EqualTo(1), "counted as its first leg attaches");
            counters.TryRemove("croc.relay.legs.waiting", out _);
            listener.RecordObservableInstruments();
            Assert.That(counters.GetValueOrDefault("croc.relay.legs.waiting"), Is.EqualTo(1), "the re-attached leg waits");
            var (r2, _) = await HelloAsync(relay.Ports[0], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
            r2.Dispose();
        }

        Assert.That((counters.GetValueOrDefault("croc.relay.reattachments"), counters.GetValueOrDefault("croc.relay.connections.stapled")), Is.EqualTo((1, 2)), "the second leg of a re-attachment counts no new one");
    }

    private static int OpenStapleConnections(CrocRelayServer relay)
        => relay.Services.GetRequiredService<CrocNet.Relay.Staple.StapleListenerService>().OpenConnections;

    internal static MeterListener Listen(CrocRelayServer relay, Action<string, long, KeyValuePair<string, object?>[]> onMeasurement)
    {
        var meter = relay.Services.GetRequiredService<RelayMetrics>().Meter;
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter, meter))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => onMeasurement(instrument.Name, value, tags.ToArray()));
        listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => onMeasurement(instrument.Name, value, tags.ToArray()));
        listener.Start();
        return listener;
    }
}

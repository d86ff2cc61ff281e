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
    public async Task Refusals_FullSuccessfulFileTransfer_CountsNone(CancellationToken cancellationToken)
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
        var folder = Directory.CreateTempSubdirectory("croc-metrics-");
        try
        {
            var file = Path.Combine(folder.FullName, "data.bin");
            var bytes = new byte[3 * 1024 * 1024];
            new Random(7).NextBytes(bytes);
            await File.WriteAllBytesAsync(file, bytes, cancellationToken);
            var output = Directory.CreateDirectory(Path.Combine(folder.FullName, "out")).FullName;
            var sender = Croc.New(o => o.WithRelay(relay.BaseAddress));
            var recipient = Croc.New(o => o.WithRelay(relay.BaseAddress));
            await using (var operation = await sender.StartSendAsync(SendContent.FromPath(file), cancellationToken: cancellationToken))
            {
                var received = recipient.ReceiveAsync(operation.Code, new ReceiveOptions { OutputDirectory = output }, cancellationToken);
                await Task.WhenAll(received, operation.Completion).WaitAsync(cancellationToken);
            }

            Assert.That(await File.ReadAllBytesAsync(Path.Combine(output, "data.bin"), cancellationToken), Is.EqualTo(bytes));
            Assert.That(await EventuallyAsync(() => OpenStapleConnections(relay) == 0, TimeSpan.FromSeconds(5), cancellationToken), Is.True);
            await relay.Services.GetRequiredService<CrocNet.Relay.Channels.ChannelRegistry>().BackgroundWork.WaitAsync(cancellationToken);
            Assert.That(refusals, Is.Empty);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
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

using System.Diagnostics.Metrics;

namespace CrocNet.Relay.Diagnostics;

/// <summary>The relay's instruments on the meter <c>CrocNet.Relay</c> (names in docs/relay.md).</summary>
internal sealed class RelayMetrics : IDisposable
{
    /// <summary>The meter's name, for <c>AddMeter</c> in OpenTelemetry or <c>dotnet-counters</c>.</summary>
    public const string MeterName = "CrocNet.Relay";

    /// <summary>How many recent accept failures are remembered for the health check.</summary>
    private const int RememberedAcceptFailures = 16;

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _opened;
    private readonly Counter<long> _expired;
    private readonly Counter<long> _closed;
    private readonly Counter<long> _bytes;
    private readonly Counter<long> _refusals;
    private readonly Counter<long> _stapled;
    private readonly Counter<long> _acceptErrors;
    private readonly Counter<long> _reattached;
    private readonly Counter<long> _broken;
    private readonly Counter<long> _reset;
    private readonly Queue<long> _acceptFailures = new();
    private readonly Lock _acceptLock = new();
    private volatile GaugeSources? _sources;
    private int _piping;

    public RelayMetrics(IMeterFactory? meterFactory = null)
    {
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _opened = _meter.CreateCounter<long>("croc.relay.channels.opened", "{channel}", "Channels created by a sender's join.");
        _expired = _meter.CreateCounter<long>("croc.relay.channels.expired", "{channel}", "Channels that expired before they were closed.");
        _closed = _meter.CreateCounter<long>("croc.relay.channels.closed", "{channel}", "Channels closed by a participant.");
        _bytes = _meter.CreateCounter<long>("croc.relay.bytes.piped", "By", "Bytes copied between stapled connections, both directions.");
        _refusals = _meter.CreateCounter<long>("croc.relay.refusals", "{refusal}", "Refused HTTP requests and leg hellos (TCP and WebSocket), tagged by code and transport.");
        _stapled = _meter.CreateCounter<long>("croc.relay.connections.stapled", "{pair}", "Connection pairs piped together.");
        _reattached = _meter.CreateCounter<long>("croc.relay.reattachments", "{reattachment}", "New pairs started on lanes that had a pair before (counted when the first new leg attaches).");
        _broken = _meter.CreateCounter<long>("croc.relay.pairs.broken", "{pair}", "Piped pairs that broke (a leg failed or reset, or the pair went idle); the relay cut both legs.");
        _reset = _meter.CreateCounter<long>("croc.relay.channels.reset", "{channel}", "Channels the relay closed because a broken lane had no pair again within ReconnectWindow.");
        _acceptErrors = _meter.CreateCounter<long>("croc.relay.accept.errors", "{error}", "Failed accepts on the TCP stapling listeners (e.g. out of file descriptors).");
        _meter.CreateObservableGauge("croc.relay.channels.held", () => Read(s => s.Channels()), "{channel}", "Channels held now: open, or closed and not yet forgotten (MaxChannels caps them).");
        _meter.CreateObservableGauge("croc.relay.legs.waiting", () => Read(s => s.Waiting()), "{leg}", "Data connections that said hello and wait for their peer.");
        _meter.CreateObservableGauge("croc.relay.pairs.piped", () => Volatile.Read(ref _piping), "{pair}", "Connection pairs moving data now.");
        _meter.CreateObservableGauge("croc.relay.connections.open", () => Read(s => s.Connections()), "{connection}", "Open data connections, TCP and WebSocket legs alike (before, during and after their hello).");
    }

    public Meter Meter => _meter;

    /// <summary>Pairs piping now (the <c>croc.relay.pairs.piped</c> gauge).</summary>
    public int Piping => Volatile.Read(ref _piping);

    /// <summary>Connects the gauges to what they read; until then they report nothing.</summary>
    public void Observe(Func<int> channels, Func<int> waiting, Func<int> connections) => _sources = new GaugeSources(channels, waiting, connections);

    public void ChannelOpened() => _opened.Add(1);

    public void ChannelExpired() => _expired.Add(1);

    public void ChannelClosed() => _closed.Add(1);

    public void BytesPiped(long count) => _bytes.Add(count);

    public void ConnectionsStapled() => _stapled.Add(1);

    public void Reattached() => _reattached.Add(1);

    public void PairBroken() => _broken.Add(1);

    public void ChannelReset() => _reset.Add(1);

    /// <summary>Counts a pair as piping until the returned scope is disposed.</summary>
    public PipingScope StartPiping()
    {
        Interlocked.Increment(ref _piping);
        return new PipingScope(this);
    }

    public void Refused(string code, string transport)
        => _refusals.Add(1, new KeyValuePair<string, object?>("code", code), new KeyValuePair<string, object?>("transport", transport));

    /// <summary>Records a failed accept (counted, and remembered for the health check).</summary>
    public void AcceptFailed(TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        _acceptErrors.Add(1);
        lock (_acceptLock)
        {
            _acceptFailures.Enqueue(timeProvider.GetTimestamp());
            if (_acceptFailures.Count > RememberedAcceptFailures)
            {
                _acceptFailures.Dequeue();
            }
        }
    }

    /// <summary>How many accepts failed within the last <paramref name="window"/> (at most the last 16 are remembered).</summary>
    public int AcceptFailuresWithin(TimeSpan window, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        lock (_acceptLock)
        {
            var count = 0;
            foreach (var at in _acceptFailures)
            {
                if (timeProvider.GetElapsedTime(at) <= window)
                {
                    count++;
                }
            }

            return count;
        }
    }

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    private IEnumerable<Measurement<int>> Read(Func<GaugeSources, int> read)
        => _sources is { } sources ? [new Measurement<int>(read(sources))] : [];

    private void EndPiping() => Interlocked.Decrement(ref _piping);

    /// <summary>One pair's piping; dispose once.</summary>
    public readonly struct PipingScope(RelayMetrics metrics) : IDisposable
    {
        public void Dispose() => metrics?.EndPiping();
    }

    private sealed record GaugeSources(Func<int> Channels, Func<int> Waiting, Func<int> Connections);
}

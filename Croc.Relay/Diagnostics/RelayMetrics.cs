using System.Diagnostics.Metrics;

namespace CrocNet.Relay.Diagnostics;

/// <summary>The relay's instruments on the meter <c>CrocNet.Relay</c> (names in docs/relay.md).</summary>
internal sealed class RelayMetrics : IDisposable
{
    /// <summary>The meter's name, for <c>AddMeter</c> in OpenTelemetry or <c>dotnet-counters</c>.</summary>
    public const string MeterName = "CrocNet.Relay";

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _opened;
    private readonly Counter<long> _expired;
    private readonly Counter<long> _closed;
    private readonly Counter<long> _bytes;
    private readonly Counter<long> _refusals;
    private readonly Counter<long> _stapled;

    public RelayMetrics(IMeterFactory? meterFactory = null)
    {
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _opened = _meter.CreateCounter<long>("croc.relay.channels.opened", "{channel}", "Channels created by a sender's join.");
        _expired = _meter.CreateCounter<long>("croc.relay.channels.expired", "{channel}", "Channels that expired before they were closed.");
        _closed = _meter.CreateCounter<long>("croc.relay.channels.closed", "{channel}", "Channels closed by a participant.");
        _bytes = _meter.CreateCounter<long>("croc.relay.bytes.piped", "By", "Bytes copied between stapled connections, both directions.");
        _refusals = _meter.CreateCounter<long>("croc.relay.refusals", "{refusal}", "Refused HTTP requests and TCP hellos, tagged by code and transport.");
        _stapled = _meter.CreateCounter<long>("croc.relay.connections.stapled", "{pair}", "Connection pairs piped together.");
    }

    public Meter Meter => _meter;

    public void ChannelOpened() => _opened.Add(1);

    public void ChannelExpired() => _expired.Add(1);

    public void ChannelClosed() => _closed.Add(1);

    public void BytesPiped(long count) => _bytes.Add(count);

    public void ConnectionsStapled() => _stapled.Add(1);

    public void Refused(string code, string transport)
        => _refusals.Add(1, new KeyValuePair<string, object?>("code", code), new KeyValuePair<string, object?>("transport", transport));

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }
}

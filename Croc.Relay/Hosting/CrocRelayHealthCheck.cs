using CrocNet.Relay.Channels;
using CrocNet.Relay.Diagnostics;
using CrocNet.Relay.Staple;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CrocNet.Relay;

/// <summary>
/// The relay's health: <see cref="HealthStatus.Unhealthy"/> when its TCP stapling listeners did not start, an accept
/// loop ended while the relay runs, accepts keep failing (e.g. out of file descriptors), or the channel store does not
/// answer; <see cref="HealthStatus.Degraded"/> near capacity (channels, stapling connections or waiting legs at 90 % of
/// their limits, or an accept failure within the last minute); else <see cref="HealthStatus.Healthy"/>. The result's data
/// holds the counts. Register it with <c>AddCrocRelay().AddHealthChecks()</c>, or add it to a host's own health checks
/// (<c>services.AddHealthChecks().AddCheck&lt;CrocRelayHealthCheck&gt;("croc-relay")</c>) next to <c>AddCrocRelay()</c>.
/// </summary>
public sealed class CrocRelayHealthCheck : IHealthCheck
{
    /// <summary>The name <c>AddCrocRelay().AddHealthChecks()</c> registers the check under.</summary>
    public const string DefaultName = "croc-relay";

    /// <summary>The share of a limit in use from which the relay reports itself degraded.</summary>
    internal const double DegradedShare = 0.9;

    /// <summary>How many accept failures within <see cref="AcceptWindow"/> make the listeners unhealthy.</summary>
    internal const int UnhealthyAcceptFailures = 5;

    /// <summary>The window accept failures are counted in.</summary>
    internal static readonly TimeSpan AcceptWindow = TimeSpan.FromMinutes(1);

    private static readonly TimeSpan StoreTimeout = TimeSpan.FromSeconds(5);

    private readonly ChannelRegistry _registry;
    private readonly StapleListenerService _listeners;
    private readonly IChannelStore _store;
    private readonly RelayMetrics _metrics;

    /// <summary>Creates the check over the relay that <c>AddCrocRelay()</c> registered in <paramref name="services"/>.</summary>
    /// <param name="services">The host's services, holding the relay.</param>
    /// <exception cref="InvalidOperationException">The relay was not added (<c>AddCrocRelay()</c>).</exception>
    public CrocRelayHealthCheck(IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(services);
        _registry = services.GetService<ChannelRegistry>()
            ?? throw new InvalidOperationException("The Croc relay is not registered: call services.AddCrocRelay() before adding its health check.");
        _listeners = services.GetRequiredService<StapleListenerService>();
        _store = services.GetRequiredService<IChannelStore>();
        _metrics = services.GetRequiredService<RelayMetrics>();
    }

    /// <inheritdoc/>
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var options = _registry.Options;
        var time = _registry.TimeProvider;
        var channels = _registry.Count;
        var waiting = _registry.WaitingConnections;
        var connections = _listeners.OpenConnections;
        var data = new Dictionary<string, object>
        {
            ["channels"] = channels,
            ["maxChannels"] = options.MaxChannels,
            ["waitingLegs"] = waiting,
            ["maxWaitingLegs"] = options.MaxWaitingConnections,
            ["pipedPairs"] = _metrics.Piping,
            ["stapleConnections"] = connections,
            ["maxStapleConnections"] = _listeners.MaxConnections,
            ["ports"] = string.Join(",", _registry.Ports),
        };

        if (!_listeners.Running || _registry.Ports.Count != options.Ports.Count)
        {
            return HealthCheckResult.Unhealthy("The relay's data-connection service is not running (the relay has not started, or it stopped).", data: data);
        }

        if (_listeners.AcceptLoops.Any(loop => loop.IsCompleted))
        {
            return HealthCheckResult.Unhealthy("A TCP stapling listener stopped accepting connections.", data: data);
        }

        var acceptFailures = _metrics.AcceptFailuresWithin(AcceptWindow, time);
        data["acceptFailures"] = acceptFailures;
        if (acceptFailures >= UnhealthyAcceptFailures)
        {
            return HealthCheckResult.Unhealthy($"Accepting TCP stapling connections failed {acceptFailures} times within {AcceptWindow.TotalSeconds:0} s (out of file descriptors?).", data: data);
        }

        using (var timeout = new CancellationTokenSource(StoreTimeout, time))
        using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token))
        {
            try
            {
                await _store.ProbeAsync(linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
#pragma warning disable CA1031 // Any failure of the store is the answer; its message may name a connection string, so it is not passed on.
            catch (Exception e)
#pragma warning restore CA1031
            {
                return HealthCheckResult.Unhealthy($"The channel store did not answer ({e.GetType().Name}).", data: data);
            }
        }

        var busy = new List<string>();
        if (channels >= DegradedShare * options.MaxChannels)
        {
            busy.Add(FormattableString.Invariant($"channels {channels}/{options.MaxChannels}"));
        }

        if (connections >= DegradedShare * _listeners.MaxConnections)
        {
            busy.Add(FormattableString.Invariant($"stapling connections {connections}/{_listeners.MaxConnections}"));
        }

        if (waiting >= DegradedShare * options.MaxWaitingConnections)
        {
            busy.Add(FormattableString.Invariant($"waiting legs {waiting}/{options.MaxWaitingConnections}"));
        }

        if (busy.Count > 0)
        {
            return HealthCheckResult.Degraded("Near capacity: " + string.Join(", ", busy) + ".", data: data);
        }

        return acceptFailures > 0
            ? HealthCheckResult.Degraded(FormattableString.Invariant($"Accepting a TCP stapling connection failed {acceptFailures} times within the last minute."), data: data)
            : HealthCheckResult.Healthy("Listening; the channel store answers.", data);
    }
}

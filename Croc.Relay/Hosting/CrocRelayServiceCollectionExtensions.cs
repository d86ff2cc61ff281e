using CrocNet.Relay;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Diagnostics;
using CrocNet.Relay.Hosting;
using CrocNet.Relay.Net;
using CrocNet.Relay.Staple;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>A handle on the relay's service registration, for further configuration.</summary>
public interface ICrocRelayBuilder
{
    /// <summary>The service collection the relay was added to.</summary>
    IServiceCollection Services { get; }
}

/// <summary>Adds the Croc relay to a service collection.</summary>
public static class CrocRelayServiceCollectionExtensions
{
    /// <summary>
    /// Adds the relay with default options (see <see cref="AddCrocRelay(IServiceCollection, Action{CrocRelayOptions}?)"/>).
    /// </summary>
    /// <param name="services">The services of the host application.</param>
    /// <returns>A builder for further relay configuration.</returns>
    public static ICrocRelayBuilder AddCrocRelay(this IServiceCollection services) => AddCrocRelay(services, (Action<CrocRelayOptions>?)null);

    /// <summary>
    /// Adds the relay: the channel registry, the TCP stapling listeners (a hosted service, started with the host) and
    /// the validated <see cref="CrocRelayOptions"/>. Map its HTTP routes with <c>app.MapCrocRelay()</c>.
    /// </summary>
    /// <param name="services">The services of the host application.</param>
    /// <param name="configure">Changes the options; <see langword="null"/> keeps the defaults.</param>
    /// <returns>A builder for further relay configuration.</returns>
    public static ICrocRelayBuilder AddCrocRelay(this IServiceCollection services, Action<CrocRelayOptions>? configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (configure is not null)
        {
            services.Configure(configure);
        }

        return AddCore(services);
    }

    /// <summary>
    /// Adds the relay with options bound from <paramref name="configuration"/> (typically the <c>CrocRelay</c> section).
    /// A <c>Ports</c> entry there replaces the default ports instead of adding to them.
    /// </summary>
    /// <param name="services">The services of the host application.</param>
    /// <param name="configuration">The configuration section holding the options.</param>
    /// <returns>A builder for further relay configuration.</returns>
    public static ICrocRelayBuilder AddCrocRelay(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<CrocRelayOptions>().Configure(options =>
        {
            if (configuration.GetSection(nameof(CrocRelayOptions.Ports)).GetChildren().Any())
            {
                options.Ports = [];
            }

            configuration.Bind(options);
        });
        return AddCore(services);
    }

    /// <summary>
    /// Adds the relay's health check (<see cref="CrocRelayHealthCheck"/>) to the host's health checks; map them with
    /// <c>app.MapHealthChecks("/health")</c>. Unhealthy when the TCP listeners failed or the channel store does not
    /// answer, degraded near capacity.
    /// </summary>
    /// <param name="builder">The relay's builder.</param>
    /// <param name="name">The check's name.</param>
    /// <param name="tags">Tags for filtering checks (e.g. <c>ready</c>); <see langword="null"/> for none.</param>
    /// <returns>The same builder.</returns>
    public static ICrocRelayBuilder AddHealthChecks(this ICrocRelayBuilder builder, string name = CrocRelayHealthCheck.DefaultName, IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        builder.Services.AddHealthChecks().AddCheck<CrocRelayHealthCheck>(name, failureStatus: null, tags: tags ?? []);
        return builder;
    }

    private static CrocRelayBuilder AddCore(IServiceCollection services)
    {
        services.AddOptions<CrocRelayOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CrocRelayOptions>, CrocRelayOptionsValidator>());
        services.TryAddSingleton(sp => new RelayClock(sp.GetService<TimeProvider>() ?? TimeProvider.System));
        services.TryAddSingleton(sp => new RelayMetrics(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
        // The channel store is a seam: a shared store registered before AddCrocRelay (or replacing this one) serves
        // several nodes; the in-memory one is the default.
        services.TryAddSingleton<IChannelStore, InMemoryChannelStore>();
        services.TryAddSingleton<IRelayLimits>(sp => new InMemoryRelayLimits(sp.GetRequiredService<IOptions<CrocRelayOptions>>().Value, sp.GetRequiredService<RelayClock>().TimeProvider));
        services.TryAddSingleton<ChannelRegistry>();
        services.TryAddSingleton(sp => new CrocRelayListeners(sp.GetRequiredService<ChannelRegistry>()));
        services.TryAddSingleton<RelayHttpHandler>();
        services.TryAddSingleton(sp =>
        {
            var registry = sp.GetRequiredService<ChannelRegistry>();
            var listeners = new StapleListenerService(registry);
            registry.Metrics.Observe(() => registry.Count, () => registry.WaitingConnections, () => listeners.OpenConnections);
            return listeners;
        });
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, StapleListenerService>(sp => sp.GetRequiredService<StapleListenerService>()));
        return new CrocRelayBuilder(services);
    }

    private sealed class CrocRelayBuilder(IServiceCollection services) : ICrocRelayBuilder
    {
        public IServiceCollection Services { get; } = services;
    }
}

using CrocNet.Relay;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Diagnostics;
using CrocNet.Relay.Hosting;
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

    private static CrocRelayBuilder AddCore(IServiceCollection services)
    {
        services.AddOptions<CrocRelayOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CrocRelayOptions>, CrocRelayOptionsValidator>());
        services.TryAddSingleton(sp => new RelayClock(sp.GetService<TimeProvider>() ?? TimeProvider.System));
        services.TryAddSingleton(sp => new RelayMetrics(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
        // The channel store is a seam: a shared store registered before AddCrocRelay (or replacing this one) serves
        // several nodes; the in-memory one is the default.
        services.TryAddSingleton<IChannelStore, InMemoryChannelStore>();
        services.TryAddSingleton<ChannelRegistry>();
        services.TryAddSingleton(sp => new CrocRelayListeners(sp.GetRequiredService<ChannelRegistry>()));
        services.TryAddSingleton<RelayHttpHandler>();
        services.TryAddSingleton<StapleListenerService>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, StapleListenerService>(sp => sp.GetRequiredService<StapleListenerService>()));
        return new CrocRelayBuilder(services);
    }

    private sealed class CrocRelayBuilder(IServiceCollection services) : ICrocRelayBuilder
    {
        public IServiceCollection Services { get; } = services;
    }
}

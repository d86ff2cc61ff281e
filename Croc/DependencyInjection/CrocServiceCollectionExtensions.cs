using CrocNet;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers <see cref="Croc"/> as a singleton in a service collection.</summary>
public static class CrocServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="Croc"/> (a thread-safe singleton) configured with the fluent builder. The container's
    /// <see cref="ILoggerFactory"/> and <see cref="TimeProvider"/> are used unless the builder supplies its own.
    /// Options are validated at host start and on first use, and invalid ones throw the same
    /// <see cref="OptionsValidationException"/> as <see cref="Croc.New(Action{CrocOptionsBuilder})"/>.
    /// </summary>
    public static IServiceCollection AddCroc(this IServiceCollection services, Action<CrocOptionsBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        return AddCore(services, services.AddOptions<CrocOptions>(), configure);
    }

    /// <summary>Registers <see cref="Croc"/> with the default options (a relay on this machine).</summary>
    public static IServiceCollection AddCroc(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        return AddCore(services, services.AddOptions<CrocOptions>(), null);
    }

    /// <summary>Registers <see cref="Croc"/> with options bound from a configuration section (e.g. <c>"Croc"</c>).</summary>
    public static IServiceCollection AddCroc(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        return AddCore(services, services.AddOptions<CrocOptions>().Bind(configuration), null);
    }

    /// <summary>Registers <see cref="Croc"/> with options bound from a configuration section (e.g. <c>"Croc"</c>), then adjusted by <paramref name="configure"/>.</summary>
    public static IServiceCollection AddCroc(this IServiceCollection services, IConfiguration configuration, Action<CrocOptionsBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        return AddCore(services, services.AddOptions<CrocOptions>().Bind(configuration), configure);
    }

    private static IServiceCollection AddCore(IServiceCollection services, OptionsBuilder<CrocOptions> builder, Action<CrocOptionsBuilder>? configure)
    {
        // Services the builder supplies are kept here, never in the options: the options stay plain, bindable data.
        // One set for the collection: a second AddCroc adds its builder calls to the same options and services.
        var chosen = services.FirstOrDefault(d => d.ServiceType == typeof(CrocServices))?.ImplementationInstance as CrocServices;
        if (chosen is null)
        {
            chosen = new CrocServices();
            services.AddSingleton(chosen);
        }

        if (configure is not null)
        {
            builder.Configure(options => configure(new CrocOptionsBuilder(options, chosen)));
        }

        builder.ValidateOnStart();
        // The validator sees this collection's services too (configure has run by the time it validates), so a service
        // that contradicts an option fails at host start like any invalid option.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CrocOptions>>(new CrocOptionsValidator(chosen)));
        services.TryAddSingleton(provider =>
        {
            // Reading the value runs the builder (and validation, which throws the one error type).
            var options = provider.GetRequiredService<IOptions<CrocOptions>>().Value.Clone();
            var resolved = chosen.Clone();
            resolved.LoggerFactory ??= provider.GetService<ILoggerFactory>();
            resolved.TimeProvider ??= provider.GetService<TimeProvider>();
            return new Croc(options, resolved);
        });
        return services;
    }
}

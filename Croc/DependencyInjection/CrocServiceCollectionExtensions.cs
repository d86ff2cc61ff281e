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
    /// Registers <see cref="Croc"/> (a thread-safe singleton) configured with the fluent builder. Options are
    /// validated on first use and at host start, with the same aggregated error as <see cref="Croc.New(Action{CrocOptionsBuilder})"/>.
    /// </summary>
    public static IServiceCollection AddCroc(this IServiceCollection services, Action<CrocOptionsBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = services.AddOptions<CrocOptions>();
        if (configure is not null)
        {
            builder.Configure(options => configure(new CrocOptionsBuilder(options)));
        }

        return AddCore(services, builder);
    }

    /// <summary>Registers <see cref="Croc"/> with options bound from a configuration section (e.g. <c>"Croc"</c>), then adjusted by <paramref name="configure"/>.</summary>
    public static IServiceCollection AddCroc(this IServiceCollection services, IConfiguration configuration, Action<CrocOptionsBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        var builder = services.AddOptions<CrocOptions>().Bind(configuration);
        if (configure is not null)
        {
            builder.Configure(options => configure(new CrocOptionsBuilder(options)));
        }

        return AddCore(services, builder);
    }

    private static IServiceCollection AddCore(IServiceCollection services, OptionsBuilder<CrocOptions> builder)
    {
        builder.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CrocOptions>, CrocOptionsValidator>());
        services.TryAddSingleton(provider =>
        {
            var options = provider.GetRequiredService<IOptions<CrocOptions>>();
            CrocOptions value;
            try
            {
                value = options.Value;
            }
            catch (OptionsValidationException ex)
            {
                // Same error, same shape as Croc.New: one CrocException listing every problem.
                throw new CrocException(
                    CrocErrorCode.InvalidOptions,
                    "The Croc options are invalid:" + Environment.NewLine + string.Join(Environment.NewLine, ex.Failures.Select(f => "  - " + f)),
                    ex);
            }

            value.LoggerFactory ??= provider.GetService<ILoggerFactory>();
            if (provider.GetService<TimeProvider>() is { } time && ReferenceEquals(value.TimeProvider, TimeProvider.System))
            {
                value.TimeProvider = time;
            }

            var logger = value.LoggerFactory?.CreateLogger<Croc>() ?? Logging.Abstractions.NullLogger<Croc>.Instance;
            return new Croc(options, logger);
        });
        return services;
    }
}

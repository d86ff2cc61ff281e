using CrocNet.Relay;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Mesh;
using CrocNet.Relay.Net;
using CrocNet.Relay.Redis;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Makes a relay share its channels and limits with other relay nodes through Redis.</summary>
public static class CrocRelayRedisBuilderExtensions
{
    /// <summary>
    /// Keeps the relay's channel states and limits in Redis with default options (see
    /// <see cref="AddRedisChannelStore(ICrocRelayBuilder, string, Action{CrocRelayRedisOptions}?)"/>).
    /// </summary>
    /// <param name="builder">The relay's builder (<c>services.AddCrocRelay()</c>).</param>
    /// <param name="configuration">The Redis configuration string (e.g. <c>localhost:6379</c>). Never logged.</param>
    /// <returns>The same builder.</returns>
    public static ICrocRelayBuilder AddRedisChannelStore(this ICrocRelayBuilder builder, string configuration)
        => AddRedisChannelStore(builder, configuration, null);

    /// <summary>
    /// Keeps the relay's channel states and limits in Redis with default options, through the host's own multiplexer
    /// (see <see cref="AddRedisChannelStore(ICrocRelayBuilder, Func{IServiceProvider, IConnectionMultiplexer}, Action{CrocRelayRedisOptions}?)"/>).
    /// </summary>
    /// <param name="builder">The relay's builder (<c>services.AddCrocRelay()</c>).</param>
    /// <param name="multiplexer">Returns the multiplexer; called once, on first use.</param>
    /// <returns>The same builder.</returns>
    public static ICrocRelayBuilder AddRedisChannelStore(this ICrocRelayBuilder builder, Func<IServiceProvider, IConnectionMultiplexer> multiplexer)
        => AddRedisChannelStore(builder, multiplexer, null);

    /// <summary>
    /// Keeps the relay's channel states and limits in Redis, reached with a connection of its own made from
    /// <paramref name="configuration"/> (StackExchange.Redis syntax, e.g. <c>localhost:6379</c> or
    /// <c>redis.internal:6379,password=…,ssl=true</c>). Every node pointed at the same Redis (and
    /// <see cref="CrocRelayRedisOptions.KeyPrefix"/>) serves the same channels. The relay starts even when Redis is down:
    /// until it answers, the routes say <c>503 unavailable</c> and the health check is unhealthy.
    /// </summary>
    /// <param name="builder">The relay's builder (<c>services.AddCrocRelay()</c>).</param>
    /// <param name="configuration">The Redis configuration string. Never logged.</param>
    /// <param name="configure">Changes the Redis options; <see langword="null"/> keeps the defaults.</param>
    /// <returns>The same builder.</returns>
    public static ICrocRelayBuilder AddRedisChannelStore(this ICrocRelayBuilder builder, string configuration, Action<CrocRelayRedisOptions>? configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(configuration);

        // Parsed now, so a malformed string fails at registration with the library's own message (not at first use).
        _ = ConfigurationOptions.Parse(configuration);
        return AddCore(builder, configure, sp => RedisConnection.FromConfiguration(configuration, Options(sp), Logger(sp)));
    }

    /// <summary>
    /// Keeps the relay's channel states and limits in Redis through the host's own multiplexer (one per process, as
    /// StackExchange.Redis recommends). Its settings are the host's: set <c>AbortOnConnectFail = false</c> and short
    /// timeouts so an unreachable Redis is answered <c>503 unavailable</c> quickly. The relay does not dispose it.
    /// </summary>
    /// <param name="builder">The relay's builder (<c>services.AddCrocRelay()</c>).</param>
    /// <param name="multiplexer">Returns the multiplexer (for example from the host's services); called once, on first use.</param>
    /// <param name="configure">Changes the Redis options; <see langword="null"/> keeps the defaults.</param>
    /// <returns>The same builder.</returns>
    public static ICrocRelayBuilder AddRedisChannelStore(this ICrocRelayBuilder builder, Func<IServiceProvider, IConnectionMultiplexer> multiplexer, Action<CrocRelayRedisOptions>? configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(multiplexer);
        return AddCore(builder, configure, sp => RedisConnection.FromMultiplexer(() => multiplexer(sp), Options(sp), Logger(sp)));
    }

    private static ICrocRelayBuilder AddCore(ICrocRelayBuilder builder, Action<CrocRelayRedisOptions>? configure, Func<IServiceProvider, RedisConnection> connection)
    {
        var services = builder.Services;
        var options = services.AddOptions<CrocRelayRedisOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CrocRelayRedisOptions>, CrocRelayRedisOptionsValidator>());
        services.RemoveAll<RedisConnection>();
        services.AddSingleton(connection);

        // Replace the in-memory defaults that AddCrocRelay registered.
        services.RemoveAll<IChannelStore>();
        services.AddSingleton<RedisChannelStore>();
        services.AddSingleton<IChannelStore>(sp => sp.GetRequiredService<RedisChannelStore>());
        services.RemoveAll<IRelayLimits>();
        services.AddSingleton<IRelayLimits, RedisRelayLimits>();

        // Legs of channels owned by other nodes are forwarded to them over the mesh (with MeshSecret set).
        services.AddRelayMesh<RedisMeshDirectory>(static sp =>
        {
            var o = Options(sp);
            return new MeshSettings
            {
                NodeId = o.NodeId,
                Secret = o.MeshSecret is { } secret ? System.Text.Encoding.UTF8.GetBytes(secret) : null,
                ListenAddress = System.Net.IPAddress.Parse(o.MeshListenAddress),
                Port = o.MeshPort,
                AdvertisedHost = o.MeshAdvertisedHost,
            };
        });
        return builder;
    }

    private static CrocRelayRedisOptions Options(IServiceProvider services) => services.GetRequiredService<IOptions<CrocRelayRedisOptions>>().Value;

    private static ILogger? Logger(IServiceProvider services) => services.GetService<ILoggerFactory>()?.CreateLogger("CrocNet.Relay.Redis");
}

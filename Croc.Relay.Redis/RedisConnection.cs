using System.Net.Sockets;
using CrocNet.Relay.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace CrocNet.Relay.Redis;

/// <summary>
/// The one Redis connection of this node, shared by the store and the limits: made on first use from a configuration
/// string (then owned and disposed here), or taken from the host. Every command goes through <see cref="RunAsync"/>,
/// which turns any Redis failure into <see cref="ChannelStoreUnavailableException"/> (no connection string in it) and
/// logs once per outage.
/// </summary>
internal sealed class RedisConnection : IAsyncDisposable
{
    private readonly Func<CancellationToken, Task<IConnectionMultiplexer>> _connect;
    private readonly bool _owned;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ILogger _logger;
    private IConnectionMultiplexer? _multiplexer;
    private int _failing;

    private RedisConnection(Func<CancellationToken, Task<IConnectionMultiplexer>> connect, bool owned, CrocRelayRedisOptions options, ILogger? logger)
    {
        _connect = connect;
        _owned = owned;
        Options = options;
        _logger = logger ?? NullLogger.Instance;
    }

    public CrocRelayRedisOptions Options { get; }

    /// <summary>A connection of its own from <paramref name="configuration"/>, with bounded timeouts and fail-fast commands.</summary>
    public static RedisConnection FromConfiguration(string configuration, CrocRelayRedisOptions options, ILogger? logger)
    {
        var parsed = ConfigurationOptions.Parse(configuration);
        var timeout = (int)options.CommandTimeout.TotalMilliseconds;

        // Never fail the relay's start on an unreachable Redis: keep reconnecting, and answer 503 meanwhile.
        parsed.AbortOnConnectFail = false;
        parsed.ConnectTimeout = timeout;
        parsed.AsyncTimeout = timeout;
        parsed.SyncTimeout = timeout;

        // Commands issued while disconnected fail at once instead of queuing for a reconnect: a quick 503.
        parsed.BacklogPolicy = BacklogPolicy.FailFast;
        parsed.ReconnectRetryPolicy = new LinearRetry(1000);
        parsed.ClientName ??= "croc-relay-" + options.NodeId;
        return new RedisConnection(async _ => await ConnectionMultiplexer.ConnectAsync(parsed).ConfigureAwait(false), owned: true, options, logger);
    }

    /// <summary>The host's own multiplexer (its settings are the host's; it is not disposed here).</summary>
    public static RedisConnection FromMultiplexer(Func<IConnectionMultiplexer> multiplexer, CrocRelayRedisOptions options, ILogger? logger)
        => new(_ => Task.FromResult(multiplexer()), owned: false, options, logger);

    /// <summary>The multiplexer, connecting on first use.</summary>
    public async Task<IConnectionMultiplexer> GetAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _multiplexer) is { } ready)
        {
            return ready;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return _multiplexer ??= await _connect(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Runs one Redis call; any failure of Redis becomes <see cref="ChannelStoreUnavailableException"/>.</summary>
    public async Task<T> RunAsync<T>(Func<IDatabase, Task<T>> command, CancellationToken cancellationToken)
    {
        try
        {
            var multiplexer = await GetAsync(cancellationToken).ConfigureAwait(false);
            var result = await command(multiplexer.GetDatabase()).WaitAsync(cancellationToken).ConfigureAwait(false);
            if (Interlocked.Exchange(ref _failing, 0) == 1)
            {
                RedisLog.Available(_logger, Options.NodeId);
            }

            return result;
        }
        catch (Exception e) when (e is RedisException or TimeoutException or SocketException or IOException && e is not ChannelStoreUnavailableException)
        {
            if (Interlocked.Exchange(ref _failing, 1) == 0)
            {
                RedisLog.Unavailable(_logger, Options.NodeId, e.GetType().Name);
            }

            throw new ChannelStoreUnavailableException($"Redis did not answer ({e.GetType().Name}).", e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_owned && _multiplexer is { } multiplexer)
        {
            await multiplexer.DisposeAsync().ConfigureAwait(false);
        }

        _gate.Dispose();
    }
}

using CrocNet.Rendezvous;
using CrocNet.Transport;
using Microsoft.Extensions.Logging;
using Polly;

namespace CrocNet.Session;

/// <summary>
/// What every session of one <see cref="Croc"/> shares, fixed at construction: validated options, services,
/// the retry pipeline, the HTTP invoker and the transport. Immutable, so sessions run concurrently.
/// </summary>
internal sealed class CrocRuntime
{
    /// <summary>One connection pool for every instance without a handler of its own, as IHttpClientFactory would share it.</summary>
    private static readonly SocketsHttpHandler SharedHandler = new()
    {
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        ConnectTimeout = TimeSpan.FromSeconds(10),
    };

    public CrocRuntime(CrocOptions options, CrocServices services, ILogger logger)
    {
        Options = options;
        Logger = logger;
        Time = services.TimeProviderOrDefault;
        Transport = services.Transport ?? TcpStapleTransport.Instance;
        Pipeline = RelayResilience.Create(options, Time, logger);
        // The invoker owns nothing (the handler is shared or the caller's), so Croc needs no Dispose.
        Http = new HttpMessageInvoker(services.HttpHandler ?? SharedHandler, disposeHandler: false);
    }

    public CrocOptions Options { get; }

    public ILogger Logger { get; }

    public TimeProvider Time { get; }

    public IStapleTransport Transport { get; }

    public ResiliencePipeline Pipeline { get; }

    public HttpMessageInvoker Http { get; }

    public RelayClient NewRelayClient() => new(Http, Options.Relay!, Pipeline, Time, Logger);

    /// <summary>Opens every lane for a confirmed session.</summary>
    public async Task<Stream[]> ConnectAsync(RelaySession relay, RelayState state, CancellationToken cancellationToken)
    {
        var host = string.IsNullOrWhiteSpace(state.Host) ? relay.BaseAddress.IdnHost : state.Host;
        var target = new StapleTarget(relay.BaseAddress, host, state.Ports);
        var streams = await StapleConnector.ConnectAllAsync(Transport, target, new StapleTicket(relay.Channel, relay.Uuid), Pipeline, Time, cancellationToken).ConfigureAwait(false);
        Diagnostics.Log.Connected(Logger, streams.Length, host, relay.Channel);
        return streams;
    }

    public CrocTimeoutException IdleTimeout(Exception inner) => new(
        $"The transfer made no progress for {Options.IdleTimeout}; the other side or the relay stopped responding.", inner);

    public void LogFailure(string channel, Exception ex, CancellationToken cancellationToken)
    {
        if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested)
        {
            Diagnostics.Log.Cancelled(Logger, channel);
        }
        else
        {
            Diagnostics.Log.Failed(Logger, channel, (ex as CrocException)?.Code ?? CrocErrorCode.Unknown, ex);
        }
    }

    public static async Task DisposeAllAsync(Stream[] streams)
    {
        foreach (var stream in streams)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }
}

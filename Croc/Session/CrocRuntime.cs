using CrocNet.Rendezvous;
using CrocNet.Transfer;
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
        Pipeline = RelayResilience.Create(options, Time, logger);
        // The invoker owns nothing (the handler is shared, the caller's, or this instance's for its lifetime: pooled
        // connections idle out), so Croc needs no Dispose. HTTP requests and WebSocket legs share it.
        var handler = services.HttpHandler
            ?? (services.TrustedRelayCertificate is { } trusted ? RelayCertificateTrust.CreateHandler(trusted) : SharedHandler);
        Http = new HttpMessageInvoker(handler, disposeHandler: false);
        Transport = services.Transport
            ?? new ChoosingStapleTransport(options.Transport, new WebSocketStapleTransport(Http, Time), Time, logger);
    }

    public CrocOptions Options { get; }

    public ILogger Logger { get; }

    public TimeProvider Time { get; }

    public IStapleTransport Transport { get; }

    public ResiliencePipeline Pipeline { get; }

    public HttpMessageInvoker Http { get; }

    public RelayClient NewRelayClient() => new(Http, Options.Relay!, Pipeline, Time, Logger, Options.RelayPassword);

    /// <summary>Where a session's legs go, checked: a relay state that asks for too many lanes, or a forced transport the
    /// relay does not offer, fails here, before any leg is opened (the sessions check the join reply already).</summary>
    public StapleTarget Target(RelaySession relay, RelayState state)
    {
        var target = StapleTarget.From(relay.BaseAddress, state);
        // The forced transport first: "no TCP ports" says more to someone who asked for TCP than "no way at all".
        ChoosingStapleTransport.Check(Options.Transport, target, relay.DisplayAddress);
        target.Validate();
        return target;
    }

    /// <summary>Opens every lane for a confirmed session.</summary>
    public async Task<Stream[]> ConnectAsync(RelaySession relay, RelayState state, CancellationToken cancellationToken)
    {
        var target = Target(relay, state);
        var ticket = new StapleTicket(relay.Channel, relay.Uuid, Options.RelayPassword);
        var streams = await StapleConnector.ConnectAllAsync(Transport, target, ticket, Pipeline, Time, cancellationToken).ConfigureAwait(false);
        var webSockets = streams.Count(s => ReattachedLeg.Unwrap(s, out _) is WebSocketLegStream);
        Diagnostics.Log.Connected(Logger, streams.Length, target.Host, relay.Channel);
        Diagnostics.Log.TransportUsed(Logger, relay.Channel, streams.Length - webSockets, webSockets);
        return streams;
    }

    /// <summary>What re-dials a session's broken lanes, or <see langword="null"/> when reconnecting is off.</summary>
    public ILaneDialer? Dialer(RelaySession relay, RelayState state) => Options.ReconnectAttempts == 0
        ? null
        : new LaneDialer(Transport, Target(relay, state), new StapleTicket(relay.Channel, relay.Uuid, Options.RelayPassword), Options, Time, Logger);

    /// <summary>Logs a lane that came back (no secrets: the channel is public, the lane a number).</summary>
    public Action<int, long> Reconnected(string channel) => (lane, bytes) => Diagnostics.Log.LaneReconnected(Logger, lane + 1, channel, bytes);

    public CrocTimeoutException IdleTimeout(Exception inner) => new(
        $"The transfer made no progress for {Options.IdleTimeout}; the other side or the relay stopped responding.", inner);

    /// <summary>A cancellation the caller did not ask for and no timer caused: a connection was cut underneath.</summary>
    public static CrocTransferException LostUnderneath(Exception inner) => new(
        CrocErrorCode.ConnectionLost, "A data connection was cut underneath the transfer and could not be taken back.", inner);

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

    /// <summary>Closes every leg, together: a WebSocket leg's close waits for the relay's answer.</summary>
    public static Task DisposeAllAsync(Stream[] streams) =>
        Task.WhenAll(streams.Select(stream => stream.DisposeAsync().AsTask()));
}

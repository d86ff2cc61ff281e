using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Authentication;
using CrocNet.Protocol;
using CrocNet.Transfer;
using CrocNet.Transport;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace CrocNet.Session;

/// <summary>
/// Dials a broken lane again through the session's transport: each attempt bounded like a first connect, transient
/// faults (a refused or reset connection, a new leg that breaks before its greeting) retried with exponential backoff
/// and jitter up to <see cref="CrocOptions.ReconnectAttempts"/> dials; the lane bounds the whole by
/// <see cref="CrocOptions.ReconnectTimeout"/>. A relay's refusal (<c>error reconnect_limit</c>, <c>closed</c>, …) is
/// final: it surfaces as the typed <see cref="CrocRelayException"/>.
/// </summary>
internal sealed class LaneDialer : ILaneDialer
{
    private readonly IStapleTransport _transport;
    private readonly StapleTarget _target;
    private readonly StapleTicket _ticket;
    private readonly ResiliencePipeline _pipeline;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public LaneDialer(IStapleTransport transport, StapleTarget target, StapleTicket ticket, CrocOptions options, TimeProvider time, ILogger logger)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ReconnectAttempts, 1);
        _transport = transport;
        _target = target;
        // Every leg this dials replaces one that broke.
        _ticket = ticket with { Again = true };
        _time = time;
        _logger = logger;
        Timeout = options.ReconnectTimeout;
        var channel = ticket.Channel;
        var builder = new ResiliencePipelineBuilder { TimeProvider = time };
        if (options.ReconnectAttempts > 1)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder()
                    .Handle<SocketException>()
                    .Handle<IOException>()
                    .Handle<TimeoutException>()
                    .Handle<WebSocketException>()
                    .Handle<HttpRequestException>(ex => (ex.StatusCode is null || (int)ex.StatusCode >= 500) && ex.InnerException is not AuthenticationException)
                    // A relay that still holds the broken leg says "duplicate" for a moment; the refusals below are final.
                    .Handle<CrocRelayException>(ex => ex.StatusCode >= 500 || (ex.StatusCode is null && ex.RelayCode is { } code && !Final.Contains(code))),
                MaxRetryAttempts = options.ReconnectAttempts - 1,
                Delay = TimeSpan.FromMilliseconds(100),
                MaxDelay = TimeSpan.FromSeconds(5),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                OnRetry = args =>
                {
                    Diagnostics.Log.LaneReconnecting(logger, args.Context.Properties.GetValue(LaneKey, -1) + 1, channel, args.Outcome.Exception?.GetType().Name ?? "fault", args.AttemptNumber + 2);
                    return default;
                },
            });
        }

        _pipeline = builder.Build();
    }

    private static readonly ResiliencePropertyKey<int> LaneKey = new("croc.lane");

    /// <summary>Hello refusals that another dial cannot change: the relay said no for good.</summary>
    private static readonly HashSet<string> Final =
    [
        CrocWire.Errors.ReconnectLimit, CrocWire.Errors.Closed, CrocWire.Errors.NoChannel, CrocWire.Errors.BadUuid,
        CrocWire.Errors.IpLimit, CrocWire.Errors.Unauthorized, CrocWire.Errors.BadRequest,
    ];


    public TimeSpan Timeout { get; }

    public async Task<T> RedialAsync<T>(int lane, Stream previous, Func<Stream, CancellationToken, Task<T>> onLeg, CancellationToken cancellationToken)
    {
        Diagnostics.Log.LaneReconnecting(_logger, lane + 1, _ticket.Channel, "connection lost", 1);
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(LaneKey, lane);
        try
        {
            return await _pipeline.ExecuteAsync(
                async (ctx, state) =>
                {
                    var token = ctx.CancellationToken;
                    Stream stream;
                    using (var attempt = ProtocolTimings.After(ProtocolTimings.Connect, _time, token))
                    {
                        try
                        {
                            // A re-dialed leg is greeted anyway: the relay's "ok again" adds nothing here.
                            stream = Transport.ReattachedLeg.Unwrap(await _transport.ReconnectAsync(_target, state, _ticket, previous, attempt.Token).ConfigureAwait(false), out _);
                        }
                        catch (OperationCanceledException ex) when (attempt.Expired && !token.IsCancellationRequested)
                        {
                            throw new TimeoutException($"Data connection {state + 1} was not accepted again within {ProtocolTimings.Connect}.", ex);
                        }
                    }

                    try
                    {
                        return await onLeg(stream, token).ConfigureAwait(false);
                    }
                    catch
                    {
                        stream.Dispose();
                        throw;
                    }
                },
                context,
                lane).ConfigureAwait(false);
        }
        catch (CrocRelayException ex) when (ex.Code == CrocErrorCode.RelayRefused && ex.RelayCode != CrocWire.Errors.ReconnectLimit)
        {
            // The channel is gone (the other side gave up or finished) or the relay cannot take legs back: the
            // connection is lost, as it was before reconnecting existed. The relay's budget is its own error.
            throw new CrocTransferException(
                CrocErrorCode.ConnectionLost,
                $"Data connection {lane + 1} broke and the relay did not take it back ({ex.RelayCode}).",
                ex);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }
}

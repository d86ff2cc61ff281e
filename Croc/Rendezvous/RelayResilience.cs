using System.Net.Sockets;
using System.Security.Authentication;
using CrocNet.Diagnostics;
using CrocNet.Protocol;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace CrocNet.Rendezvous;

/// <summary>Builds the retry pipeline for relay requests and data connections.</summary>
internal static class RelayResilience
{
    public static ResiliencePipeline Create(CrocOptions options, TimeProvider time, ILogger logger)
    {
        if (options.MaxRetries == 0)
        {
            return ResiliencePipeline.Empty;
        }

        return new ResiliencePipelineBuilder { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                // Only faults that say "try again": never a 4xx, which is the relay saying "no".
                ShouldHandle = new PredicateBuilder()
                    // A certificate that is not trusted stays untrusted however often it is presented.
                    .Handle<HttpRequestException>(ex => (ex.StatusCode is null || (int)ex.StatusCode >= 500) && ex.InnerException is not AuthenticationException)
                    .Handle<SocketException>(IsTransient)
                    // A data connection reset during its hello (before the relay's "ok") is worth another try.
                    .Handle<IOException>(ex => ex.InnerException is not SocketException inner || IsTransient(inner))
                    .Handle<TimeoutException>()
                    .Handle<CrocRelayException>(ex => ex.StatusCode >= 500)
                    // A data connection whose first try broke after the relay took it: until the relay sees that one go,
                    // it says "duplicate"; a moment later it takes the new one.
                    .Handle<CrocRelayException>(ex => ex.StatusCode is null && ex.RelayCode == CrocWire.Errors.Duplicate),
                MaxRetryAttempts = options.MaxRetries,
                Delay = options.RetryBaseDelay,
                MaxDelay = TimeSpan.FromSeconds(10),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                OnRetry = args =>
                {
                    Log.Retrying(logger, args.Outcome.Exception?.GetType().Name ?? "fault", args.AttemptNumber + 1, args.RetryDelay);
                    return default;
                },
            })
            .Build();
    }

    private static bool IsTransient(SocketException ex) => ex.SocketErrorCode is
        SocketError.ConnectionRefused or SocketError.ConnectionReset or SocketError.TimedOut or
        SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.TryAgain or SocketError.ConnectionAborted or
        SocketError.NotConnected;
}

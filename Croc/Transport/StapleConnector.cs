using System.Net.Sockets;
using CrocNet.Protocol;
using Polly;

namespace CrocNet.Transport;

/// <summary>
/// Opens every lane of a channel through a transport, in parallel, each attempt bounded in time and transient
/// faults retried; on any failure every connection already open is closed again.
/// </summary>
internal static class StapleConnector
{
    public static async Task<Stream[]> ConnectAllAsync(
        IStapleTransport transport, StapleTarget target, StapleTicket ticket, ResiliencePipeline pipeline, TimeProvider time, CancellationToken cancellationToken)
    {
        target.Validate();

        var tasks = new Task<Stream>[target.Lanes];
        for (var i = 0; i < tasks.Length; i++)
        {
            var lane = i;
            tasks[i] = pipeline.ExecuteAsync(
                async token =>
                {
                    using var attempt = ProtocolTimings.After(ProtocolTimings.Connect, time, token);
                    try
                    {
                        return await transport.ConnectAsync(target, lane, ticket, attempt.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException ex) when (attempt.Expired && !token.IsCancellationRequested)
                    {
                        throw new TimeoutException($"Data connection {lane + 1} was not accepted within {ProtocolTimings.Connect}.", ex);
                    }
                },
                cancellationToken).AsTask();
        }

        try
        {
            return await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch
        {
            foreach (var task in tasks)
            {
                if (task.IsCompletedSuccessfully)
                {
                    await task.Result.DisposeAsync().ConfigureAwait(false);
                }
            }

            var failure = tasks.Select(t => t.Exception?.InnerException).FirstOrDefault(e => e is not null);
            if (failure is SocketException or IOException or TimeoutException)
            {
                throw new CrocRelayException(
                    CrocErrorCode.RelayUnreachable,
                    $"Could not open the data connections to {target.Host}: {failure.Message}",
                    innerException: failure);
            }

            throw;
        }
    }
}

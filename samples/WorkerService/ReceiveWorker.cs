using System.Threading.Channels;
using CrocNet;
using Microsoft.Extensions.Options;

namespace WorkerService;

/// <summary>Receives every configured or queued code, one after another, with the DI-registered <see cref="Croc"/>.</summary>
internal sealed partial class ReceiveWorker(
    Croc croc,
    IOptions<ReceiverOptions> options,
    Channel<string> queue,
    IHostApplicationLifetime lifetime,
    ILogger<ReceiveWorker> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // The library writes into an existing folder; make sure the configured one is there.
        if (croc.Options.OutputDirectory is { Length: > 0 } output)
        {
            Directory.CreateDirectory(output);
        }

        var configured = new List<string>(options.Value.Codes);
        if (!string.IsNullOrWhiteSpace(options.Value.Code))
        {
            configured.Insert(0, options.Value.Code);
        }

        foreach (var code in configured)
        {
            await ReceiveOneAsync(code, stoppingToken);
        }

        if (options.Value.StopWhenDone)
        {
            lifetime.StopApplication();
            return;
        }

        // Anything else in the app can enqueue codes: queue.Writer.TryWrite(code).
        await foreach (var code in queue.Reader.ReadAllAsync(stoppingToken))
        {
            await ReceiveOneAsync(code, stoppingToken);
        }
    }

    private async Task ReceiveOneAsync(string code, CancellationToken stoppingToken)
    {
        try
        {
            var result = await croc.ReceiveAsync(code, cancellationToken: stoppingToken);
            LogReceived(result.Channel, result.Files.Count, result.TotalBytes, result.Duration);
        }
        catch (CrocException ex)
        {
            // The code is a secret: log what failed, never the code itself.
            LogFailed(ex.Code, ex.Message);
        }
        catch (IOException ex)
        {
            LogFailed(CrocErrorCode.Unknown, ex.Message);
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Received {Files} file(s), {Bytes} bytes on channel {Channel} in {Duration}")]
    private partial void LogReceived(string channel, int files, long bytes, TimeSpan duration);

    [LoggerMessage(EventId = 2, Level = LogLevel.Error, Message = "A transfer failed ({ErrorCode}): {Reason}")]
    private partial void LogFailed(CrocErrorCode errorCode, string reason);
}

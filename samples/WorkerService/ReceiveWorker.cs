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
    private int _failures;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Say where codes are looked up: a wrong relay is the usual reason a code "does not work".
        LogRelay(croc.Options.Relay);
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
            // A run that was asked to receive and did not must not look like a success to whoever started it.
            if (_failures > 0)
            {
                Environment.ExitCode = 1;
            }

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
            _failures++;
            LogFailed(ex.Code, ex.Message);
        }
        catch (IOException ex)
        {
            _failures++;
            LogFailed(CrocErrorCode.Unknown, ex.Message);
        }
    }

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Receiving through the relay {Relay} (set Croc__Relay, or Croc:Relay in appsettings.json, to change it)")]
    private partial void LogRelay(Uri? relay);

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Received {Files} file(s), {Bytes} bytes on channel {Channel} in {Duration}")]
    private partial void LogReceived(string channel, int files, long bytes, TimeSpan duration);

    [LoggerMessage(EventId = 2, Level = LogLevel.Error, Message = "A transfer failed ({ErrorCode}): {Reason}")]
    private partial void LogFailed(CrocErrorCode errorCode, string reason);
}

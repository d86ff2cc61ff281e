namespace WorkerService;

/// <summary>What the worker receives.</summary>
internal sealed class ReceiverOptions
{
    /// <summary>One code to receive at start-up (e.g. from the environment: <c>Receiver__Code=...</c>).</summary>
    public string? Code { get; set; }

    /// <summary>More codes to receive at start-up, in order.</summary>
    public IList<string> Codes { get; } = [];

    /// <summary>Stop the host once the configured codes are done instead of waiting for queued ones.</summary>
    public bool StopWhenDone { get; set; } = true;
}

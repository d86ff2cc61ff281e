namespace CrocNet;

/// <summary>
/// A send in progress. The <see cref="Code"/> is known as soon as the relay has the channel, before the
/// recipient arrives, so a host can show it; <see cref="Completion"/> ends with the verified result.
/// Disposing an unfinished operation cancels it and closes the channel.
/// </summary>
public sealed class CrocSendOperation : IAsyncDisposable
{
    private readonly CancellationTokenSource _cancellation;

    internal CrocSendOperation(string code, string channel, Task<TransferResult> completion, CancellationTokenSource cancellation)
    {
        Code = code;
        Channel = channel;
        Completion = completion;
        _cancellation = cancellation;
    }

    /// <summary>The code the recipient needs (<c>&lt;channel&gt;-&lt;secret&gt;</c>). It is a secret: show it, never log it.</summary>
    public string Code { get; }

    /// <summary>The relay channel (public).</summary>
    public string Channel { get; }

    /// <summary>Completes when the recipient has verified every file; faults with a <see cref="CrocException"/> otherwise.</summary>
    public Task<TransferResult> Completion { get; }

    /// <summary>Cancels the send if it is still running.</summary>
    public async Task CancelAsync()
    {
        try
        {
            await _cancellation.CancelAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            // Disposed: the send was already cancelled or over.
        }
    }

    /// <summary>Cancels an unfinished send, waits for it to wind down, and releases resources.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!Completion.IsCompleted)
        {
            await _cancellation.CancelAsync().ConfigureAwait(false);
        }

        try
        {
            await Completion.ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Disposal must not throw: whoever wants the outcome awaits Completion.
        catch (Exception)
        {
        }
#pragma warning restore CA1031

        _cancellation.Dispose();
    }
}

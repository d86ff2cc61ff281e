using CrocNet.Crypto;

namespace CrocNet.Transfer;

/// <summary>
/// What one side's data plane works with: its frame writers and readers (one per stapled connection and
/// direction it uses), progress, and the idle watchdog that fails a transfer which stops moving.
/// </summary>
internal sealed class TransferContext : IDisposable
{
    private readonly CancellationTokenSource _idle;
    private readonly TimeSpan _idleTimeout;
    private int _idleStarted;

    public TransferContext(FrameWriter[] writers, FrameReader[] readers, ProgressTracker progress, TimeSpan idleTimeout, TimeProvider time)
    {
        Writers = writers;
        Readers = readers;
        Progress = progress;
        Time = time;
        _idleTimeout = idleTimeout;
        _idle = new CancellationTokenSource(Timeout.InfiniteTimeSpan, time);
    }

    public FrameWriter[] Writers { get; }

    public FrameReader[] Readers { get; }

    public ProgressTracker Progress { get; }

    public TimeProvider Time { get; }

    /// <summary>The key of resume claims (<see cref="ResumeHandshake.DeriveKey"/>), derived from the session key.</summary>
    public byte[] ResumeKey { get; init; } = [];

    /// <summary>How long a recipient may take to accept or decline an offer.</summary>
    public TimeSpan DecisionTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Cancelled when the transfer has made no progress for the idle timeout.</summary>
    public CancellationToken IdleToken => _idle.Token;

    public bool TimedOut => _idle.IsCancellationRequested;

    /// <summary>Arms the watchdog; before this (a person deciding whether to accept) nothing times out here.</summary>
    public void StartIdleTimer()
    {
        Interlocked.Exchange(ref _idleStarted, 1);
        Touch();
    }

    /// <summary>Stops the watchdog while we wait on a person (an offer being read), not on the network.</summary>
    public void PauseIdleTimer()
    {
        Interlocked.Exchange(ref _idleStarted, 0);
        try
        {
            _idle.CancelAfter(Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Records progress: the watchdog starts counting again.</summary>
    public void Touch()
    {
        if (Volatile.Read(ref _idleStarted) == 1)
        {
            try
            {
                _idle.CancelAfter(_idleTimeout);
            }
            catch (ObjectDisposedException)
            {
                // The transfer is over.
            }
        }
    }

    public async ValueTask<Frame> ReadAsync(FrameReader reader, CancellationToken cancellationToken)
    {
        var frame = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        Touch();
        return frame;
    }

    public void Dispose()
    {
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(ResumeKey);
        _idle.Dispose();
        foreach (var writer in Writers)
        {
            writer.Dispose();
        }

        foreach (var reader in Readers)
        {
            reader.Dispose();
        }
    }
}

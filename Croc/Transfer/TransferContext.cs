using CrocNet.Crypto;

namespace CrocNet.Transfer;

/// <summary>
/// What one side's data plane works with: its lanes (one reliable frame stream each way per stapled connection),
/// progress, and the idle watchdog that fails a transfer which stops moving.
/// </summary>
internal sealed class TransferContext : IDisposable
{
    private readonly CancellationTokenSource _idle;
    private readonly TimeSpan _idleTimeout;
    private int _idleStarted;

    public TransferContext(ReliableLane[] lanes, ProgressTracker progress, TimeSpan idleTimeout, TimeProvider time)
    {
        Lanes = lanes;
        Progress = progress;
        Time = time;
        _idleTimeout = idleTimeout;
        _idle = new CancellationTokenSource(Timeout.InfiniteTimeSpan, time);
    }

    /// <summary>Lane <c>i</c> is stapled connection <c>i</c>; lane 0 carries the control frames.</summary>
    public ReliableLane[] Lanes { get; }

    /// <summary>The legs the lanes dialed after breaks (the session closes them).</summary>
    public IReadOnlyList<Stream> DialedStreams => [.. Lanes.SelectMany(l => l.DialedStreams)];

    /// <summary>How many times a broken leg was replaced, over every lane.</summary>
    public int Reconnects => Lanes.Sum(l => l.Reconnects);

    /// <summary>Payload bytes sent again on replaced legs, over every lane.</summary>
    public long BytesResent => Lanes.Sum(l => l.BytesResent);

    public ProgressTracker Progress { get; }

    public TimeProvider Time { get; }

    /// <summary>The key of resume claims (<see cref="ResumeHandshake.DeriveKey"/>), derived from the session key.</summary>
    public byte[] ResumeKey { get; init; } = [];

    /// <summary>How long a recipient may take to accept or decline an offer.</summary>
    public TimeSpan DecisionTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Cancelled when the transfer has made no progress for the idle timeout.</summary>
    public CancellationToken IdleToken => _idle.Token;

    /// <summary>How long the transfer may go without progress.</summary>
    public TimeSpan IdleTimeout => _idleTimeout;

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

    public async ValueTask<Frame> ReadAsync(ReliableLane reader, CancellationToken cancellationToken)
    {
        var frame = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        Touch();
        return frame;
    }

    public void Dispose()
    {
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(ResumeKey);
        _idle.Dispose();
        foreach (var lane in Lanes)
        {
            lane.Dispose();
        }
    }
}

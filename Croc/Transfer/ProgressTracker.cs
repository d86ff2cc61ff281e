namespace CrocNet.Transfer;

/// <summary>Counts payload bytes from many connections and reports at most every 100 ms, plus every stage change.</summary>
internal sealed class ProgressTracker
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    private readonly IProgress<TransferProgress>? _progress;
    private readonly IProgress<TransferProgress>? _optionsProgress;
    private readonly TimeProvider _time;
    private long _bytes;
    private long _resumed;
    private int _files;
    private long _lastReport;
    private int _stage;

    public ProgressTracker(IProgress<TransferProgress>? progress, IProgress<TransferProgress>? optionsProgress, TimeProvider time)
    {
        _progress = progress;
        _optionsProgress = optionsProgress;
        _time = time;
    }

    public long TotalBytes { get; set; } = -1;

    public int TotalFiles { get; set; }

    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>The stage set last.</summary>
    public TransferStage Stage => (TransferStage)Volatile.Read(ref _stage);

    public void SetStage(TransferStage stage)
    {
        Volatile.Write(ref _stage, (int)stage);
        Report();
    }

    public void AddBytes(long count)
    {
        Interlocked.Add(ref _bytes, count);
        var now = _time.GetTimestamp();
        var last = Interlocked.Read(ref _lastReport);
        if (_time.GetElapsedTime(last, now) >= Interval && Interlocked.CompareExchange(ref _lastReport, now, last) == last)
        {
            Report();
        }
    }

    /// <summary>Bytes already at the recipient from an earlier transfer, which this one does not move.</summary>
    public long ResumedBytes => Interlocked.Read(ref _resumed);

    public void AddResumed(long count) => Interlocked.Add(ref _resumed, count);

    public void FileCompleted() => Interlocked.Increment(ref _files);

    public void Report()
    {
        if (_progress is null && _optionsProgress is null)
        {
            return;
        }

        var report = new TransferProgress((TransferStage)Volatile.Read(ref _stage), Bytes, TotalBytes, Volatile.Read(ref _files), TotalFiles) { ResumedBytes = ResumedBytes };
        _progress?.Report(report);
        _optionsProgress?.Report(report);
    }
}

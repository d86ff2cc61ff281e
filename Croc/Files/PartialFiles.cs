using Microsoft.Win32.SafeHandles;

namespace CrocNet.Files;

/// <summary>How a receive into a folder treats partial files kept by earlier receives.</summary>
/// <param name="Resume">Whether kept chunks are offered to the sender instead of being fetched again.</param>
/// <param name="Discard">Whether kept partials of the offered files are deleted before anything is written.</param>
/// <param name="MaxAge">Leftovers whose last write is older than this are removed; <see cref="Timeout.InfiniteTimeSpan"/> keeps them.</param>
/// <param name="Time">The clock for the journal's batching and the age of leftovers.</param>
internal sealed record PartialSettings(bool Resume, bool Discard, TimeSpan MaxAge, TimeProvider Time)
{
    public static PartialSettings Default { get; } = new(true, false, TimeSpan.FromDays(7), TimeProvider.System);
}

/// <summary>
/// One resumable file's partial and its journal (<see cref="ResumeJournal"/>). Chunks are journaled in batches:
/// once 64 MiB or one second of written chunks are pending, the partial is flushed to disk and only then are their
/// records appended, so the journal never names a chunk whose bytes might still be lost with the page cache.
/// </summary>
internal sealed class PartialFile
{
    /// <summary>Pending bytes that trigger a flush and a journal append.</summary>
    public const long BatchBytes = 64L * 1024 * 1024;

    /// <summary>Pending time that triggers a flush and a journal append.</summary>
    public static readonly TimeSpan BatchInterval = TimeSpan.FromSeconds(1);

    private readonly byte[] _header;
    private readonly CrocHashAlgorithm _algorithm;
    private readonly TimeProvider _time;
    private readonly Action<SafeFileHandle> _flush;
    private readonly Lock _gate = new();
    private readonly Lock _appendGate = new();
    private List<(long Chunk, byte[] Digest)> _pending = [];
    private long _pendingBytes;
    private long _lastFlush;
    private long _journaled;

    public PartialFile(string directory, string relativePath, long size, long? mtime, int chunkSize, CrocHashAlgorithm algorithm, TimeProvider time, Action<SafeFileHandle>? flush = null)
    {
        var identity = PartialNames.Identity(relativePath, size, mtime);
        var stem = PartialNames.Stem(identity);
        PartialPath = Path.Join(directory, stem + PartialNames.PartialExtension);
        JournalPath = Path.Join(directory, stem + PartialNames.JournalExtension);
        Size = size;
        ChunkSize = chunkSize;
        _algorithm = algorithm;
        _time = time;
        _flush = flush ?? RandomAccess.FlushToDisk;
        _header = ResumeJournal.Header(identity, size, chunkSize, algorithm);
        _lastFlush = time.GetTimestamp();
    }

    /// <summary>Whether a file of this size is resumed chunk by chunk: one of at most one chunk is simply sent again.</summary>
    public static bool Resumable(ManifestEntry entry, int chunkSize) => !entry.Dir && entry.Size > chunkSize;

    public string PartialPath { get; }

    public string JournalPath { get; }

    public long Size { get; }

    public int ChunkSize { get; }

    /// <summary>Records in the journal (appended by this instance or kept from before).</summary>
    public long Journaled => Interlocked.Read(ref _journaled);

    private long ChunkCount => FileDigest.ChunkCount(Size, ChunkSize);

    private int ChunkLength(long chunk) => (int)Math.Min(ChunkSize, Size - (chunk * ChunkSize));

    /// <summary>
    /// Finds what an earlier receive kept of this file and checks it again against the disk: every chunk its journal
    /// names is read and hashed, and only those whose bytes still match are returned (at most <paramref name="budget"/>).
    /// Anything that does not belong to this file (another identity, size, chunk size or algorithm, a damaged journal)
    /// is deleted, so the transfer starts afresh. With <paramref name="discard"/>, whatever is kept is deleted.
    /// </summary>
    public SortedDictionary<long, byte[]> Recover(bool discard, long budget)
    {
        var kept = new SortedDictionary<long, byte[]>();
        if (discard || budget <= 0)
        {
            Delete();
            return kept;
        }

        SortedDictionary<long, byte[]> named;
        try
        {
            var length = new FileInfo(JournalPath) is { Exists: true, LinkTarget: null } info ? info.Length : -1;
            // A journal larger than twice a record per chunk is not one we wrote.
            var limit = ResumeJournal.HeaderSize + (2 * (ChunkCount + 16) * ResumeJournal.RecordSize(_algorithm));
            if (length < 0 || length > limit || new FileInfo(PartialPath) is not { Exists: true, LinkTarget: null }
                || !ResumeJournal.TryRead(File.ReadAllBytes(JournalPath), _header, ChunkCount, _algorithm, out named))
            {
                Delete();
                return kept;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Delete();
            return kept;
        }

        try
        {
            using var handle = File.OpenHandle(PartialPath, FileMode.Open, FileAccess.Read, FileShare.Read);
            var buffer = new byte[ChunkSize];
            foreach (var (chunk, digest) in named)
            {
                if (kept.Count >= budget)
                {
                    break;
                }

                var data = buffer.AsSpan(0, ChunkLength(chunk));
                if (ReadFully(handle, data, chunk * ChunkSize) && FileDigest.Hash(_algorithm, data).AsSpan().SequenceEqual(digest))
                {
                    kept[chunk] = digest;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            kept.Clear();
        }

        if (kept.Count == 0)
        {
            Delete();
            return kept;
        }

        if (kept.Count != named.Count)
        {
            // Some chunks changed on disk (or lie beyond the budget): the journal names only what is trusted now.
            Rewrite(kept);
        }
        else
        {
            Interlocked.Exchange(ref _journaled, kept.Count);
        }

        return kept;
    }

    /// <summary>
    /// Notes that <paramref name="chunk"/>'s bytes were written through <paramref name="handle"/> (still open); once a
    /// batch is due, flushes the file to disk and then appends the batch's records.
    /// </summary>
    public void Written(SafeFileHandle handle, long chunk, byte[] digest, int length)
    {
        List<(long Chunk, byte[] Digest)>? due = null;
        lock (_gate)
        {
            _pending.Add((chunk, digest));
            _pendingBytes += length;
            var now = _time.GetTimestamp();
            if (_pendingBytes >= BatchBytes || _time.GetElapsedTime(_lastFlush, now) >= BatchInterval)
            {
                due = _pending;
                _pending = [];
                _pendingBytes = 0;
                _lastFlush = now;
            }
        }

        if (due is not null)
        {
            // Every write in the batch returned before it was taken: this flush covers them all.
            _flush(handle);
            Append(due);
        }
    }

    /// <summary>Journals whatever is pending (after a failure): flushes the partial, opening it again if it was closed.</summary>
    public void FlushPending()
    {
        List<(long Chunk, byte[] Digest)> due;
        lock (_gate)
        {
            due = _pending;
            _pending = [];
            _pendingBytes = 0;
        }

        if (due.Count == 0)
        {
            return;
        }

        using (var handle = File.OpenHandle(PartialPath, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            _flush(handle);
        }

        Append(due);
    }

    /// <summary>Removes the partial and its journal.</summary>
    public void Delete()
    {
        TryDelete(PartialPath);
        TryDelete(JournalPath);
        Interlocked.Exchange(ref _journaled, 0);
    }

    /// <summary>Removes the journal alone (the partial was renamed into place).</summary>
    public void DeleteJournal() => TryDelete(JournalPath);

    private void Append(List<(long Chunk, byte[] Digest)> records)
    {
        var recordSize = ResumeJournal.RecordSize(_algorithm);
        var bytes = new byte[records.Count * recordSize];
        for (var i = 0; i < records.Count; i++)
        {
            ResumeJournal.WriteRecord(_header, records[i].Chunk, records[i].Digest, bytes.AsSpan(i * recordSize, recordSize));
        }

        lock (_appendGate)
        {
            using var journal = new FileStream(JournalPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            var whole = ResumeJournal.WholeLength(journal.Length, _algorithm);
            if (whole == 0)
            {
                journal.SetLength(0);
                journal.Write(_header);
            }
            else if (whole != journal.Length)
            {
                // A torn last record (a crash while appending): cut it so the new records stay aligned.
                journal.SetLength(whole);
            }

            journal.Seek(0, SeekOrigin.End);
            journal.Write(bytes);
        }

        Interlocked.Add(ref _journaled, records.Count);
    }

    private void Rewrite(SortedDictionary<long, byte[]> kept)
    {
        lock (_appendGate)
        {
            TryDelete(JournalPath);
            Interlocked.Exchange(ref _journaled, 0);
        }

        Append([.. kept.Select(k => (k.Key, k.Value))]);
    }

    private static bool ReadFully(SafeFileHandle handle, Span<byte> destination, long offset)
    {
        var read = 0;
        while (read < destination.Length)
        {
            var n = RandomAccess.Read(handle, destination[read..], offset + read);
            if (n == 0)
            {
                return false;
            }

            read += n;
        }

        return true;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>Removes leftovers: temporary files of this library's own naming, older than an age, in the given folders.</summary>
internal static class PartialCleanup
{
    /// <summary>Deletes <c>.croc-*.partial</c> and <c>.croc-*.journal</c> files of our format last written before <paramref name="maxAge"/> ago; returns how many.</summary>
    public static int RemoveOld(IEnumerable<string> folders, TimeSpan maxAge, TimeProvider time)
    {
        if (maxAge == Timeout.InfiniteTimeSpan)
        {
            return 0;
        }

        var cutoff = time.GetUtcNow().UtcDateTime - maxAge;
        var removed = 0;
        foreach (var folder in folders)
        {
            IEnumerable<string> names;
            try
            {
                names = Directory.EnumerateFiles(folder, PartialNames.Prefix + "*", new EnumerationOptions { AttributesToSkip = 0, RecurseSubdirectories = false, IgnoreInaccessible = true });
                foreach (var path in names)
                {
                    if (!PartialNames.IsOurs(Path.GetFileName(path.AsSpan())))
                    {
                        continue;
                    }

                    var info = new FileInfo(path);
                    if (info.LinkTarget is null && info.LastWriteTimeUtc < cutoff)
                    {
                        info.Delete();
                        removed++;
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // A folder we cannot list or a file we cannot remove: leftovers are a nuisance, not a failure.
            }
        }

        return removed;
    }
}

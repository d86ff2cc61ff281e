using CrocNet.Files;
using Microsoft.Win32.SafeHandles;

namespace CrocNet.Transfer;

/// <summary>Where received chunks go. Chunks arrive from several connections at once and out of order.</summary>
internal interface IReceiveSink
{
    /// <summary>Accepts one authenticated chunk; throws on anything the manifest does not allow.</summary>
    ValueTask WriteAsync(int entry, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>Records one line of the sender's trailer (which may come in several pieces).</summary>
    void AddTrailerLine(TrailerFile line);

    /// <summary>Checks every file against the sender's trailer and, only if all match, makes them visible.</summary>
    ValueTask<IReadOnlyList<TransferredFile>> CompleteAsync(CancellationToken cancellationToken);

    /// <summary>Removes everything partial after a failure.</summary>
    void Abort();
}

/// <summary>
/// Bookkeeping shared by the sinks: which chunks of which file arrived, their hashes, and the sender's trailer.
/// Per entry it keeps a few numbers and two 32-byte hashes; a file's chunk digests live only while it is
/// incomplete (a finished file keeps its final hash alone), so a million small files cost tens of megabytes.
/// </summary>
internal abstract class ReceiveSinkBase : IReceiveSink
{
    private const int HashSize = 32;

    private readonly CrocHashAlgorithm _algorithm;
    private readonly FileDigest?[] _digests;
    private readonly long[] _received;
    private readonly byte[] _hashes;
    private readonly long[] _trailerSizes;
    private readonly byte[] _trailerHashes;
    private readonly byte[] _emptyHash = new byte[HashSize];
    private long _shortChunk = -1;

    protected ReceiveSinkBase(Manifest manifest)
    {
        Manifest = manifest;
        var count = manifest.Entries.Count;
        _algorithm = FileDigest.ParseWireName(manifest.Hash);
        _digests = new FileDigest?[count];
        _received = new long[count];
        _hashes = new byte[count * HashSize];
        _trailerSizes = new long[count];
        Array.Fill(_trailerSizes, -1);
        _trailerHashes = new byte[count * HashSize];
        Convert.FromHexString(new FileDigest(_algorithm).Finish(0, manifest.ChunkSize), _emptyHash, out _, out _);
    }

    protected Manifest Manifest { get; }

    /// <summary>Bytes accepted so far for an entry.</summary>
    protected long Received(int entry) => Volatile.Read(ref _received[entry]);

    public abstract ValueTask WriteAsync(int entry, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    public abstract ValueTask<IReadOnlyList<TransferredFile>> CompleteAsync(CancellationToken cancellationToken);

    public abstract void Abort();

    public void AddTrailerLine(TrailerFile line)
    {
        if (line.Index < 0 || line.Index >= _trailerSizes.Length || Manifest.Entries[line.Index].Dir || line.Size < 0
            || line.Hash is not { Length: HashSize * 2 })
        {
            throw new CrocProtocolException("The sender's trailer has a line for no file of the manifest, or a malformed one.");
        }

        if (_trailerSizes[line.Index] >= 0)
        {
            throw new CrocProtocolException("The sender's trailer lists a file twice.");
        }

        if (Convert.FromHexString(line.Hash, _trailerHashes.AsSpan(line.Index * HashSize, HashSize), out _, out _) != System.Buffers.OperationStatus.Done)
        {
            throw new CrocProtocolException("The sender's trailer has a malformed hash.");
        }

        _trailerSizes[line.Index] = line.Size;
    }

    /// <summary>
    /// Counts the chunks of <paramref name="entry"/> kept from an earlier transfer (verified against the disk) as
    /// received, with their digests; the sender may still send any of them once more, which replaces it. Returns
    /// the bytes they hold.
    /// </summary>
    protected long Preload(int entry, SortedDictionary<long, byte[]> kept)
    {
        var digest = new FileDigest(_algorithm);
        var size = Manifest.Entries[entry].Size;
        long bytes = 0;
        foreach (var (chunk, chunkDigest) in kept)
        {
            digest.AddKept(chunk, chunkDigest);
            bytes += Math.Min(Manifest.ChunkSize, size - (chunk * Manifest.ChunkSize));
        }

        Volatile.Write(ref _digests[entry], digest);
        Volatile.Write(ref _received[entry], bytes);
        return bytes;
    }

    /// <summary>Validates a chunk's place and hashes it; returns its digest and whether it replaced a kept chunk.</summary>
    protected (byte[] Digest, bool Replaced) Accept(int entry, long offset, ReadOnlySpan<byte> data)
    {
        var chunkSize = Manifest.ChunkSize;
        if (entry >= _digests.Length || Manifest.Entries[entry].Dir)
        {
            throw new CrocProtocolException("The sender sent data for an entry that is not a file of the manifest.");
        }

        var size = Manifest.Entries[entry].Size;
        var chunk = offset / chunkSize;
        var fits = offset % chunkSize == 0 && data.Length <= chunkSize && offset < FileReceiver.MaxFileSize
            && (size < 0 || (offset < size && data.Length == Math.Min(chunkSize, size - offset)));
        if (!fits)
        {
            throw new CrocProtocolException("The sender sent a chunk at a place the manifest does not allow.");
        }

        // A file's digest comes with its first chunk and goes once every byte is in. No digest means either: a file
        // whose every byte arrived (this chunk is one too many), or one whose first chunks are arriving right now on
        // several lanes at once, which race to put the digest in place (all of them then use the one that won).
        var digest = Volatile.Read(ref _digests[entry]);
        if (digest is null)
        {
            if (size > 0 && Received(entry) >= size)
            {
                throw new CrocProtocolException("The sender sent the same chunk twice.");
            }

            var mine = new FileDigest(_algorithm);
            digest = Interlocked.CompareExchange(ref _digests[entry], mine, null) ?? mine;
            if (ReferenceEquals(digest, mine) && size > 0 && Received(entry) >= size)
            {
                // Completed (and its digest dropped) between the two reads: this chunk is still one too many.
                Volatile.Write(ref _digests[entry], null);
                throw new CrocProtocolException("The sender sent the same chunk twice.");
            }
        }

        if (size < 0 && data.Length < chunkSize && Interlocked.CompareExchange(ref _shortChunk, chunk, -1) != -1)
        {
            throw new CrocProtocolException("The sender sent more than one partial chunk for a streamed file.");
        }

        var added = digest.Add(chunk, data, out var chunkDigest);
        if (added == ChunkAddition.Duplicate)
        {
            throw new CrocProtocolException("The sender sent the same chunk twice.");
        }

        if (added == ChunkAddition.Replaced)
        {
            // A kept chunk the sender's bytes did not match: already counted.
            return (chunkDigest, true);
        }

        if (Interlocked.Add(ref _received[entry], data.Length) == size && !digest.Resumed)
        {
            // Every chunk is in (each was checked for place, length and uniqueness): keep the hash, drop the digests.
            // (A resumed file keeps its digests to the end: any kept chunk may still be replaced.)
            Convert.FromHexString(digest.Finish(size, chunkSize), _hashes.AsSpan(entry * HashSize, HashSize), out _, out _);
            Volatile.Write(ref _digests[entry], null);
        }

        return (chunkDigest, false);
    }

    /// <summary>Checks one file against its trailer line; returns its verified size and hash.</summary>
    protected (long Size, string Hash) Verify(int entry)
    {
        var path = ReceivePathValidator.Describe(Manifest.Entries[entry].Path);
        var size = _trailerSizes[entry];
        if (size < 0)
        {
            throw new CrocProtocolException($"The sender's trailer does not cover {path}.");
        }

        var declared = Manifest.Entries[entry].Size;
        var received = Received(entry);
        ReadOnlySpan<byte> hash;
        if (declared >= 0)
        {
            if (size != declared || received != declared)
            {
                throw new CrocTransferException(CrocErrorCode.HashMismatch, $"{path} did not arrive complete. Nothing from this transfer was kept.");
            }

            if (declared > 0 && Volatile.Read(ref _digests[entry]) is { Resumed: true } resumed)
            {
                if (!resumed.HasExactly(FileDigest.ChunkCount(declared, Manifest.ChunkSize)))
                {
                    throw new CrocTransferException(CrocErrorCode.HashMismatch, $"{path} did not arrive complete. Nothing from this transfer was kept.");
                }

                var whole = new byte[HashSize];
                Convert.FromHexString(resumed.Finish(declared, Manifest.ChunkSize), whole, out _, out _);
                hash = whole;
            }
            else
            {
                hash = declared == 0 ? _emptyHash : _hashes.AsSpan(entry * HashSize, HashSize);
            }
        }
        else
        {
            // The one streamed file: its length is known only now.
            var chunks = FileDigest.ChunkCount(size, Manifest.ChunkSize);
            var digest = _digests[entry] ?? new FileDigest(_algorithm);
            var shortChunk = Interlocked.Read(ref _shortChunk);
            if (received != size || !digest.HasExactly(chunks) || (shortChunk >= 0 && shortChunk != chunks - 1))
            {
                throw new CrocTransferException(CrocErrorCode.HashMismatch, $"{path} did not arrive complete. Nothing from this transfer was kept.");
            }

            var streamed = new byte[HashSize];
            Convert.FromHexString(digest.Finish(size, Manifest.ChunkSize), streamed, out _, out _);
            hash = streamed;
        }

        if (!hash.SequenceEqual(_trailerHashes.AsSpan(entry * HashSize, HashSize)))
        {
            throw new CrocTransferException(CrocErrorCode.HashMismatch, $"{path} does not match the sender's hash. Nothing from this transfer was kept.");
        }

        return (size, Convert.ToHexStringLower(hash));
    }
}

/// <summary>
/// Writes into the output folder. Each file is written under a temporary hidden name beside its target and
/// only renamed into place after every file of the transfer has been verified, so an interrupted or
/// tampered transfer never leaves a file that looks complete. Per file it keeps a byte of flags; a file
/// being written holds a handle and its lock until its last chunk.
/// </summary>
internal sealed class DiskSink : ReceiveSinkBase
{
    private const byte Created = 1;
    private const byte Moved = 2;
    private const byte Replaced = 4;

    private readonly ReceivePlan _plan;
    private readonly CrocOverwritePolicy _policy;
    private readonly Target?[] _targets;
    private readonly byte[] _flags;
    private readonly string _tempPrefix = $".croc-{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8))}-";
    private readonly List<string> _createdDirectories = [];
    private readonly Lock _createGate = new();
    private readonly PartialSettings _settings;

    // Resumable files (more than one chunk, when resuming is on) and what earlier receives kept of them.
    private readonly PartialFile?[] _partials;
    private readonly Dictionary<int, long> _keptBytes = [];
    private readonly HashSet<int> _suspect = [];
    private long _resumedBytes;

    public DiskSink(Manifest manifest, ReceivePlan plan, CrocOverwritePolicy policy, PartialSettings? settings = null)
        : base(manifest)
    {
        _plan = plan;
        _policy = policy;
        _settings = settings ?? PartialSettings.Default;
        _targets = new Target?[manifest.Entries.Count];
        _flags = new byte[manifest.Entries.Count];
        _partials = new PartialFile?[manifest.Entries.Count];
        if (_settings.Resume && manifest.Text is null)
        {
            var algorithm = FileDigest.ParseWireName(manifest.Hash);
            for (var i = 0; i < manifest.Entries.Count; i++)
            {
                var entry = manifest.Entries[i];
                if (PartialFile.Resumable(entry, manifest.ChunkSize))
                {
                    _partials[i] = new PartialFile(
                        Path.GetDirectoryName(plan.FullPath(i))!, entry.Path, entry.Size, entry.Mtime, manifest.ChunkSize, algorithm, _settings.Time, FlushHook);
                }
            }
        }
    }

    /// <summary>Replaces the flush to disk before journal records are appended (tests record the order of operations).</summary>
    internal Action<SafeFileHandle>? FlushHook { get; init; }

    /// <summary>Where resumed bytes are counted (kept chunks the sender then replaced are taken off again).</summary>
    internal ProgressTracker? Progress { get; init; }

    /// <summary>Bytes kept from earlier receives and used, in all.</summary>
    public long ResumedBytes => Interlocked.Read(ref _resumedBytes);

    /// <summary>
    /// After the offer is accepted: removes leftovers older than the maximum age from the folders this transfer writes
    /// into, then finds what earlier receives kept of each resumable file, checks it again against the disk and counts
    /// what still matches as received (or deletes it all when asked to discard). Returns the kept chunks per entry.
    /// </summary>
    public IReadOnlyList<(int Entry, SortedDictionary<long, byte[]> Chunks)> PreparePartials()
    {
        PartialCleanup.RemoveOld(Folders(), _settings.MaxAge, _settings.Time);
        var kept = new List<(int, SortedDictionary<long, byte[]>)>();
        var budget = ResumeHandshake.MaxClaimedChunks;
        try
        {
            for (var i = 0; i < _partials.Length; i++)
            {
                if (_partials[i] is not { } partial)
                {
                    continue;
                }

                var chunks = partial.Recover(_settings.Discard, budget);
                if (chunks.Count == 0)
                {
                    continue;
                }

                budget -= chunks.Count;
                var bytes = Preload(i, chunks);
                _keptBytes[i] = bytes;
                _resumedBytes += bytes;
                Progress?.AddResumed(bytes);
                _flags[i] |= Created;
                _targets[i] = new Target(partial.PartialPath, Manifest.Entries[i].Size, bytes);
                kept.Add((i, chunks));
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw WriteFailed(ex);
        }

        return kept;
    }

    private long KeptBytes(int entry)
    {
        lock (_keptBytes)
        {
            return _keptBytes.GetValueOrDefault(entry);
        }
    }

    /// <summary>The folders that hold this transfer's files: the output folder and every existing parent of a file.</summary>
    private IEnumerable<string> Folders()
    {
        var relative = new HashSet<string>(StringComparer.Ordinal) { "" };
        foreach (var entry in Manifest.Entries)
        {
            if (!entry.Dir)
            {
                var slash = entry.Path.LastIndexOf('/');
                relative.Add(slash < 0 ? "" : entry.Path[..slash]);
            }
        }

        foreach (var folder in relative)
        {
            var full = folder.Length == 0 ? _plan.Root : Path.Join(_plan.Root, folder.Replace('/', Path.DirectorySeparatorChar));
            if (Directory.Exists(full))
            {
                yield return full;
            }
        }
    }

    /// <summary>Creates the folders the transfer needs (after the offer was accepted).</summary>
    public void CreateDirectories()
    {
        try
        {
            foreach (var directory in _plan.MissingDirectories)
            {
                if (!Directory.Exists(directory))
                {
                    Directory.CreateDirectory(directory);
                    _createdDirectories.Add(directory);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw WriteFailed(ex);
        }
    }

    /// <summary>The temporary name of a file: beside its target, unique to this transfer and entry.</summary>
    private string TempPath(int entry, string fullPath) => _partials[entry]?.PartialPath ?? Path.Join(Path.GetDirectoryName(fullPath.AsSpan()), _tempPrefix + entry.ToString(System.Globalization.CultureInfo.InvariantCulture) + ".partial");

    private Target TargetOf(int entry)
    {
        if (Volatile.Read(ref _targets[entry]) is { } target)
        {
            return target;
        }

        var created = new Target(TempPath(entry, _plan.FullPath(entry)), Manifest.Entries[entry].Size);
        return Interlocked.CompareExchange(ref _targets[entry], created, null) ?? created;
    }

    public override ValueTask WriteAsync(int entry, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var (digest, replaced) = Accept(entry, offset, data.Span);
        var partial = _partials[entry];
        if (replaced)
        {
            // A kept chunk the sender did not match (rare): written through a handle of its own, so the file's
            // handle closes when its last missing chunk is written, whatever replacements are still on their way.
            try
            {
                using var own = File.OpenHandle(partial!.PartialPath, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
                RandomAccess.Write(own, data.Span, offset);
                partial.Written(own, offset / Manifest.ChunkSize, digest, data.Length);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw WriteFailed(ex);
            }

            lock (_keptBytes)
            {
                _keptBytes[entry] -= data.Length;
            }

            Interlocked.Add(ref _resumedBytes, -data.Length);
            Progress?.AddResumed(-data.Length);
            return ValueTask.CompletedTask;
        }

        var target = TargetOf(entry);
        try
        {
            SafeFileHandle handle;
            if (target.IsOpen)
            {
                handle = target.Open();
            }
            else
            {
                // Creating files is serialised: in one folder the kernel does it one at a time anyway, and
                // connections racing for the directory lock spend more CPU than they save (measured on ext4).
                lock (_createGate)
                {
                    handle = target.Open();
                    _flags[entry] |= Created;
                }
            }

            // One writer per file at a time: the kernel serialises buffered writes to an inode anyway, and
            // waiting here sleeps where waiting in the kernel spins (measured: ~11% of CPU in rwsem spinning).
            lock (target.WriteGate)
            {
                RandomAccess.Write(handle, data.Span, offset);
            }

            // Before the write is counted, so the handle is still open if the journal's batch is due now.
            partial?.Written(handle, offset / Manifest.ChunkSize, digest, data.Length);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw WriteFailed(ex);
        }
        catch (ArgumentOutOfRangeException ex)
        {
            // The file system's own size limit (EFBIG): the manifest allows offsets up to 1 PiB, the disk may not.
            throw new CrocProtocolException("The sender sent a chunk at an offset the output folder's file system cannot hold.", ex);
        }

        if (target.Written(data.Length))
        {
            // Complete and closed: nothing of it stays in memory but its flags and hash.
            Volatile.Write(ref _targets[entry], null);
        }

        return ValueTask.CompletedTask;
    }

    private static CrocTransferException WriteFailed(Exception ex) => new(
        CrocErrorCode.WriteFailed, $"Could not write to the output folder: {ex.Message} Nothing from this transfer was kept.", ex);

    public override ValueTask<IReadOnlyList<TransferredFile>> CompleteAsync(CancellationToken cancellationToken)
    {
        try
        {
            return CompleteCore();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw WriteFailed(ex);
        }
    }

    private ValueTask<IReadOnlyList<TransferredFile>> CompleteCore()
    {
        var entries = Manifest.Entries;
        var files = new List<TransferredFile>();
        var indexes = new List<int>();
        for (var i = 0; i < entries.Count; i++)
        {
            if (entries[i].Dir)
            {
                continue;
            }

            long size;
            string hash;
            try
            {
                (size, hash) = Verify(i);
            }
            catch (CrocTransferException ex) when (ex.Code == CrocErrorCode.HashMismatch)
            {
                // What is on disk does not add up to the sender's file: do not keep it for a later resume.
                _suspect.Add(i);
                throw;
            }

            var full = _plan.FullPath(i);
            Volatile.Read(ref _targets[i])?.Close();
            if ((_flags[i] & Created) == 0)
            {
                // Empty files never saw a chunk.
                File.OpenHandle(TempPath(i, full), FileMode.CreateNew, FileAccess.Write).Dispose();
                _flags[i] |= Created;
            }

            files.Add(new TransferredFile(entries[i].Path, size, hash, full) { ResumedBytes = KeptBytes(i) });
            indexes.Add(i);
        }

        // Everything verified: now, and only now, make the files visible under their names.
        try
        {
            for (var k = 0; k < files.Count; k++)
            {
                var (file, index) = (files[k], indexes[k]);
                var info = new FileInfo(file.FullPath!);
                if (info.LinkTarget is not null)
                {
                    throw new CrocTransferException(CrocErrorCode.UnsafePath, $"A symbolic link appeared at {ReceivePathValidator.Describe(file.RelativePath)} during the transfer; it was not written through. Nothing from this transfer was kept.");
                }

                if (info.Exists)
                {
                    _flags[index] |= Replaced;
                }

                File.Move(TempPath(index, file.FullPath!), file.FullPath!, overwrite: _policy == CrocOverwritePolicy.Overwrite);
                _flags[index] |= Moved;
                if (entries[index].Mtime is { } mtime)
                {
                    TrySetTime(file.FullPath!, mtime);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CrocException)
        {
            // All or nothing: take back the files already renamed into place. One that replaced an existing
            // file (overwrite policy) cannot be taken back; say which.
            var kept = RollBack();
            if (kept.Count == 0)
            {
                throw;
            }

            throw new CrocTransferException(
                CrocErrorCode.WriteFailed,
                $"Could not put every file in place ({ex.Message}). These replaced existing files and stay: {string.Join(", ", kept.Select(ReceivePathValidator.Describe))}.",
                ex);
        }

        // In place: the journals have served their purpose.
        foreach (var partial in _partials)
        {
            partial?.DeleteJournal();
        }

        return ValueTask.FromResult<IReadOnlyList<TransferredFile>>(files);
    }

    private List<string> RollBack()
    {
        var kept = new List<string>();
        for (var i = 0; i < _flags.Length; i++)
        {
            if ((_flags[i] & Moved) != 0)
            {
                if ((_flags[i] & Replaced) != 0)
                {
                    kept.Add(Manifest.Entries[i].Path);
                }
                else
                {
                    TryDelete(_plan.FullPath(i));
                    _flags[i] &= unchecked((byte)~Moved);
                }
            }
        }

        return kept;
    }

    public override void Abort()
    {
        for (var i = 0; i < _flags.Length; i++)
        {
            Volatile.Read(ref _targets[i])?.Close();
            if ((_flags[i] & (Created | Moved)) != Created)
            {
                continue;
            }

            if (_partials[i] is { } partial && !_suspect.Contains(i))
            {
                Keep(partial);
            }
            else
            {
                _partials[i]?.DeleteJournal();
                TryDelete(TempPath(i, _plan.FullPath(i)));
            }
        }

        for (var i = _createdDirectories.Count - 1; i >= 0; i--)
        {
            try
            {
                Directory.Delete(_createdDirectories[i], recursive: false);
            }
            catch (IOException)
            {
                // Not empty (someone else put something there) or already gone: leave it.
            }
        }
    }

    /// <summary>Keeps a resumable partial after a failure: journals what is pending; one with nothing journaled goes.</summary>
    private static void Keep(PartialFile partial)
    {
        try
        {
            if (File.Exists(partial.PartialPath))
            {
                partial.FlushPending();
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The journal then names what it named before the failure: still a subset of what is on disk.
        }

        if (partial.Journaled == 0 || !File.Exists(partial.PartialPath))
        {
            partial.Delete();
        }
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

    private static void TrySetTime(string path, long unixMilliseconds)
    {
        try
        {
            File.SetLastWriteTimeUtc(path, DateTimeOffset.FromUnixTimeMilliseconds(unixMilliseconds).UtcDateTime);
        }
        catch (Exception ex) when (ex is IOException or ArgumentOutOfRangeException or UnauthorizedAccessException)
        {
            // A time we cannot set is not worth failing a verified transfer.
        }
    }

    /// <summary>A file being written: its handle, opened at the first chunk and closed after the last.</summary>
    private sealed class Target(string tempPath, long size, long kept = 0)
    {
        private readonly Lock _gate = new();
        private SafeFileHandle? _handle;
        private bool _closed;
        private readonly bool _resumed = kept > 0;
        private long _written = kept;

        public Lock WriteGate { get; } = new();

        public bool IsOpen => Volatile.Read(ref _handle) is not null;

        public SafeFileHandle Open()
        {
            lock (_gate)
            {
                if (_closed)
                {
                    throw new CrocProtocolException("The sender sent data for a file that was already complete.");
                }

                // CreateNew: never open something that already exists under our temporary name.
                // No preallocation: the declared size is the peer's word, and reserving it would let a few
                // bytes of traffic claim the whole disk until the transfer fails.
                // On Unix FileShare is only an advisory flock() that nobody else honours; skipping it saves two
                // system calls per file, which is what ten thousand small files are made of.
                // A partial kept from an earlier receive (checked again before this one accepted) is opened as it is,
                // shared: a kept chunk the sender replaces is written through a handle of its own.
                if (_handle is null)
                {
                    _handle = File.OpenHandle(tempPath, _resumed ? FileMode.Open : FileMode.CreateNew, FileAccess.Write, OperatingSystem.IsWindows() && !_resumed ? FileShare.None : FileShare.ReadWrite);
                    if (_resumed && RandomAccess.GetLength(_handle) > size)
                    {
                        // A kept partial that grew beyond the file (by someone else's hand) must not carry bytes past
                        // the end under the final name: the digest covers the chunks, not what lies after them.
                        RandomAccess.SetLength(_handle, size);
                    }
                }

                return _handle;
            }
        }

        /// <summary>Counts a finished write; true (and the handle closed) once the file is whole.</summary>
        public bool Written(int length)
        {
            // Counted after the write, so the handle closes only when no write is still using it.
            if (Interlocked.Add(ref _written, length) == size)
            {
                // Complete: release the handle now so ten thousand small files never hold ten thousand handles.
                Close();
                return true;
            }

            return false;
        }

        public void Close()
        {
            lock (_gate)
            {
                _closed = true;
                _handle?.Dispose();
                _handle = null;
            }
        }
    }
}

/// <summary>
/// Writes a single file into a caller's stream, in order: chunks that arrive early wait (holding their
/// connection) until the chunks before them are written, which bounds memory to one frame per connection.
/// </summary>
internal sealed class StreamSink : ReceiveSinkBase
{
    private readonly Stream _destination;
    private readonly Lock _gate = new();
    private readonly Dictionary<long, TaskCompletionSource> _waiting = [];
    private long _next;

    public StreamSink(Manifest manifest, Stream destination)
        : base(manifest) => _destination = destination;

    public override async ValueTask WriteAsync(int entry, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        _ = Accept(entry, offset, data.Span);
        var chunk = offset / Manifest.ChunkSize;
        Task? turn = null;
        lock (_gate)
        {
            if (chunk != _next)
            {
                var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiting[chunk] = waiter;
                turn = waiter.Task;
            }
        }

        if (turn is not null)
        {
            await turn.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        await _destination.WriteAsync(data, cancellationToken).ConfigureAwait(false);
        lock (_gate)
        {
            _next++;
            if (_waiting.Remove(_next, out var waiter))
            {
                waiter.SetResult();
            }
        }
    }

    public override async ValueTask<IReadOnlyList<TransferredFile>> CompleteAsync(CancellationToken cancellationToken)
    {
        var files = new List<TransferredFile>();
        for (var i = 0; i < Manifest.Entries.Count; i++)
        {
            if (!Manifest.Entries[i].Dir)
            {
                var (size, hash) = Verify(i);
                files.Add(new TransferredFile(Manifest.Entries[i].Path, size, hash, null));
            }
        }

        await _destination.FlushAsync(cancellationToken).ConfigureAwait(false);
        return files;
    }

    public override void Abort()
    {
        lock (_gate)
        {
            foreach (var waiter in _waiting.Values)
            {
                waiter.TrySetCanceled();
            }

            _waiting.Clear();
        }
    }
}

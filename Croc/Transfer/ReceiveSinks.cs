using CrocNet.Files;
using Microsoft.Win32.SafeHandles;

namespace CrocNet.Transfer;

/// <summary>Where received chunks go. Chunks arrive from several connections at once and out of order.</summary>
internal interface IReceiveSink
{
    /// <summary>Accepts one authenticated chunk; throws on anything the manifest does not allow.</summary>
    ValueTask WriteAsync(int entry, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>Checks every file against the sender's trailer and, only if all match, makes them visible.</summary>
    ValueTask<IReadOnlyList<TransferredFile>> CompleteAsync(TrailerMessage trailer, CancellationToken cancellationToken);

    /// <summary>Removes everything partial after a failure.</summary>
    void Abort();
}

/// <summary>Bookkeeping shared by the sinks: which chunks of which file arrived, and their hashes.</summary>
internal abstract class ReceiveSinkBase : IReceiveSink
{
    private readonly long[] _received;
    private readonly long[] _shortChunk;

    protected ReceiveSinkBase(Manifest manifest)
    {
        Manifest = manifest;
        Digests = new FileDigest?[manifest.Entries.Count];
        _received = new long[manifest.Entries.Count];
        _shortChunk = new long[manifest.Entries.Count];
        Array.Fill(_shortChunk, -1);
        var algorithm = FileDigest.ParseWireName(manifest.Hash);
        for (var i = 0; i < manifest.Entries.Count; i++)
        {
            if (!manifest.Entries[i].Dir)
            {
                Digests[i] = new FileDigest(algorithm);
            }
        }
    }

    protected Manifest Manifest { get; }

    protected FileDigest?[] Digests { get; }

    public abstract ValueTask WriteAsync(int entry, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    public abstract ValueTask<IReadOnlyList<TransferredFile>> CompleteAsync(TrailerMessage trailer, CancellationToken cancellationToken);

    public abstract void Abort();

    /// <summary>Validates a chunk's place and hashes it.</summary>
    protected void Accept(int entry, long offset, ReadOnlySpan<byte> data)
    {
        var chunkSize = Manifest.ChunkSize;
        if (entry >= Digests.Length || Digests[entry] is not { } digest)
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

        if (size < 0 && data.Length < chunkSize && Interlocked.CompareExchange(ref _shortChunk[entry], chunk, -1) != -1)
        {
            throw new CrocProtocolException("The sender sent more than one partial chunk for a streamed file.");
        }

        if (!digest.AddChunk(chunk, data))
        {
            throw new CrocProtocolException("The sender sent the same chunk twice.");
        }

        Interlocked.Add(ref _received[entry], data.Length);
    }

    /// <summary>Checks one file against its trailer line; returns its verified hash.</summary>
    protected string Verify(int entry, TrailerFile? line)
    {
        var path = ReceivePathValidator.Describe(Manifest.Entries[entry].Path);
        if (line is null)
        {
            throw new CrocProtocolException($"The sender's trailer does not cover {path}.");
        }

        var declared = Manifest.Entries[entry].Size;
        var chunks = FileDigest.ChunkCount(line.Size, Manifest.ChunkSize);
        var shortChunk = Volatile.Read(ref _shortChunk[entry]);
        if (line.Size < 0 || (declared >= 0 && line.Size != declared) || Interlocked.Read(ref _received[entry]) != line.Size
            || !Digests[entry]!.HasExactly(chunks) || (shortChunk >= 0 && shortChunk != chunks - 1))
        {
            throw new CrocTransferException(CrocErrorCode.HashMismatch, $"{path} did not arrive complete. Nothing from this transfer was kept.");
        }

        var hash = Digests[entry]!.Finish(line.Size, Manifest.ChunkSize);
        if (!string.Equals(hash, line.Hash, StringComparison.Ordinal))
        {
            throw new CrocTransferException(CrocErrorCode.HashMismatch, $"{path} does not match the sender's hash. Nothing from this transfer was kept.");
        }

        return hash;
    }

    protected static Dictionary<int, TrailerFile> Index(TrailerMessage trailer)
    {
        var lines = new Dictionary<int, TrailerFile>();
        foreach (var line in trailer.Files)
        {
            if (!lines.TryAdd(line.Index, line))
            {
                throw new CrocProtocolException("The sender's trailer lists a file twice.");
            }
        }

        return lines;
    }
}

/// <summary>
/// Writes into the output folder. Each file is written under a temporary hidden name beside its target and
/// only renamed into place after every file of the transfer has been verified, so an interrupted or
/// tampered transfer never leaves a file that looks complete.
/// </summary>
internal sealed class DiskSink : ReceiveSinkBase
{
    private readonly ReceivePlan _plan;
    private readonly CrocOverwritePolicy _policy;
    private readonly Target?[] _targets;
    private readonly List<string> _createdDirectories = [];
    private readonly Lock _createGate = new();

    public DiskSink(Manifest manifest, ReceivePlan plan, CrocOverwritePolicy policy)
        : base(manifest)
    {
        _plan = plan;
        _policy = policy;
        _targets = new Target?[manifest.Entries.Count];
        foreach (var entry in plan.Entries)
        {
            if (!entry.IsDirectory)
            {
                var folder = Path.GetDirectoryName(entry.FullPath)!;
                _targets[entry.Index] = new Target(entry, Path.Join(folder, $".croc-{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8))}.partial"));
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

    public override ValueTask WriteAsync(int entry, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        Accept(entry, offset, data.Span);
        var target = _targets[entry]!;
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
                }
            }


            // One writer per file at a time: the kernel serialises buffered writes to an inode anyway, and
            // waiting here sleeps where waiting in the kernel spins (measured: ~11% of CPU in rwsem spinning).
            lock (target.WriteGate)
            {
                RandomAccess.Write(handle, data.Span, offset);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw WriteFailed(ex);
        }

        target.Written(data.Length);
        return ValueTask.CompletedTask;
    }

    private static CrocTransferException WriteFailed(Exception ex) => new(
        CrocErrorCode.WriteFailed, $"Could not write to the output folder: {ex.Message} Nothing from this transfer was kept.", ex);

    public override ValueTask<IReadOnlyList<TransferredFile>> CompleteAsync(TrailerMessage trailer, CancellationToken cancellationToken)
    {
        try
        {
            return CompleteCore(trailer);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw WriteFailed(ex);
        }
    }

    private ValueTask<IReadOnlyList<TransferredFile>> CompleteCore(TrailerMessage trailer)
    {
        var lines = Index(trailer);
        var files = new List<TransferredFile>();
        foreach (var target in _targets)
        {
            if (target is null)
            {
                continue;
            }

            var hash = Verify(target.Entry.Index, lines.GetValueOrDefault(target.Entry.Index));
            target.Close();
            if (!File.Exists(target.TempPath))
            {
                // Empty files never saw a chunk.
                File.OpenHandle(target.TempPath, FileMode.CreateNew, FileAccess.Write).Dispose();
            }

            files.Add(new TransferredFile(target.Entry.RelativePath, lines[target.Entry.Index].Size, hash, target.Entry.FullPath));
        }

        // Everything verified: now, and only now, make the files visible under their names.
        try
        {
            foreach (var target in _targets)
            {
                if (target is null)
                {
                    continue;
                }

                var info = new FileInfo(target.Entry.FullPath);
                if (info.LinkTarget is not null)
                {
                    throw new CrocTransferException(CrocErrorCode.UnsafePath, $"A symbolic link appeared at {ReceivePathValidator.Describe(target.Entry.RelativePath)} during the transfer; it was not written through. Nothing from this transfer was kept.");
                }

                target.Replaced = info.Exists;
                File.Move(target.TempPath, target.Entry.FullPath, overwrite: _policy == CrocOverwritePolicy.Overwrite);
                target.Moved = true;
                if (Manifest.Entries[target.Entry.Index].Mtime is { } mtime)
                {
                    TrySetTime(target.Entry.FullPath, mtime);
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

        return ValueTask.FromResult<IReadOnlyList<TransferredFile>>(files);
    }

    private List<string> RollBack()
    {
        var kept = new List<string>();
        foreach (var target in _targets)
        {
            if (target is { Moved: true })
            {
                if (target.Replaced)
                {
                    kept.Add(target.Entry.RelativePath);
                }
                else
                {
                    TryDelete(target.Entry.FullPath);
                    target.Moved = false;
                }
            }
        }

        return kept;
    }

    public override void Abort()
    {
        foreach (var target in _targets)
        {
            if (target is { Moved: false })
            {
                target.Close();
                TryDelete(target.TempPath);
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

    private sealed class Target(PlannedEntry entry, string tempPath)
    {
        private readonly Lock _gate = new();
        private SafeFileHandle? _handle;
        private bool _closed;

        public PlannedEntry Entry { get; } = entry;

        public Lock WriteGate { get; } = new();

        public bool IsOpen => Volatile.Read(ref _handle) is not null;

        public string TempPath { get; } = tempPath;

        public bool Moved { get; set; }

        public bool Replaced { get; set; }

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
                return _handle ??= File.OpenHandle(TempPath, FileMode.CreateNew, FileAccess.Write, OperatingSystem.IsWindows() ? FileShare.None : FileShare.ReadWrite);
            }
        }

        private long _written;

        public void Written(int length)
        {
            // Counted after the write, so the handle closes only when no write is still using it.
            if (Interlocked.Add(ref _written, length) == Entry.Size)
            {
                // Complete: release the handle now so ten thousand small files never hold ten thousand handles.
                Close();
            }
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
        Accept(entry, offset, data.Span);
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

    public override async ValueTask<IReadOnlyList<TransferredFile>> CompleteAsync(TrailerMessage trailer, CancellationToken cancellationToken)
    {
        var lines = Index(trailer);
        var files = new List<TransferredFile>();
        for (var i = 0; i < Manifest.Entries.Count; i++)
        {
            if (!Manifest.Entries[i].Dir)
            {
                var hash = Verify(i, lines.GetValueOrDefault(i));
                files.Add(new TransferredFile(Manifest.Entries[i].Path, lines[i].Size, hash, null));
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

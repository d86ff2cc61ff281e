using CrocNet.Files;

namespace CrocNet;

/// <summary>
/// What to send: files and folders from disk, one stream with a name, or a short text.
/// Folders are sent recursively, empty ones included; symbolic links inside them are skipped.
/// </summary>
public sealed class SendContent
{
    private readonly IReadOnlyList<string>? _paths;
    private readonly Stream? _stream;
    private readonly string? _name;
    private readonly long? _length;
    private readonly string? _text;

    private SendContent(IReadOnlyList<string>? paths, Stream? stream, string? name, long? length, string? text)
    {
        _paths = paths;
        _stream = stream;
        _name = name;
        _length = length;
        _text = text;
    }

    /// <summary>Sends files and folders. Each appears under its own name at the root of the transfer.</summary>
    public static SendContent FromPaths(IEnumerable<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var list = paths.ToList();
        if (list.Count == 0)
        {
            throw new ArgumentException("Give at least one file or folder to send.", nameof(paths));
        }

        foreach (var path in list)
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(path, nameof(paths));
        }

        return new SendContent(list, null, null, null, null);
    }

    /// <summary>Sends one file or folder.</summary>
    public static SendContent FromPath(string path) => FromPaths([path]);

    /// <summary>
    /// Sends the contents of <paramref name="stream"/> as a file named <paramref name="name"/>, read once,
    /// front to back, without a temporary copy. When <paramref name="length"/> is omitted and the stream
    /// cannot seek, the length is learned at the end (the recipient sees it as unknown until then).
    /// </summary>
    public static SendContent FromStream(Stream stream, string name, long? length = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (!stream.CanRead)
        {
            throw new ArgumentException("The stream must be readable.", nameof(stream));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(length ?? 0, nameof(length));
        return new SendContent(null, stream, name, length, null);
    }

    /// <summary>Sends a short text (up to 1 MiB as UTF-8); the recipient gets it in <see cref="TransferResult.Text"/>.</summary>
    public static SendContent FromText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (System.Text.Encoding.UTF8.GetByteCount(text) > MaxTextBytes)
        {
            throw new ArgumentException("The text is longer than 1 MiB; send it as a file instead.", nameof(text));
        }

        return new SendContent(null, null, null, null, text);
    }

    internal const int MaxTextBytes = 1024 * 1024;

    /// <summary>Reads the file system (or the stream's length) and produces the manifest and its sources.</summary>
    /// <exception cref="CrocTransferException">A path names nothing (<see cref="CrocErrorCode.SourceNotFound"/>), or a folder
    /// or file cannot be read (<see cref="CrocErrorCode.SourceChanged"/>).</exception>
    internal SendPlan Build(int chunkSize, CrocHashAlgorithm hash, TimeProvider time)
    {
        try
        {
            return BuildCore(chunkSize, hash, time);
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            throw new CrocTransferException(CrocErrorCode.SourceChanged, $"Could not read what is to be sent: {ex.Message}", ex);
        }
    }

    private SendPlan BuildCore(int chunkSize, CrocHashAlgorithm hash, TimeProvider time)
    {
        var manifest = new Manifest { ChunkSize = chunkSize, Text = _text, Hash = FileDigest.WireName(hash) };
        var sources = new List<SendSource>();
        if (_stream is not null)
        {
            var length = _length ?? (_stream.CanSeek ? _stream.Length - _stream.Position : -1);
            Add(manifest, sources, CheckName(_name!), dir: false, length, time.GetUtcNow(), new SendSource(null, _stream));
        }
        else if (_paths is not null)
        {
            var roots = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var path in _paths)
            {
                AddPath(manifest, sources, path, roots);
            }
        }

        return new SendPlan(manifest, sources);
    }

    private static void AddPath(Manifest manifest, List<SendSource> sources, string path, HashSet<string> roots)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        var name = Path.GetFileName(full);
        if (string.IsNullOrEmpty(name))
        {
            throw new ArgumentException($"Cannot send the file-system root '{path}'; pick a folder inside it.", nameof(path));
        }

        if (!roots.Add(name))
        {
            throw new ArgumentException($"Two of the paths to send are both named '{name}'; they would collide at the recipient.", nameof(path));
        }

        var file = new FileInfo(full);
        if (file.Exists)
        {
            Add(manifest, sources, CheckName(name), dir: false, file.Length, file.LastWriteTimeUtc, new SendSource(full, null));
            return;
        }

        var directory = new DirectoryInfo(full);
        if (!directory.Exists)
        {
            throw new CrocTransferException(CrocErrorCode.SourceNotFound, $"There is no file or folder at '{path}' to send.");
        }

        Add(manifest, sources, CheckName(name), dir: true, 0, directory.LastWriteTimeUtc, new SendSource(null, null));
        var options = new EnumerationOptions
        {
            RecurseSubdirectories = true,
            AttributesToSkip = FileAttributes.ReparsePoint, // never follow links: no loops, no surprises
            IgnoreInaccessible = false,
            ReturnSpecialDirectories = false,
        };
        var found = directory.EnumerateFileSystemInfos("*", options)
            .Select(info => (Info: info, Relative: name + "/" + Path.GetRelativePath(full, info.FullName).Replace(Path.DirectorySeparatorChar, '/')))
            .OrderBy(x => x.Relative, StringComparer.Ordinal);
        foreach (var (info, relative) in found)
        {
            CheckName(relative);
            if (info is FileInfo f)
            {
                Add(manifest, sources, relative, dir: false, f.Length, f.LastWriteTimeUtc, new SendSource(f.FullName, null));
            }
            else
            {
                Add(manifest, sources, relative, dir: true, 0, info.LastWriteTimeUtc, new SendSource(null, null));
            }
        }
    }

    private static string CheckName(string relative)
    {
        try
        {
            ReceivePathValidator.Validate(relative);
        }
        catch (CrocTransferException ex)
        {
            throw new CrocTransferException(CrocErrorCode.UnsafePath, "This name cannot be sent safely to every platform. " + ex.Message, ex);
        }

        return relative;
    }

    private static void Add(Manifest manifest, List<SendSource> sources, string path, bool dir, long size, DateTimeOffset mtime, SendSource source)
    {
        manifest.Entries.Add(new ManifestEntry { Path = path, Dir = dir, Size = dir ? 0 : size, Mtime = mtime.ToUnixTimeMilliseconds() });
        sources.Add(source);
    }
}

/// <summary>Where the bytes of one manifest entry come from: a file path, a stream, or nothing (folders).</summary>
internal sealed record SendSource(string? FullPath, Stream? Stream);

/// <summary>A manifest and its sources, index-aligned.</summary>
internal sealed record SendPlan(Manifest Manifest, IReadOnlyList<SendSource> Sources);

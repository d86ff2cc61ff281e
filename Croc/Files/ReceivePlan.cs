namespace CrocNet.Files;

/// <summary>Where one manifest entry will be written.</summary>
internal sealed record PlannedEntry(int Index, string RelativePath, string FullPath, bool IsDirectory, long Size);

/// <summary>
/// Resolves a manifest against the output folder before anything is written: every path confined to
/// the folder, no duplicates, no file/folder clashes, no symbolic link on the way, no existing file
/// replaced unless the policy allows. Any refusal is thrown before the first byte touches the disk.
/// </summary>
internal sealed class ReceivePlan
{
    private ReceivePlan(string root, List<PlannedEntry> entries, List<string> missingDirectories)
    {
        Root = root;
        Entries = entries;
        MissingDirectories = missingDirectories;
    }

    public string Root { get; }

    /// <summary>Aligned with the manifest's entries.</summary>
    public IReadOnlyList<PlannedEntry> Entries { get; }

    /// <summary>Folders that do not exist yet, parents before children (the ones a failed transfer removes again).</summary>
    public IReadOnlyList<string> MissingDirectories { get; }

    public static ReceivePlan Create(string outputDirectory, Manifest manifest, CrocOverwritePolicy policy)
    {
        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outputDirectory));
        var rootPrefix = root + Path.DirectorySeparatorChar;
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var files = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var checkedDirectories = new HashSet<string>(StringComparer.Ordinal);
        var missing = new List<string>();
        var missingSet = new HashSet<string>(StringComparer.Ordinal);
        var entries = new List<PlannedEntry>(manifest.Entries.Count);
        var existing = new List<string>();

        if (File.Exists(root))
        {
            throw new CrocTransferException(CrocErrorCode.FileExists, $"The output folder '{root}' is a file.");
        }

        if (!Directory.Exists(root))
        {
            // Created (with any missing parents) only once the offer is accepted.
            missing.Add(root);
            missingSet.Add(root);
            checkedDirectories.Add(root);
        }

        foreach (var entry in manifest.Entries)
        {
            if (entry.Size < -1 || (entry.Dir && entry.Size > 0))
            {
                throw new CrocProtocolException($"The manifest gives {ReceivePathValidator.Describe(entry.Path)} an impossible size.");
            }

            var segments = ReceivePathValidator.Validate(entry.Path);
            var relative = string.Join('/', segments);
            var full = Path.GetFullPath(Path.Join(root, string.Join(Path.DirectorySeparatorChar, segments)));
            if (!full.StartsWith(rootPrefix, StringComparison.Ordinal))
            {
                throw Unsafe(entry.Path, "it resolves outside the output folder");
            }

            if (!seen.Add(relative))
            {
                throw Unsafe(entry.Path, "it appears twice (names are compared ignoring case)");
            }

            if (!entry.Dir)
            {
                files.Add(relative);
            }

            // Walk the parents: none may be a file of this transfer, a symbolic link, or an existing file.
            var parent = root;
            for (var i = 0; i < segments.Length - 1; i++)
            {
                parent = Path.Join(parent, segments[i]);
                var parentRelative = string.Join('/', segments, 0, i + 1);
                if (files.Contains(parentRelative))
                {
                    throw Unsafe(entry.Path, $"its folder '{parentRelative}' is also sent as a file");
                }

                CheckDirectory(parent, entry.Path, checkedDirectories, missing, missingSet);
            }

            if (entry.Dir)
            {
                CheckDirectory(full, entry.Path, checkedDirectories, missing, missingSet);
            }
            else
            {
                if (!CheckFileTarget(full, entry.Path, policy))
                {
                    existing.Add(entry.Path);
                }
            }

            entries.Add(new PlannedEntry(entries.Count, relative, full, entry.Dir, entry.Size));
        }

        // A file whose path is a prefix of a later entry was caught above only if it came first.
        foreach (var entry in entries)
        {
            var slash = entry.RelativePath.LastIndexOf('/');
            while (slash > 0)
            {
                var prefix = entry.RelativePath[..slash];
                if (files.Contains(prefix))
                {
                    throw Unsafe(entry.RelativePath, $"its folder '{prefix}' is also sent as a file");
                }

                slash = prefix.LastIndexOf('/');
            }
        }

        if (existing.Count > 0)
        {
            // Every clash at once, so one retry (or one decision to overwrite) settles them all.
            const int Named = 10;
            var names = string.Join(", ", existing.Take(Named).Select(ReceivePathValidator.Describe));
            var more = existing.Count > Named ? $" and {existing.Count - Named} more" : string.Empty;
            throw new CrocTransferException(
                CrocErrorCode.FileExists,
                existing.Count == 1
                    ? $"{names} already exists in the output folder. Nothing was written; allow overwriting to replace it."
                    : $"{existing.Count} files already exist in the output folder: {names}{more}. Nothing was written; allow overwriting to replace them.");
        }

        return new ReceivePlan(root, entries, missing);
    }

    private static void CheckDirectory(string path, string entryPath, HashSet<string> checkedDirectories, List<string> missing, HashSet<string> missingSet)
    {
        if (!checkedDirectories.Add(path))
        {
            return;
        }

        var info = new DirectoryInfo(path);
        if (info.LinkTarget is not null)
        {
            throw Unsafe(entryPath, $"'{info.Name}' on its way is a symbolic link, which could lead outside the output folder");
        }

        if (info.Exists)
        {
            return;
        }

        if (File.Exists(path))
        {
            throw new CrocTransferException(
                CrocErrorCode.FileExists,
                $"Cannot create the folder for {ReceivePathValidator.Describe(entryPath)}: a file named '{info.Name}' is in the way. Nothing was written.");
        }

        if (missingSet.Add(path))
        {
            missing.Add(path);
        }
    }

    /// <summary>Throws for a target that can never be written; false for an existing file the policy keeps.</summary>
    private static bool CheckFileTarget(string full, string entryPath, CrocOverwritePolicy policy)
    {
        var info = new FileInfo(full);
        if (info.LinkTarget is not null)
        {
            throw Unsafe(entryPath, "a symbolic link with that name already exists, and links are never written through");
        }

        if (Directory.Exists(full))
        {
            throw new CrocTransferException(
                CrocErrorCode.FileExists,
                $"Cannot write {ReceivePathValidator.Describe(entryPath)}: a folder with that name exists. Nothing was written.");
        }

        return !info.Exists || policy == CrocOverwritePolicy.Overwrite;
    }

    private static CrocTransferException Unsafe(string? path, string reason) => new(
        CrocErrorCode.UnsafePath,
        $"Refused the sender's path {ReceivePathValidator.Describe(path)}: {reason}. Nothing was written.");
}

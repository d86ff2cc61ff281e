namespace CrocNet.Files;

/// <summary>
/// Resolves a manifest against the output folder before anything is written: every path confined to
/// the folder, no duplicates, no file/folder clashes, no symbolic link on the way, no existing file
/// replaced unless the policy allows. Any refusal is thrown before the first byte touches the disk.
/// Costs one look at the disk per name whose folder exists (below a folder that does not exist yet,
/// nothing can be in the way), and keeps nothing per entry: paths are derived again when written.
/// </summary>
internal sealed class ReceivePlan
{
    private readonly Manifest _manifest;
    private readonly ReceivePathTree _tree;
    private readonly List<int> _missing;

    private ReceivePlan(string root, Manifest manifest, ReceivePathTree tree, List<int> missing)
    {
        Root = root;
        _manifest = manifest;
        _tree = tree;
        _missing = missing;
    }

    public string Root { get; }

    /// <summary>Folders that do not exist yet, parents before children (the ones a failed transfer removes again);
    /// derived when asked for, so planning holds one number per missing folder.</summary>
    public IEnumerable<string> MissingDirectories => _missing.Select(n => n == ReceivePathTree.Root ? Root : Resolve(Root, _tree.Nodes[n].RelativePath));

    /// <summary>Where entry <paramref name="index"/> is written.</summary>
    public string FullPath(int index) => Resolve(Root, _manifest.Entries[index].Path);

    /// <summary>Vets every name of <paramref name="manifest"/> (as the recipient does while the manifest arrives), then plans it.</summary>
    public static ReceivePlan Create(string outputDirectory, Manifest manifest, CrocOverwritePolicy policy)
    {
        var tree = new ReceivePathTree();
        for (var i = 0; i < manifest.Entries.Count; i++)
        {
            var entry = manifest.Entries[i];
            if (entry.Size < -1 || (entry.Dir && entry.Size > 0))
            {
                throw new CrocProtocolException($"The manifest gives {ReceivePathValidator.Describe(entry.Path)} an impossible size.");
            }

            ReceivePathValidator.Check(entry.Path);
            tree.Add(i, entry.Path, entry.Dir);
        }

        return Create(outputDirectory, manifest, tree, policy);
    }

    /// <summary>Plans a manifest whose names <paramref name="tree"/> already holds (vetted).</summary>
    public static ReceivePlan Create(string outputDirectory, Manifest manifest, ReceivePathTree tree, CrocOverwritePolicy policy)
    {
        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outputDirectory));
        var missing = new List<int>();
        var existing = new List<string>();
        if (File.Exists(root))
        {
            throw new CrocTransferException(CrocErrorCode.FileExists, $"The output folder '{root}' is a file.");
        }

        var nodes = tree.Nodes;
        // Per node: does it exist on disk? Nodes come parents first, so a parent is always decided already.
        var exists = new System.Collections.BitArray(nodes.Count);
        if (Directory.Exists(root))
        {
            exists[ReceivePathTree.Root] = true;
        }
        else
        {
            // Created (with any missing parents) only once the offer is accepted.
            missing.Add(ReceivePathTree.Root);
        }

        for (var n = 1; n < nodes.Count; n++)
        {
            var node = nodes[n];
            if (!node.IsFolder && PartialNames.LooksLikeOurs(Path.GetFileName(node.RelativePath)))
            {
                // Such a file could take the place of another entry's partial before it is renamed into place.
                throw new CrocTransferException(
                    CrocErrorCode.UnsafePath,
                    $"{ReceivePathValidator.Describe(node.Entry >= 0 ? manifest.Entries[node.Entry].Path : node.RelativePath.ToString())} has a name this library uses for partial files; it cannot be received. Nothing was written.");
            }

            if (!exists[node.Parent])
            {
                // Under a folder this transfer creates: nothing can be in the way.
                if (node.IsFolder)
                {
                    missing.Add(n);
                }

                continue;
            }

            var full = Resolve(root, node.RelativePath);
            var entryPath = node.Entry >= 0 ? manifest.Entries[node.Entry].Path : node.Path;
            if (node.IsFolder)
            {
                exists[n] = CheckDirectory(full, entryPath);
                if (!exists[n])
                {
                    missing.Add(n);
                }
            }
            else if (!CheckFileTarget(full, entryPath, policy))
            {
                existing.Add(entryPath);
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

        return new ReceivePlan(root, manifest, tree, missing);
    }

    /// <summary>A vetted relative path under the root, confined to it (checked again, whatever the vetting said).</summary>
    private static string Resolve(string root, ReadOnlySpan<char> relative)
    {
        var joined = Path.DirectorySeparatorChar == '/' ? Path.Join(root, relative) : Path.Join(root, relative.ToString().Replace('/', Path.DirectorySeparatorChar));
        var full = Path.GetFullPath(joined);
        if (!full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw Unsafe(relative.ToString(), "it resolves outside the output folder");
        }

        return full;
    }

    /// <summary>Whether the folder exists; refuses a link or a file in its place.</summary>
    private static bool CheckDirectory(string path, string entryPath)
    {
        var info = new DirectoryInfo(path);
        if (info.LinkTarget is not null)
        {
            throw Unsafe(entryPath, $"'{info.Name}' on its way is a symbolic link, which could lead outside the output folder");
        }

        if (info.Exists)
        {
            return true;
        }

        if (File.Exists(path))
        {
            throw new CrocTransferException(
                CrocErrorCode.FileExists,
                $"Cannot create the folder for {ReceivePathValidator.Describe(entryPath)}: a file named '{info.Name}' is in the way. Nothing was written.");
        }

        return false;
    }

    /// <summary>Whether the file may be written; a link or a folder in its place is refused at once.</summary>
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

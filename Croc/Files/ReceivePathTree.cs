using System.Text;

namespace CrocNet.Files;

/// <summary>
/// The names of a manifest as a tree of folders, built one entry at a time in time linear in the path's
/// length: every folder on the way is one node, found by (parent, name), so a deep path costs its length,
/// never the sum of its prefixes. Catches duplicates and file/folder clashes whatever the order, comparing
/// names ignoring case and Unicode normalisation (NFC and NFD spellings of <c>café</c> are one name), as
/// the file systems that fold them would.
/// </summary>
internal sealed class ReceivePathTree
{
    /// <summary>The root's node id.</summary>
    public const int Root = 0;

    /// <summary>The most names (entries and the folders their paths imply) a tree holds.</summary>
    public const int MaxNodes = 2_000_000;

    private readonly Dictionary<SegmentKey, int> _children = new(SegmentKeyComparer.Instance);
    private readonly List<Node> _nodes = [new Node(-1, NodeKind.Folder, "", 0, -1)];

    public enum NodeKind : byte
    {
        /// <summary>A folder only implied by a deeper entry.</summary>
        Folder,

        /// <summary>A folder the manifest lists.</summary>
        FolderEntry,

        /// <summary>A file the manifest lists.</summary>
        FileEntry,
    }

    /// <summary>One name: its parent, what it is, and where its spelling ends in the path that introduced it.</summary>
    public readonly record struct Node(int Parent, NodeKind Kind, string Path, int End, int Entry)
    {
        public bool IsFolder => Kind != NodeKind.FileEntry;

        /// <summary>The path of this node relative to the transfer root, '/'-separated.</summary>
        public ReadOnlySpan<char> RelativePath => Path.AsSpan(0, End);
    }

    /// <summary>Every node, parents before children; node 0 is the root.</summary>
    public IReadOnlyList<Node> Nodes => _nodes;

    /// <summary>Adds entry <paramref name="index"/>; <paramref name="path"/> must already have passed <see cref="ReceivePathValidator.Check"/>.</summary>
    public void Add(int index, string path, bool directory)
    {
        // Compared in NFC; the spelling kept (and written) is the sender's own.
        var key = path.IsNormalized(NormalizationForm.FormC) ? path : path.Normalize(NormalizationForm.FormC);
        var node = Root;
        int start = 0, keyStart = 0;
        while (true)
        {
            var end = path.IndexOf('/', start);
            var keyEnd = key.IndexOf('/', keyStart);
            var last = end < 0;
            if (last)
            {
                end = path.Length;
                keyEnd = key.Length;
            }

            if (_nodes[node].Kind == NodeKind.FileEntry)
            {
                throw Unsafe(path, $"its folder '{_nodes[node].RelativePath}' is also sent as a file");
            }

            var segment = new SegmentKey(node, key, keyStart, keyEnd - keyStart);
            if (_children.TryGetValue(segment, out var child))
            {
                var existing = _nodes[child];
                // Shared folders are spelled alike (checked below, segment by segment), so the name starts here in both paths.
                if (!existing.Path.AsSpan(start, existing.End - start).SequenceEqual(path.AsSpan(start, end - start)))
                {
                    throw Unsafe(path, last
                        ? $"it differs from '{existing.RelativePath}' only in case or Unicode normalisation"
                        : $"its folder differs from '{existing.RelativePath}' only in case or Unicode normalisation");
                }

                if (last)
                {
                    if (existing.Kind != NodeKind.Folder)
                    {
                        throw Unsafe(path, "it appears twice (names are compared ignoring case and Unicode normalisation)");
                    }

                    if (!directory)
                    {
                        throw Unsafe(path, "it is sent as a file and is also the folder of another entry");
                    }

                    _nodes[child] = existing with { Kind = NodeKind.FolderEntry, Entry = index };
                    return;
                }
            }
            else
            {
                if (_nodes.Count > MaxNodes)
                {
                    throw new CrocProtocolException($"The sender's manifest implies more than {MaxNodes:N0} files and folders.");
                }

                child = _nodes.Count;
                _nodes.Add(new Node(node, last ? (directory ? NodeKind.FolderEntry : NodeKind.FileEntry) : NodeKind.Folder, path, end, last ? index : -1));
                _children.Add(segment, child);
                if (last)
                {
                    return;
                }
            }

            node = child;
            start = end + 1;
            keyStart = keyEnd + 1;
        }
    }

    private static CrocTransferException Unsafe(string path, string reason) => new(
        CrocErrorCode.UnsafePath,
        $"Refused the sender's path {ReceivePathValidator.Describe(path)}: {ReceivePathValidator.Escape(reason)}. Nothing was written.");

    /// <summary>A name under a parent, as a slice of a (normalised) path: no substring is allocated.</summary>
    private readonly record struct SegmentKey(int Parent, string Source, int Start, int Length)
    {
        public ReadOnlySpan<char> Name => Source.AsSpan(Start, Length);
    }

    private sealed class SegmentKeyComparer : IEqualityComparer<SegmentKey>
    {
        public static readonly SegmentKeyComparer Instance = new();

        public bool Equals(SegmentKey x, SegmentKey y) => x.Parent == y.Parent && x.Name.Equals(y.Name, StringComparison.OrdinalIgnoreCase);

        public int GetHashCode(SegmentKey key) => HashCode.Combine(key.Parent, string.GetHashCode(key.Name, StringComparison.OrdinalIgnoreCase));
    }
}

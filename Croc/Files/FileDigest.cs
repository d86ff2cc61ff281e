using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace CrocNet.Files;

/// <summary>
/// The end-to-end file hash: SHA-256 over a domain label, the length and the digest of every fixed-size
/// chunk in order (XXH3-128 or SHA-256 per chunk, as the sender chose). Chunks hash independently, so
/// every data connection hashes its own chunks in parallel and out of order, and the recipient never
/// has to read a file back.
/// </summary>
internal sealed class FileDigest
{
    private readonly CrocHashAlgorithm _algorithm;

    private readonly Lock _gate = new();

    // Sparse on purpose: memory follows the chunks that actually arrived, never a size a peer merely declared.
    private readonly Dictionary<long, byte[]> _digests = [];
    private long _highest = -1;
    private HashSet<long>? _kept;

    public FileDigest(CrocHashAlgorithm algorithm)
    {
        _algorithm = algorithm;
    }

    /// <summary>How many distinct chunks have been hashed.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _digests.Count;
            }
        }
    }

    public static long ChunkCount(long size, int chunkSize) => size <= 0 ? 0 : ((size - 1) / chunkSize) + 1;

    /// <summary>Hashes chunk <paramref name="index"/>; false if that chunk was already seen.</summary>
    public bool AddChunk(long index, ReadOnlySpan<byte> data) => Add(index, data, out _) != ChunkAddition.Duplicate;

    /// <summary>
    /// Hashes chunk <paramref name="index"/> and hands out its digest. A chunk already seen is a duplicate, unless it
    /// was kept from an earlier transfer (<see cref="AddKept"/>): that one may be replaced once.
    /// </summary>
    public ChunkAddition Add(long index, ReadOnlySpan<byte> data, out byte[] digest)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        digest = Hash(_algorithm, data);
        lock (_gate)
        {
            if (_kept is not null && _kept.Remove(index))
            {
                _digests[index] = digest;
                return ChunkAddition.Replaced;
            }

            if (!_digests.TryAdd(index, digest))
            {
                return ChunkAddition.Duplicate;
            }

            _highest = Math.Max(_highest, index);
            return ChunkAddition.Added;
        }
    }

    /// <summary>Records the digest of a chunk kept on disk from an earlier transfer (already verified against the bytes).</summary>
    public void AddKept(long index, byte[] digest)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        lock (_gate)
        {
            if (_digests.TryAdd(index, digest))
            {
                (_kept ??= []).Add(index);
                _highest = Math.Max(_highest, index);
            }
        }
    }

    /// <summary>Whether any chunk came from an earlier transfer.</summary>
    public bool Resumed => Volatile.Read(ref _kept) is not null;

    /// <summary>The chunk digest of <paramref name="data"/> under <paramref name="algorithm"/>.</summary>
    public static byte[] Hash(CrocHashAlgorithm algorithm, ReadOnlySpan<byte> data)
    {
        var digest = new byte[algorithm == CrocHashAlgorithm.Sha256 ? 32 : 16];
        if (algorithm == CrocHashAlgorithm.Sha256)
        {
            SHA256.HashData(data, digest);
        }
        else
        {
            System.IO.Hashing.XxHash128.Hash(data, digest);
        }

        return digest;
    }

    /// <summary>Whether exactly chunks 0 … n-1 are present.</summary>
    public bool HasExactly(long chunks)
    {
        lock (_gate)
        {
            // Distinct indexes, as many as expected, none beyond the last: then every one of 0 … n-1 is there.
            return _digests.Count == chunks && _highest < chunks;
        }
    }

    /// <summary>The wire name of an algorithm, as in the manifest's <c>hash</c> field.</summary>
    public static string WireName(CrocHashAlgorithm algorithm) => algorithm == CrocHashAlgorithm.Sha256 ? "sha256" : "xxh128";

    public static bool TryParseWireName(string? name, out CrocHashAlgorithm algorithm)
    {
        algorithm = name == "sha256" ? CrocHashAlgorithm.Sha256 : CrocHashAlgorithm.XxHash128;
        return name is "sha256" or "xxh128";
    }

    /// <summary>The algorithm a (validated) manifest names.</summary>
    public static CrocHashAlgorithm ParseWireName(string? name) =>
        TryParseWireName(name, out var algorithm) ? algorithm : throw new CrocProtocolException($"Unknown file hash '{name}'.");

    private static byte[] Label(CrocHashAlgorithm algorithm) => Encoding.ASCII.GetBytes($"croc/1 file {WireName(algorithm)}-chunks\0");

    /// <summary>The file hash for a file of <paramref name="size"/> bytes, lowercase hex.</summary>
    public string Finish(long size, int chunkSize)
    {
        var chunks = ChunkCount(size, chunkSize);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Label(_algorithm));
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(length, size);
        hash.AppendData(length);
        lock (_gate)
        {
            for (long i = 0; i < chunks; i++)
            {
                hash.AppendData(_digests[i]);
            }
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}

/// <summary>What adding a chunk's digest did.</summary>
internal enum ChunkAddition
{
    /// <summary>A chunk not seen before.</summary>
    Added,

    /// <summary>A chunk kept from an earlier transfer, now replaced by the one the sender sent.</summary>
    Replaced,

    /// <summary>A chunk already seen: a protocol violation.</summary>
    Duplicate,
}

using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace CrocNet.Files;

/// <summary>
/// The end-to-end file hash: SHA-256 over a domain label, the length and the SHA-256 of every fixed-size
/// chunk in order. Chunks hash independently, so every data connection hashes its own chunks in
/// parallel and out of order, and the recipient never has to read a file back.
/// </summary>
internal sealed class FileDigest
{
    private const int DigestSize = 32;
    private static readonly byte[] Label = Encoding.ASCII.GetBytes("croc/1 file sha256-chunks\0");

    private readonly Lock _gate = new();
    private byte[] _digests;
    private bool[] _present;
    private int _count;

    public FileDigest(long knownSize, int chunkSize)
    {
        var chunks = knownSize < 0 ? 4 : ChunkCount(knownSize, chunkSize);
        _digests = new byte[Math.Max(chunks, 1) * DigestSize];
        _present = new bool[Math.Max(chunks, 1)];
    }

    /// <summary>How many distinct chunks have been hashed.</summary>
    public int Count => Volatile.Read(ref _count);

    public static long ChunkCount(long size, int chunkSize) => size <= 0 ? 0 : ((size - 1) / chunkSize) + 1;

    /// <summary>Hashes chunk <paramref name="index"/>; false if that chunk was already seen.</summary>
    public bool AddChunk(long index, ReadOnlySpan<byte> data)
    {
        Span<byte> digest = stackalloc byte[DigestSize];
        SHA256.HashData(data, digest);
        lock (_gate)
        {
            if (index >= _present.Length)
            {
                var length = (int)Math.Max(index + 1, _present.Length * 2L);
                Array.Resize(ref _present, length);
                Array.Resize(ref _digests, length * DigestSize);
            }

            if (_present[index])
            {
                return false;
            }

            _present[index] = true;
            digest.CopyTo(_digests.AsSpan((int)index * DigestSize));
            _count++;
            return true;
        }
    }

    /// <summary>Whether chunks 0 … n-1 are all present.</summary>
    public bool HasExactly(long chunks)
    {
        lock (_gate)
        {
            return _count == chunks && (chunks == 0 || (chunks <= _present.Length && _present.AsSpan(0, (int)chunks).IndexOf(false) < 0));
        }
    }

    /// <summary>The file hash for a file of <paramref name="size"/> bytes, lowercase hex.</summary>
    public string Finish(long size, int chunkSize)
    {
        var chunks = (int)ChunkCount(size, chunkSize);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Label);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(length, size);
        hash.AppendData(length);
        lock (_gate)
        {
            hash.AppendData(_digests.AsSpan(0, chunks * DigestSize));
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}

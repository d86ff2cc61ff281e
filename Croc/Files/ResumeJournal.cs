using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace CrocNet.Files;

/// <summary>
/// The journal beside a kept partial file: which chunks of it are on disk and what their digests are. Append-only,
/// fixed-size records after a small header that binds it to one file's identity, chunk size and chunk digest.
/// A record is appended only after its chunk's bytes were flushed to disk, so a crash at any moment leaves a
/// journal that names a subset of what is on disk; a torn or damaged record is skipped on reading.
/// </summary>
/// <remarks>
/// <code>
/// header = "CROCJRNL" (8) | version 1 (1) | algorithm (1: 1 xxh128, 2 sha256) | digest size (1) | 0 (1)
///        | chunk size (4) | file size (8) | identity (32) | check (8)              = 64 bytes
/// record = chunk index (8) | chunk digest (16 or 32) | check (8)                     = 32 or 48 bytes
/// check  = the first 8 bytes of SHA-256(header without its check || record without its check); for the header, of the header alone
/// </code>
/// Integers are big-endian.
/// </remarks>
internal static class ResumeJournal
{
    public const int HeaderSize = 64;
    private const int HeaderBody = 56;
    private const int CheckSize = 8;
    private const byte Version = 1;
    private static readonly byte[] Magic = "CROCJRNL"u8.ToArray();

    public static int DigestSize(CrocHashAlgorithm algorithm) => algorithm == CrocHashAlgorithm.Sha256 ? 32 : 16;

    public static int RecordSize(CrocHashAlgorithm algorithm) => 8 + DigestSize(algorithm) + CheckSize;

    /// <summary>The header of a journal for one file.</summary>
    public static byte[] Header(ReadOnlySpan<byte> identity, long size, int chunkSize, CrocHashAlgorithm algorithm)
    {
        if (identity.Length != PartialNames.IdentitySize)
        {
            throw new ArgumentException("An identity is 32 bytes.", nameof(identity));
        }

        var header = new byte[HeaderSize];
        Magic.CopyTo(header, 0);
        header[8] = Version;
        header[9] = algorithm == CrocHashAlgorithm.Sha256 ? (byte)2 : (byte)1;
        header[10] = (byte)DigestSize(algorithm);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(12), chunkSize);
        BinaryPrimitives.WriteInt64BigEndian(header.AsSpan(16), size);
        identity.CopyTo(header.AsSpan(24));
        Check(header.AsSpan(0, HeaderBody), [], header.AsSpan(HeaderBody, CheckSize));
        return header;
    }

    /// <summary>Writes one record for <paramref name="chunk"/> into <paramref name="destination"/> (<see cref="RecordSize"/> bytes).</summary>
    public static void WriteRecord(ReadOnlySpan<byte> header, long chunk, ReadOnlySpan<byte> digest, Span<byte> destination)
    {
        BinaryPrimitives.WriteInt64BigEndian(destination, chunk);
        digest.CopyTo(destination[8..]);
        var body = 8 + digest.Length;
        Check(header[..HeaderBody], destination[..body], destination.Slice(body, CheckSize));
    }

    /// <summary>
    /// Reads a journal. Returns <see langword="false"/> when it is not one for exactly this file (another identity, size,
    /// chunk size or algorithm, or a damaged header); otherwise the chunks it names (checked records only, each chunk
    /// once, the last record winning, indexes below the file's chunk count).
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> journal, ReadOnlySpan<byte> expectedHeader, long chunkCount, CrocHashAlgorithm algorithm, out SortedDictionary<long, byte[]> chunks)
    {
        chunks = [];
        if (journal.Length < HeaderSize || !journal[..HeaderSize].SequenceEqual(expectedHeader))
        {
            return false;
        }

        var recordSize = RecordSize(algorithm);
        var digestSize = DigestSize(algorithm);
        Span<byte> check = stackalloc byte[CheckSize];
        for (var at = HeaderSize; at + recordSize <= journal.Length; at += recordSize)
        {
            var record = journal.Slice(at, recordSize);
            var body = 8 + digestSize;
            Check(expectedHeader[..HeaderBody], record[..body], check);
            if (!CryptographicOperations.FixedTimeEquals(check, record.Slice(body, CheckSize)))
            {
                // A damaged or torn record (the tail of a crash): skip it, keep the others.
                continue;
            }

            var chunk = BinaryPrimitives.ReadInt64BigEndian(record);
            if (chunk >= 0 && chunk < chunkCount)
            {
                chunks[chunk] = record.Slice(8, digestSize).ToArray();
            }
        }

        return true;
    }

    /// <summary>The length a journal of <paramref name="length"/> bytes has once a torn last record is cut off.</summary>
    public static long WholeLength(long length, CrocHashAlgorithm algorithm)
    {
        if (length < HeaderSize)
        {
            return 0;
        }

        var recordSize = RecordSize(algorithm);
        return HeaderSize + ((length - HeaderSize) / recordSize * recordSize);
    }

    private static void Check(ReadOnlySpan<byte> header, ReadOnlySpan<byte> record, Span<byte> destination)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(header);
        hash.AppendData(record);
        Span<byte> full = stackalloc byte[32];
        hash.GetHashAndReset(full);
        full[..CheckSize].CopyTo(destination);
    }
}

/// <summary>
/// Names of kept partial files. A file's partial is named from what identifies its content on the sender's side
/// (its relative path, size and modification time), so a later transfer of the same content finds it.
/// </summary>
internal static class PartialNames
{
    public const int IdentitySize = 32;
    public const string Prefix = ".croc-";
    public const string PartialExtension = ".partial";
    public const string JournalExtension = ".journal";

    private static readonly byte[] Label = "croc/1 partial\0"u8.ToArray();

    /// <summary>SHA-256("croc/1 partial\0" || UTF-8 path || 0 || size (8) || has mtime (1) || mtime (8)).</summary>
    public static byte[] Identity(string relativePath, long size, long? mtime)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Label);
        hash.AppendData(Encoding.UTF8.GetBytes(relativePath));
        Span<byte> tail = stackalloc byte[18];
        tail[0] = 0;
        BinaryPrimitives.WriteInt64BigEndian(tail[1..], size);
        tail[9] = mtime.HasValue ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteInt64BigEndian(tail[10..], mtime ?? 0);
        hash.AppendData(tail);
        return hash.GetHashAndReset();
    }

    /// <summary>The shared part of a partial's and its journal's names: <c>.croc-&lt;16 hex&gt;</c>.</summary>
    public static string Stem(ReadOnlySpan<byte> identity) => Prefix + Convert.ToHexStringLower(identity[..8]);

    /// <summary>Whether a received file's name could be one of our temporary names, ignoring case (as some file systems do).</summary>
    public static bool LooksLikeOurs(ReadOnlySpan<char> fileName) =>
        fileName.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase)
        && (fileName.EndsWith(PartialExtension, StringComparison.OrdinalIgnoreCase) || fileName.EndsWith(JournalExtension, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Whether <paramref name="fileName"/> is one of this library's temporary names: <c>.croc-&lt;16 hex&gt;.partial</c>,
    /// <c>.croc-&lt;16 hex&gt;.journal</c> or a transfer's non-resumable <c>.croc-&lt;16 hex&gt;-&lt;entry&gt;.partial</c>.
    /// </summary>
    public static bool IsOurs(ReadOnlySpan<char> fileName)
    {
        if (!fileName.StartsWith(Prefix, StringComparison.Ordinal) || fileName.Length < Prefix.Length + 16 + PartialExtension.Length)
        {
            return false;
        }

        var hex = fileName.Slice(Prefix.Length, 16);
        foreach (var c in hex)
        {
            if (!char.IsAsciiHexDigitLower(c) && !char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        var rest = fileName[(Prefix.Length + 16)..];
        if (rest.SequenceEqual(PartialExtension) || rest.SequenceEqual(JournalExtension))
        {
            return true;
        }

        // "-<digits>.partial"
        if (rest.Length < 2 + PartialExtension.Length || rest[0] != '-' || !rest.EndsWith(PartialExtension, StringComparison.Ordinal))
        {
            return false;
        }

        var digits = rest[1..^PartialExtension.Length];
        return digits.Length is > 0 and <= 10 && !digits.ContainsAnyExceptInRange('0', '9');
    }
}

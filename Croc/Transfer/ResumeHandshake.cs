using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;
using CrocNet.Crypto;
using CrocNet.Files;

namespace CrocNet.Transfer;

/// <summary>
/// How the recipient tells the sender which chunks it already holds, and how the sender checks each claim.
/// A claim carries, per chunk, HMAC-SHA256 under a key of its own derived from the session key over the entry
/// index, the chunk index and the chunk's digest, truncated to 16 bytes: the sender compares it with the same
/// computed over the chunk it reads, so a chunk is skipped only when both sides hold the same bytes, and the
/// digests of the recipient's local data never leave it.
/// </summary>
internal static class ResumeHandshake
{
    public const int MacSize = 16;

    /// <summary>Claimed chunks per Accept piece: 256 KiB of keyed digests, about 0.6 MiB of JSON at worst, below a frame's limit.</summary>
    public const int ChunksPerPiece = 16_384;

    /// <summary>
    /// The most chunks a recipient claims in one transfer (4 TiB of 1 MiB chunks); beyond it kept chunks are fetched
    /// again. Bounds the digests both sides hold for claims.
    /// </summary>
    public const long MaxClaimedChunks = 1L << 22;

    private static readonly byte[] Salt = "croc/1 resume"u8.ToArray();
    private static readonly byte[] Info = "croc/1|resume"u8.ToArray();

    /// <summary>The claim key: HKDF-SHA256(Ke, salt "croc/1 resume", info "croc/1|resume"), 32 bytes.</summary>
    public static byte[] DeriveKey(ReadOnlySpan<byte> sessionKey)
    {
        var key = new byte[32];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, sessionKey, key, Salt, Info);
        return key;
    }

    /// <summary>HMAC-SHA256(key, entry (4) || chunk (8) || digest), first 16 bytes.</summary>
    public static void Mac(ReadOnlySpan<byte> key, int entry, long chunk, ReadOnlySpan<byte> digest, Span<byte> destination)
    {
        Span<byte> message = stackalloc byte[12 + 32];
        BinaryPrimitives.WriteInt32BigEndian(message, entry);
        BinaryPrimitives.WriteInt64BigEndian(message[4..], chunk);
        digest.CopyTo(message[12..]);
        Span<byte> full = stackalloc byte[32];
        HMACSHA256.HashData(key, message[..(12 + digest.Length)], full);
        full[..MacSize].CopyTo(destination);
    }

    /// <summary>
    /// Sends the acceptance: one frame to a sender that does not resume; to one that does, one or more Accept frames
    /// with the claims of <paramref name="kept"/>, the last flagged <see cref="FrameFlags.Last"/>.
    /// </summary>
    public static async ValueTask WriteAcceptAsync(
        ReliableLane writer, bool senderResumes, IReadOnlyList<(int Entry, SortedDictionary<long, byte[]> Chunks)> kept, byte[] key, CancellationToken cancellationToken)
    {
        if (!senderResumes)
        {
            await ControlMessages.WriteAsync(writer, FrameType.Accept, new AcceptMessage { Accept = true }, TransferJsonContext.Default.AcceptMessage, cancellationToken).ConfigureAwait(false);
            return;
        }

        var pieces = BuildPieces(kept, key);
        for (var i = 0; i < pieces.Count; i++)
        {
            var bytes = JsonSerializer.SerializeToUtf8Bytes(pieces[i], TransferJsonContext.Default.AcceptMessage);
            await writer.WriteAsync(FrameType.Accept, bytes, cancellationToken, i == pieces.Count - 1 ? FrameFlags.Last : FrameFlags.None).ConfigureAwait(false);
        }
    }

    private static List<AcceptMessage> BuildPieces(IReadOnlyList<(int Entry, SortedDictionary<long, byte[]> Chunks)> kept, ReadOnlySpan<byte> key)
    {
        var pieces = new List<AcceptMessage>();
        var current = new AcceptMessage { Accept = true, Resume = [] };
        var inPiece = 0;
        Span<byte> mac = stackalloc byte[MacSize];
        foreach (var (entry, chunks) in kept)
        {
            using var enumerator = chunks.GetEnumerator();
            var more = enumerator.MoveNext();
            while (more)
            {
                if (inPiece == ChunksPerPiece)
                {
                    pieces.Add(current);
                    current = new AcceptMessage { Accept = true, Resume = [] };
                    inPiece = 0;
                }

                // One claim of this entry in this piece: as many chunks as fit, as ranges.
                var take = ChunksPerPiece - inPiece;
                var macs = new List<byte>(Math.Min(take, chunks.Count) * MacSize);
                var ranges = new List<long[]>();
                while (more && take > 0)
                {
                    var (chunk, digest) = enumerator.Current;
                    if (ranges.Count > 0 && ranges[^1][0] + ranges[^1][1] == chunk)
                    {
                        ranges[^1][1]++;
                    }
                    else
                    {
                        ranges.Add([chunk, 1]);
                    }

                    Mac(key, entry, chunk, digest, mac);
                    macs.AddRange(mac);
                    take--;
                    inPiece++;
                    more = enumerator.MoveNext();
                }

                current.Resume!.Add(new ResumeClaim { Index = entry, Ranges = ranges, Macs = Convert.ToBase64String([.. macs]) });
            }
        }

        pieces.Add(current);
        return pieces;
    }
}

/// <summary>
/// The sender's view of the recipient's claims: per file, ranges of chunks with one keyed digest each. Vetted
/// against the sender's own manifest, so what it holds is bounded by what it offered.
/// </summary>
internal sealed class ResumeClaims
{
    private readonly Dictionary<int, FileClaims> _files = [];
    private readonly byte[] _key;

    private ResumeClaims(byte[] key) => _key = key;

    /// <summary>How many chunks are claimed in all.</summary>
    public long Count { get; private set; }

    /// <summary>
    /// Reads the rest of a resuming recipient's acceptance: <paramref name="first"/> is its first Accept frame; more
    /// follow until one is flagged <see cref="FrameFlags.Last"/>. Returns <see langword="null"/> when nothing is claimed.
    /// </summary>
    public static async Task<ResumeClaims?> ReadAsync(
        Frame first, AcceptMessage accept, TransferContext context, ReliableLane reader, Manifest manifest, ReadOnlyMemory<byte> key, CancellationToken cancellationToken)
    {
        if (accept.Resume is null)
        {
            // A recipient that does not resume (or an older one): its one Accept frame is the whole answer.
            return null;
        }

        var claims = new ResumeClaims(key.ToArray());
        var frame = first;
        var message = accept;
        long total = 0;
        foreach (var entry in manifest.Entries)
        {
            total += PartialFile.Resumable(entry, manifest.ChunkSize) ? FileDigest.ChunkCount(entry.Size, manifest.ChunkSize) : 0;
        }

        while (true)
        {
            var added = claims.Add(message, manifest, Math.Min(total, ResumeHandshake.MaxClaimedChunks));
            if ((frame.Flags & FrameFlags.Last) != 0)
            {
                break;
            }

            if (added == 0)
            {
                // Every piece but the last claims something: a recipient cannot keep us reading empty pieces.
                throw new CrocProtocolException("The recipient sent an empty piece of its acceptance.");
            }

            frame = await context.ReadAsync(reader, cancellationToken).ConfigureAwait(false);
            if (frame.Type == FrameType.Abort)
            {
                throw ControlMessages.FromAbort(ControlMessages.Parse(frame, TransferJsonContext.Default.AbortMessage), peerIsRecipient: true);
            }

            if (frame.Type != FrameType.Accept)
            {
                throw new CrocProtocolException($"Expected the rest of the recipient's acceptance, got a {frame.Type} frame.");
            }

            message = ControlMessages.Parse(frame, TransferJsonContext.Default.AcceptMessage);
            if (!message.Accept)
            {
                throw new CrocProtocolException("The recipient's acceptance changed its mind part-way.");
            }
        }

        return claims.Count == 0 ? null : claims;
    }

    /// <summary>Whether the recipient claims chunk <paramref name="chunk"/> of <paramref name="entry"/>.</summary>
    public bool IsClaimed(int entry, long chunk) => _files.TryGetValue(entry, out var file) && file.Find(chunk) >= 0;

    /// <summary>Whether the recipient's claim for this chunk matches <paramref name="digest"/>, the digest of the sender's bytes.</summary>
    public bool Matches(int entry, long chunk, ReadOnlySpan<byte> digest)
    {
        if (!_files.TryGetValue(entry, out var file) || file.Find(chunk) is var at && at < 0)
        {
            return false;
        }

        Span<byte> mac = stackalloc byte[ResumeHandshake.MacSize];
        ResumeHandshake.Mac(_key, entry, chunk, digest, mac);
        return CryptographicOperations.FixedTimeEquals(mac, file.Macs.AsSpan(checked((int)(at * ResumeHandshake.MacSize)), ResumeHandshake.MacSize));
    }

    private int Add(AcceptMessage message, Manifest manifest, long limit)
    {
        var added = 0;
        foreach (var claim in message.Resume ?? [])
        {
            if (claim is null || claim.Index < 0 || claim.Index >= manifest.Entries.Count || !PartialFile.Resumable(manifest.Entries[claim.Index], manifest.ChunkSize)
                || claim.Ranges is not { Count: > 0 } ranges || claim.Macs is null)
            {
                throw new CrocProtocolException("The recipient claims chunks of no resumable file of the manifest, or sent a malformed claim.");
            }

            var chunks = FileDigest.ChunkCount(manifest.Entries[claim.Index].Size, manifest.ChunkSize);
            if (!_files.TryGetValue(claim.Index, out var file))
            {
                file = new FileClaims();
                _files[claim.Index] = file;
            }

            long count = 0;
            foreach (var range in ranges)
            {
                if (range is not [var start, var length] || start < file.End || length < 1 || length > chunks || start > chunks - length)
                {
                    throw new CrocProtocolException("The recipient's claimed chunk ranges are out of order or outside the file.");
                }

                file.Starts.Add(start);
                file.Offsets.Add(file.Claimed + count);
                file.Lengths.Add(length);
                file.End = start + length;
                count += length;
            }

            if ((Count += count) > limit)
            {
                throw new CrocProtocolException("The recipient claims more chunks than the offer holds or a transfer takes.");
            }

            byte[] macs;
            try
            {
                macs = Convert.FromBase64String(claim.Macs);
            }
            catch (FormatException ex)
            {
                throw new CrocProtocolException("The recipient's claim has malformed digests.", ex);
            }

            if (macs.Length != count * ResumeHandshake.MacSize)
            {
                throw new CrocProtocolException("The recipient's claim does not have one digest per chunk.");
            }

            file.Append(macs);
            file.Claimed += count;
            added += (int)count;
        }

        return added;
    }

    /// <summary>One file's claims: sorted, disjoint ranges and one keyed digest per chunk.</summary>
    private sealed class FileClaims
    {
        private byte[] _macs = [];
        private int _macLength;

        public List<long> Starts { get; } = [];

        public List<long> Lengths { get; } = [];

        /// <summary>Per range, the position of its first chunk's digest among the file's digests.</summary>
        public List<long> Offsets { get; } = [];

        public long End { get; set; }

        public long Claimed { get; set; }

        public byte[] Macs => _macs;

        public void Append(byte[] macs)
        {
            if (_macLength + macs.Length > _macs.Length)
            {
                Array.Resize(ref _macs, Math.Max(_macLength + macs.Length, _macs.Length * 2));
            }

            macs.CopyTo(_macs, _macLength);
            _macLength += macs.Length;
        }

        /// <summary>The position of <paramref name="chunk"/>'s digest, or -1 when it is not claimed.</summary>
        public long Find(long chunk)
        {
            var at = Starts.BinarySearch(chunk);
            if (at < 0)
            {
                at = ~at - 1;
            }

            return at >= 0 && chunk < Starts[at] + Lengths[at] ? Offsets[at] + (chunk - Starts[at]) : -1;
        }
    }
}

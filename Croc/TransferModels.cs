namespace CrocNet;

/// <summary>Which way a transfer went.</summary>
public enum TransferDirection
{
    /// <summary>This side sent.</summary>
    Send,

    /// <summary>This side received.</summary>
    Receive,
}

/// <summary>Where a transfer is.</summary>
public enum TransferStage
{
    /// <summary>Joining the relay and waiting for the other side.</summary>
    WaitingForPeer,

    /// <summary>Running the PAKE and confirming the key.</summary>
    Authenticating,

    /// <summary>Connecting the data connections through the relay.</summary>
    Connecting,

    /// <summary>Moving data.</summary>
    Transferring,

    /// <summary>Checking hashes and finishing.</summary>
    Verifying,

    /// <summary>Done: every file arrived and was verified.</summary>
    Completed,
}

/// <summary>A progress report.</summary>
/// <param name="Stage">Where the transfer is.</param>
/// <param name="BytesTransferred">Payload bytes moved so far.</param>
/// <param name="TotalBytes">Payload bytes in all, or -1 while unknown (a stream of unknown length).</param>
/// <param name="FilesCompleted">Files fully moved so far.</param>
/// <param name="TotalFiles">Files in all (0 while unknown).</param>
public readonly record struct TransferProgress(TransferStage Stage, long BytesTransferred, long TotalBytes, int FilesCompleted, int TotalFiles)
{
    /// <summary>
    /// Payload bytes the recipient already held from an earlier, interrupted receive of the same files, which this
    /// transfer does not move (see <see cref="ReceiveOptions.Resume"/>); not part of <see cref="BytesTransferred"/>.
    /// </summary>
    public long ResumedBytes { get; init; }

    /// <summary>The fraction done (bytes moved plus bytes resumed), between 0 and 1; 1 once completed.</summary>
    public double Fraction => Stage == TransferStage.Completed ? 1.0
        : TotalBytes > 0 ? Math.Clamp((double)(BytesTransferred + ResumedBytes) / TotalBytes, 0, 1) : 0;
}

/// <summary>One file or folder in a transfer.</summary>
/// <param name="RelativePath">The path relative to the transfer's root, with <c>/</c> separators.</param>
/// <param name="IsDirectory">Whether this is a (possibly empty) folder.</param>
/// <param name="Length">The file's length in bytes; 0 for folders; -1 when unknown until the end (a stream).</param>
public sealed record TransferEntry(string RelativePath, bool IsDirectory, long Length);

/// <summary>What a sender offers, shown to a recipient before anything is written.</summary>
public sealed class TransferOffer
{
    /// <summary>Creates an offer.</summary>
    /// <param name="entries">Every file and folder.</param>
    /// <param name="totalBytes">The sum of known file lengths.</param>
    public TransferOffer(IReadOnlyList<TransferEntry> entries, long totalBytes)
    {
        Entries = entries ?? throw new ArgumentNullException(nameof(entries));
        TotalBytes = totalBytes;
    }

    /// <summary>Every file and folder.</summary>
    public IReadOnlyList<TransferEntry> Entries { get; }

    /// <summary>The sum of known file lengths.</summary>
    public long TotalBytes { get; }

    /// <summary>How many files (not folders) are offered.</summary>
    public int FileCount => Entries.Count(e => !e.IsDirectory);

    /// <summary>The text, when the offer is a text message (<see cref="SendContent.FromText"/>); otherwise <see langword="null"/>.</summary>
    public string? Text { get; init; }
}

/// <summary>A file that was sent or received and verified.</summary>
/// <param name="RelativePath">The path relative to the transfer's root.</param>
/// <param name="Length">Its length in bytes.</param>
/// <param name="Digest">
/// The transfer's end-to-end digest of the file, lowercase hex: a hash over the list of per-chunk hashes
/// (XXH3-128 or SHA-256 per chunk, as chosen by the sender; see <c>docs/protocol.md</c>). Both sides compute the
/// same value, but it is not the file's plain hash: no standard tool reproduces it. For a digest that
/// <c>sha256sum</c> prints, ask for <see cref="ReceiveOptions.ComputeSha256"/>.
/// </param>
/// <param name="FullPath">Where it was written (receiving to a folder) or read from (sending a path); otherwise <see langword="null"/>.</param>
public sealed record TransferredFile(string RelativePath, long Length, string Digest, string? FullPath)
{
    /// <summary>The file's plain SHA-256, lowercase hex, when the receive asked for it (<see cref="ReceiveOptions.ComputeSha256"/>); otherwise <see langword="null"/>.</summary>
    public string? Sha256 { get; init; }

    /// <summary>Bytes of this file the recipient already held from an earlier, interrupted receive and did not get again; 0 when none.</summary>
    public long ResumedBytes { get; init; }
}

/// <summary>The outcome of a completed, verified transfer.</summary>
public sealed class TransferResult
{
    /// <summary>Which way the data went.</summary>
    public required TransferDirection Direction { get; init; }

    /// <summary>The relay channel used (public: the relay knows it).</summary>
    public required string Channel { get; init; }

    /// <summary>The SPAKE2 curve used.</summary>
    public required string Curve { get; init; }

    /// <summary>Every file moved, verified.</summary>
    public required IReadOnlyList<TransferredFile> Files { get; init; }

    /// <summary>Folders created or sent (including empty ones).</summary>
    public required IReadOnlyList<string> Directories { get; init; }

    /// <summary>Payload bytes moved.</summary>
    public required long TotalBytes { get; init; }

    /// <summary>Of the files' bytes, those the recipient already held from an earlier, interrupted receive (see <see cref="TransferredFile.ResumedBytes"/>).</summary>
    public long ResumedBytes { get; init; }

    /// <summary>Wall time from the first relay request to verified completion.</summary>
    public required TimeSpan Duration { get; init; }

    /// <summary>The text received, for a text transfer; otherwise <see langword="null"/>.</summary>
    public string? Text { get; init; }

    /// <summary>How many times a data connection broke and was dialed again during the transfer (see
    /// <see cref="CrocOptions.ReconnectAttempts"/>).</summary>
    public int Reconnects { get; init; }

    /// <summary>Bytes this side sent a second time after reconnects (frames the other side had not received yet); never
    /// counted in <see cref="TotalBytes"/> or in progress.</summary>
    public long BytesResent { get; init; }
}

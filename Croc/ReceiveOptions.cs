namespace CrocNet;

/// <summary>
/// What applies to one receive only: where the files go, what happens to existing files, who decides
/// whether to accept the offer, and where progress goes.
/// </summary>
public sealed class ReceiveOptions
{
    /// <summary>Where received files go. Ignored by <see cref="Croc.ReceiveToStreamAsync(string, Stream, ReceiveOptions?, CancellationToken)"/>.</summary>
    /// <value>Default <see langword="null"/>: <see cref="CrocOptions.OutputDirectory"/>, else the current directory at the time of the call.</value>
    public string? OutputDirectory { get; init; }

    /// <summary>What to do when a received file already exists.</summary>
    /// <value>Default <see langword="null"/>: <see cref="CrocOptions.Overwrite"/>.</value>
    public CrocOverwritePolicy? Overwrite { get; init; }

    /// <summary>
    /// Asked once the sender's list of files is known and before anything is written whether to accept it.
    /// Returning <see langword="false"/> declines the transfer; the sender is told.
    /// </summary>
    /// <value>Default <see langword="null"/>: every offer is accepted.</value>
    public Func<TransferOffer, CancellationToken, ValueTask<bool>>? ConfirmOffer { get; init; }

    /// <summary>Receives this transfer's progress reports.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public IProgress<TransferProgress>? Progress { get; init; }

    /// <summary>
    /// Also computes each received file's plain SHA-256 (<see cref="TransferredFile.Sha256"/>), the digest
    /// <c>sha256sum</c> prints. It reads every file once more after verification (see <c>docs/protocol.md</c> for the cost).
    /// </summary>
    /// <value>Default <see langword="false"/>.</value>
    public bool ComputeSha256 { get; init; }

    /// <summary>
    /// Keeps what an interrupted receive into a folder wrote, and lets a later receive of the same files (same names,
    /// sizes and modification times) into the same folder fetch only what is missing. Kept chunks are checked again
    /// against the disk and, by keyed digest, against the sender's bytes before they are trusted, and every file is
    /// verified whole as always. Kept partials are hidden (<c>.croc-&lt;hex&gt;.partial</c> beside the target, with a
    /// <c>.journal</c>); nothing under a final name is ever left by a failed receive. Files of at most one chunk
    /// (1 MiB), streams of unknown length and texts are always sent whole. See <c>docs/receiving-safely.md</c>.
    /// </summary>
    /// <value>Default <see langword="true"/>. <see langword="false"/>: partials are deleted on failure, and kept ones are neither used nor touched.</value>
    public bool Resume { get; init; } = true;

    /// <summary>Deletes what earlier receives kept of the offered files instead of resuming them; the files are fetched whole.</summary>
    /// <value>Default <see langword="false"/>.</value>
    public bool DiscardPartial { get; init; }

    /// <summary>
    /// On each receive into a folder, leftover partials and journals (this library's hidden <c>.croc-*</c> names only)
    /// last written longer ago than this are removed from the folders the transfer writes into.
    /// <see cref="Timeout.InfiniteTimeSpan"/> keeps them however old.
    /// </summary>
    /// <value>Default 7 days. Must be positive (or infinite).</value>
    public TimeSpan PartialMaxAge { get; init; } = TimeSpan.FromDays(7);

    /// <summary>Throws for settings no receive can use.</summary>
    internal void Validate()
    {
        if (PartialMaxAge <= TimeSpan.Zero && PartialMaxAge != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(PartialMaxAge), PartialMaxAge, "PartialMaxAge must be positive, or Timeout.InfiniteTimeSpan to keep leftovers however old.");
        }
    }
}

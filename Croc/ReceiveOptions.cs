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
}

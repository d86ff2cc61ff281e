namespace CrocNet;

/// <summary>
/// What applies to one send only. A <see cref="Croc"/> instance is shared and immutable; everything that
/// differs from one transfer to the next goes here.
/// </summary>
public sealed class SendOptions
{
    /// <summary>The code to use (<c>&lt;channel&gt;-&lt;secret&gt;</c>), for example from <see cref="Croc.GenerateCode"/>
    /// or agreed with the recipient beforehand. It is a secret: never log it.</summary>
    /// <value>Default <see langword="null"/>: <see cref="Croc.StartSendAsync(SendContent, SendOptions?, CancellationToken)"/> generates one and returns it in
    /// <see cref="CrocSendOperation.Code"/>. <see cref="Croc.SendAsync(SendContent, SendOptions?, CancellationToken)"/> requires a code, since nobody could
    /// learn a generated one before it completes.</value>
    public string? Code { get; init; }

    /// <summary>Receives this transfer's progress reports.</summary>
    /// <value>Default <see langword="null"/>.</value>
    public IProgress<TransferProgress>? Progress { get; init; }

    /// <summary>The per-file digest this send computes and its recipient verifies.</summary>
    /// <value>Default <see langword="null"/>: <see cref="CrocOptions.FileHash"/>.</value>
    public CrocHashAlgorithm? FileHash { get; init; }
}

namespace CrocNet.Pake;

/// <summary>Which side of SPAKE2 this party plays.</summary>
internal enum Spake2Role
{
    /// <summary>Party A, the sender; blinds with M.</summary>
    Sender,

    /// <summary>Party B, the recipient; blinds with N.</summary>
    Recipient,
}

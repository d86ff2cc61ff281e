namespace CrocNet.Crypto;

/// <summary>The kinds of encrypted frames on a stapled connection (see docs/protocol.md).</summary>
internal enum FrameType : byte
{
    /// <summary>A piece of the manifest (JSON); flag <see cref="FrameFlags.Last"/> marks the final piece.</summary>
    Manifest = 1,

    /// <summary>The recipient's answer to the manifest (JSON).</summary>
    Accept = 2,

    /// <summary>One or more data records (file index, offset, bytes).</summary>
    Data = 3,

    /// <summary>The sender's per-file sizes and hashes, after all data (JSON).</summary>
    Trailer = 4,

    /// <summary>The recipient's confirmation that everything was verified and stored (JSON).</summary>
    Done = 5,

    /// <summary>The authenticated end of a stream: nothing may follow.</summary>
    End = 6,

    /// <summary>Either side gives up, with a reason (JSON).</summary>
    Abort = 7,

    /// <summary>The recipient's periodic count of bytes received (JSON), so a sender that has written everything
    /// can tell a slow drain from a dead peer.</summary>
    Progress = 8,

    /// <summary>Lane bookkeeping, never numbered: "I have every frame of yours below index n" (8 bytes, big-endian). Sent on
    /// the reverse direction of the lane the frames came on; for data, only once the chunk was handed to the file.</summary>
    Ack = 9,

    /// <summary>Lane bookkeeping, never numbered: the first frame of each side on a re-dialed leg, giving the index of the
    /// next frame it expects from the peer on that lane (8 bytes, big-endian); the peer re-sends from there.</summary>
    Resume = 10,
}

/// <summary>Frame flags.</summary>
[Flags]
internal enum FrameFlags : byte
{
    None = 0,

    /// <summary>The last piece of a multi-frame message.</summary>
    Last = 1,
}

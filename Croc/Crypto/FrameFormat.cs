using System.Buffers.Binary;

namespace CrocNet.Crypto;

/// <summary>
/// The wire layout of one frame: an 8-byte clear header, the AES-256-GCM ciphertext and its 16-byte tag.
/// Header: type (1) | flags (1) | reserved, zero (2) | ciphertext length, big-endian (4).
/// AAD = header || sequence number (8, big-endian); nonce = 0x00000000 || sequence number.
/// The sequence number is implicit (it counts frames on the stream from 0), so a dropped, repeated or
/// reordered frame fails authentication, and an <see cref="FrameType.End"/> frame makes truncation visible.
/// </summary>
internal static class FrameFormat
{
    public const int HeaderSize = 8;
    public const int TagSize = 16;
    public const int NonceSize = 12;
    public const int AadSize = HeaderSize + 8;

    /// <summary>The largest plaintext a frame may carry; a reader refuses bigger lengths before allocating.</summary>
    public const int MaxPayload = 4 * 1024 * 1024;

    public static void WriteHeader(Span<byte> header, FrameType type, FrameFlags flags, int length)
    {
        header[0] = (byte)type;
        header[1] = (byte)flags;
        header[2] = 0;
        header[3] = 0;
        BinaryPrimitives.WriteInt32BigEndian(header[4..], length);
    }

    public static void WriteNonceAndAad(Span<byte> nonce, Span<byte> aad, ReadOnlySpan<byte> header, ulong sequence)
    {
        nonce[..4].Clear();
        BinaryPrimitives.WriteUInt64BigEndian(nonce[4..], sequence);
        header.CopyTo(aad);
        BinaryPrimitives.WriteUInt64BigEndian(aad[HeaderSize..], sequence);
    }
}

using System.Buffers.Binary;

namespace CrocNet.Transfer;

/// <summary>
/// The layout of one record inside a <c>Data</c> frame: entry index (4) | offset (8) | length (4), big-endian,
/// then the bytes. A frame carries one chunk of a large file, or several whole small files.
/// </summary>
internal static class DataRecord
{
    public const int HeaderSize = 16;

    public static void WriteHeader(Span<byte> destination, int entry, long offset, int length)
    {
        BinaryPrimitives.WriteInt32BigEndian(destination, entry);
        BinaryPrimitives.WriteInt64BigEndian(destination[4..], offset);
        BinaryPrimitives.WriteInt32BigEndian(destination[12..], length);
    }

    public static bool TryRead(ref ReadOnlyMemory<byte> payload, out int entry, out long offset, out ReadOnlyMemory<byte> data)
    {
        entry = 0;
        offset = 0;
        data = default;
        var span = payload.Span;
        if (span.Length < HeaderSize)
        {
            return false;
        }

        entry = BinaryPrimitives.ReadInt32BigEndian(span);
        offset = BinaryPrimitives.ReadInt64BigEndian(span[4..]);
        var length = BinaryPrimitives.ReadInt32BigEndian(span[12..]);
        if (entry < 0 || offset < 0 || length <= 0 || length > span.Length - HeaderSize)
        {
            return false;
        }

        data = payload.Slice(HeaderSize, length);
        payload = payload[(HeaderSize + length)..];
        return true;
    }
}

using System.Security.Cryptography;
using CrocNet.Crypto;
using CrocNet.Pake;
using CrocNet.Transfer;

namespace CrocNet.Session;

/// <summary>
/// Turns a confirmed session key and the stapled connections into one side's data plane: per connection and
/// direction a frame writer or reader under its own HKDF key (docs/protocol.md).
/// </summary>
internal static class DataPlane
{
    /// <summary>Frames carry one chunk plus its record header; the rest is headroom for control messages.</summary>
    public const int MaxFramePayload = FileSender.ChunkSize + (64 * 1024);

    public static TransferContext Create(
        Spake2Keys keys, Stream[] streams, StreamDirection own, ProgressTracker tracker, TimeSpan idleTimeout, TimeSpan decisionTimeout, TimeProvider time)
    {
        var key = keys.SessionKey.ToArray();
        try
        {
            return Create(key, streams, own, tracker, idleTimeout, decisionTimeout, time);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>The same from a raw session key (tests run the data plane over in-memory pipes with one).</summary>
    public static TransferContext Create(
        ReadOnlySpan<byte> sessionKey, Stream[] streams, StreamDirection own, ProgressTracker tracker, TimeSpan idleTimeout, TimeSpan decisionTimeout, TimeProvider time)
    {
        var peer = own == StreamDirection.SenderToRecipient ? StreamDirection.RecipientToSender : StreamDirection.SenderToRecipient;
        // The sender writes on every connection and reads its recipient's answers on the first;
        // the recipient does the mirror image.
        FrameWriter[] writers;
        FrameReader[] readers;
        if (own == StreamDirection.SenderToRecipient)
        {
            writers = new FrameWriter[streams.Length];
            for (var i = 0; i < streams.Length; i++)
            {
                writers[i] = NewWriter(streams[i], sessionKey, own, i);
            }

            readers = [NewReader(streams[0], sessionKey, peer, 0)];
        }
        else
        {
            writers = [NewWriter(streams[0], sessionKey, own, 0)];
            readers = new FrameReader[streams.Length];
            for (var i = 0; i < streams.Length; i++)
            {
                readers[i] = NewReader(streams[i], sessionKey, peer, i);
            }
        }

        return new TransferContext(writers, readers, tracker, idleTimeout, time) { DecisionTimeout = decisionTimeout, ResumeKey = ResumeHandshake.DeriveKey(sessionKey) };
    }

    private static FrameWriter NewWriter(Stream stream, ReadOnlySpan<byte> sessionKey, StreamDirection direction, int connection)
    {
        var key = FrameKeys.Derive(sessionKey, direction, connection);
        try
        {
            return new FrameWriter(stream, key, MaxFramePayload);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    private static FrameReader NewReader(Stream stream, ReadOnlySpan<byte> sessionKey, StreamDirection direction, int connection)
    {
        var key = FrameKeys.Derive(sessionKey, direction, connection);
        try
        {
            return new FrameReader(stream, key);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }
}

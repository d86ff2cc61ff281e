using System.Buffers.Binary;
using System.Security.Cryptography;

namespace CrocNet.Crypto;

/// <summary>A decrypted frame; its payload is valid until the next read on the same reader.</summary>
internal readonly record struct Frame(FrameType Type, FrameFlags Flags, ReadOnlyMemory<byte> Payload);

/// <summary>
/// Reads and authenticates frames from one stream in one direction. Any failure (bad tag, wrong order,
/// a frame after the end, a stream that stops before its end frame) is a typed <see cref="CrocTransferException"/>;
/// the reader stops at the end frame and never reads what may follow it.
/// </summary>
internal sealed class FrameReader : IDisposable
{
    private readonly Stream _stream;
    private readonly AesGcm _aes;
    private readonly byte[] _header = new byte[FrameFormat.HeaderSize];
    private byte[] _buffer;
    private ulong _sequence;
    private bool _ended;

    public FrameReader(Stream stream, ReadOnlySpan<byte> key)
    {
        _stream = stream;
        _aes = new AesGcm(key, FrameFormat.TagSize);
        _buffer = GC.AllocateUninitializedArray<byte>(64 * 1024);
    }

    /// <summary>Whether the authenticated end frame has been read.</summary>
    public bool Ended => _ended;

    /// <summary>Invoked with the wire size of each frame as it arrives (for idle detection and progress).</summary>
    public Action<int>? OnFrame { get; set; }

    public async ValueTask<Frame> ReadAsync(CancellationToken cancellationToken)
    {
        if (_ended)
        {
            throw new InvalidOperationException("The stream has already ended.");
        }

        await ReadExactAsync(_header, cancellationToken).ConfigureAwait(false);
        var type = (FrameType)_header[0];
        var flags = (FrameFlags)_header[1];
        var length = BinaryPrimitives.ReadInt32BigEndian(_header.AsSpan(4));
        if (_header[2] != 0 || _header[3] != 0 || !Enum.IsDefined(type) || (flags & ~FrameFlags.Last) != 0 || length is < 0 or > FrameFormat.MaxPayload)
        {
            // The header is authenticated too, but checking it first keeps a hostile length from
            // making us allocate before the tag has been verified.
            throw Tampered();
        }

        var total = length + FrameFormat.TagSize;
        if (_buffer.Length < total)
        {
            // Grows to the largest frame seen, exactly (a pool would round 1 MiB + overhead up to 2 MiB).
            CryptographicOperations.ZeroMemory(_buffer);
            _buffer = GC.AllocateUninitializedArray<byte>(total);
        }

        await ReadExactAsync(_buffer.AsMemory(0, total), cancellationToken).ConfigureAwait(false);
        Span<byte> nonce = stackalloc byte[FrameFormat.NonceSize];
        Span<byte> aad = stackalloc byte[FrameFormat.AadSize];
        FrameFormat.WriteNonceAndAad(nonce, aad, _header, _sequence);
        var payload = _buffer.AsSpan(0, length);
        try
        {
            _aes.Decrypt(nonce, payload, _buffer.AsSpan(length, FrameFormat.TagSize), payload, aad);
        }
        catch (AuthenticationTagMismatchException ex)
        {
            throw Tampered(ex);
        }

        _sequence++;
        if (type == FrameType.End)
        {
            if (length != 0)
            {
                throw Tampered();
            }

            _ended = true;
        }

        OnFrame?.Invoke(FrameFormat.HeaderSize + total);
        return new Frame(type, flags, _buffer.AsMemory(0, length));
    }

    private async ValueTask ReadExactAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        try
        {
            await _stream.ReadExactlyAsync(destination, cancellationToken).ConfigureAwait(false);
        }
        catch (EndOfStreamException ex)
        {
            throw new CrocTransferException(
                CrocErrorCode.ConnectionLost,
                "The connection to the other side ended before the transfer was complete (the stream was cut short).",
                ex);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            // A reset caused by our own cancellation is a cancellation, not a lost connection.
            cancellationToken.ThrowIfCancellationRequested();
            throw new CrocTransferException(CrocErrorCode.ConnectionLost, "The connection to the other side was lost: " + ex.Message, ex);
        }
    }

    private static CrocTransferException Tampered(Exception? inner = null) => new(
        CrocErrorCode.DataTampered,
        "Encrypted data failed authentication: it was altered, reordered, replayed or spliced on the way. Nothing from it was kept.",
        inner);

    /// <summary>
    /// After this side sent its abort: discards whatever still arrives until the peer closes the stream (it has read the
    /// abort and left), or <paramref name="within"/> passes. Tearing the channel down before that could cut the abort
    /// off behind data still in flight. Never throws.
    /// </summary>
    public async Task WaitForCloseAsync(TimeSpan within, TimeProvider time)
    {
        using var timeout = new CancellationTokenSource(within, time);
        var scratch = System.Buffers.ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            while (await _stream.ReadAsync(scratch, timeout.Token).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or NotSupportedException or System.Net.Sockets.SocketException)
        {
            // Gone, or out of time: either way, done waiting.
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    public void Dispose()
    {
        _aes.Dispose();
        if (_buffer.Length != 0)
        {
            CryptographicOperations.ZeroMemory(_buffer);
            _buffer = [];
        }
    }
}

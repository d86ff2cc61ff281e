using System.Security.Cryptography;

namespace CrocNet.Crypto;

/// <summary>
/// Encrypts frames onto one stream in one direction. Not thread-safe: the transfer gives each stream a
/// single writer at a time. The payload is built in the writer's own buffer and encrypted in place, so a
/// frame costs one write call and no copy beyond reading the plaintext in.
/// </summary>
internal sealed class FrameWriter : IDisposable
{
    private readonly Stream _stream;
    private readonly AesGcm _aes;
    private byte[] _buffer;
    private ulong _sequence;
    private bool _ended;

    public FrameWriter(Stream stream, ReadOnlySpan<byte> key, int initialPayloadCapacity = 64 * 1024)
    {
        _stream = stream;
        _aes = new AesGcm(key, FrameFormat.TagSize);
        // One exact-size buffer per stream for the whole transfer: the pool would round 1 MiB + overhead up to 2 MiB.
        _buffer = GC.AllocateUninitializedArray<byte>(FrameFormat.HeaderSize + initialPayloadCapacity + FrameFormat.TagSize);
    }

    /// <summary>
    /// Whether a write failed or was cancelled part-way: a frame may have been cut, so nothing written after it could be
    /// read by the peer (an abort is then not worth sending).
    /// </summary>
    public bool Interrupted { get; private set; }

    /// <summary>Frames written so far.</summary>
    public ulong FramesWritten => _sequence;

    /// <summary>Returns room for a payload of up to <paramref name="size"/> bytes; fill it, then call <see cref="WritePayloadAsync"/>.</summary>
    public Memory<byte> GetPayloadBuffer(int size)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, FrameFormat.MaxPayload);
        var needed = FrameFormat.HeaderSize + size + FrameFormat.TagSize;
        if (_buffer.Length < needed)
        {
            CryptographicOperations.ZeroMemory(_buffer);
            _buffer = GC.AllocateUninitializedArray<byte>(needed);
        }

        return _buffer.AsMemory(FrameFormat.HeaderSize, size);
    }

    /// <summary>Encrypts the first <paramref name="length"/> bytes of the payload buffer and writes the frame.</summary>
    public ValueTask WritePayloadAsync(FrameType type, FrameFlags flags, int length, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_buffer.Length == 0, this);
        if (_ended)
        {
            throw new InvalidOperationException("The stream has already been ended.");
        }

        var frame = _buffer.AsSpan(0, FrameFormat.HeaderSize + length + FrameFormat.TagSize);
        var header = frame[..FrameFormat.HeaderSize];
        FrameFormat.WriteHeader(header, type, flags, length);
        Span<byte> nonce = stackalloc byte[FrameFormat.NonceSize];
        Span<byte> aad = stackalloc byte[FrameFormat.AadSize];
        FrameFormat.WriteNonceAndAad(nonce, aad, header, _sequence);
        var payload = frame.Slice(FrameFormat.HeaderSize, length);
        _aes.Encrypt(nonce, payload, payload, frame.Slice(FrameFormat.HeaderSize + length, FrameFormat.TagSize), aad);
        _sequence++;
        if (type == FrameType.End)
        {
            _ended = true;
        }

        return WriteFrameAsync(frame.Length, cancellationToken);
    }

    private async ValueTask WriteFrameAsync(int length, CancellationToken cancellationToken)
    {
        try
        {
            await _stream.WriteAsync(_buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
        }
        // The filter marks every failure, cancellations included, before deciding which ones to translate.
        catch (Exception ex) when (Interrupt() && ex is IOException or ObjectDisposedException)
        {
            cancellationToken.ThrowIfCancellationRequested();
            throw new CrocTransferException(CrocErrorCode.ConnectionLost, "The connection to the other side was lost while sending: " + ex.Message, ex);
        }
    }

    private bool Interrupt()
    {
        Interrupted = true;
        return true;
    }

    /// <summary>Encrypts <paramref name="payload"/> (left untouched: a lane keeps it to send again) into a frame and writes it.</summary>
    public ValueTask WriteAsync(FrameType type, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken, FrameFlags flags = FrameFlags.None)
    {
        ObjectDisposedException.ThrowIf(_buffer.Length == 0, this);
        if (_ended)
        {
            throw new InvalidOperationException("The stream has already been ended.");
        }

        ArgumentOutOfRangeException.ThrowIfGreaterThan(payload.Length, FrameFormat.MaxPayload);
        var length = payload.Length;
        var needed = FrameFormat.HeaderSize + length + FrameFormat.TagSize;
        if (_buffer.Length < needed)
        {
            CryptographicOperations.ZeroMemory(_buffer);
            _buffer = GC.AllocateUninitializedArray<byte>(needed);
        }

        var frame = _buffer.AsSpan(0, needed);
        var header = frame[..FrameFormat.HeaderSize];
        FrameFormat.WriteHeader(header, type, flags, length);
        Span<byte> nonce = stackalloc byte[FrameFormat.NonceSize];
        Span<byte> aad = stackalloc byte[FrameFormat.AadSize];
        FrameFormat.WriteNonceAndAad(nonce, aad, header, _sequence);
        _aes.Encrypt(nonce, payload.Span, frame.Slice(FrameFormat.HeaderSize, length), frame.Slice(FrameFormat.HeaderSize + length, FrameFormat.TagSize), aad);
        _sequence++;
        if (type == FrameType.End)
        {
            _ended = true;
        }

        return WriteFrameAsync(needed, cancellationToken);
    }

    /// <summary>Writes the authenticated end of the stream.</summary>
    public ValueTask WriteEndAsync(CancellationToken cancellationToken) => WritePayloadAsync(FrameType.End, FrameFlags.None, 0, cancellationToken);

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

using System.Security.Cryptography;

namespace CrocNet.Crypto;

/// <summary>
/// The clear greeting each side sends first on a re-dialed leg, before any frame: a version byte and a fresh random
/// 16-byte nonce. The leg's keys are derived from both sides' nonces (<see cref="FrameKeys.DeriveLeg"/>), so every writer
/// encrypts under a key no earlier leg used, whatever the relay replays. The first leg of a lane has no greeting.
/// </summary>
internal static class LegHello
{
    public const byte Version = 1;
    public const int NonceSize = 16;
    public const int Size = 1 + NonceSize;

    public static byte[] NewNonce() => RandomNumberGenerator.GetBytes(NonceSize);

    public static async ValueTask WriteAsync(Stream stream, byte[] nonce, CancellationToken cancellationToken)
    {
        var hello = new byte[Size];
        hello[0] = Version;
        nonce.CopyTo(hello, 1);
        await stream.WriteAsync(hello, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads the peer's greeting and returns its nonce. A stream that ends first is an <see cref="IOException"/>
    /// (the new leg broke: worth another dial); an unknown version is a protocol error.</summary>
    public static async ValueTask<byte[]> ReadAsync(Stream stream, CancellationToken cancellationToken)
    {
        var hello = new byte[Size];
        try
        {
            await stream.ReadExactlyAsync(hello, cancellationToken).ConfigureAwait(false);
        }
        catch (EndOfStreamException ex)
        {
            throw new IOException("The re-dialed data connection ended before the other side greeted it.", ex);
        }

        if (hello[0] != Version)
        {
            throw new CrocProtocolException($"The other side greeted a re-dialed data connection with version {hello[0]}; this library speaks {Version}.");
        }

        return hello[1..];
    }
}

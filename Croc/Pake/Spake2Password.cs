using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Crypto.Parameters;
using BigInteger = Org.BouncyCastle.Math.BigInteger;

namespace CrocNet.Pake;

/// <summary>Turns a password into the SPAKE2 scalar w with Argon2id (protocol version 1's fixed cost).</summary>
/// <remarks>
/// The cost is part of the protocol: both sides must derive the same w, so it cannot be tuned per machine.
/// Version 1 uses Argon2id v1.3 with <see cref="MemoryKiB"/> KiB of memory, <see cref="Iterations"/> passes and
/// <see cref="Parallelism"/> lane: one of OWASP's equivalent Argon2id settings (m = 7 MiB, t = 5), chosen over
/// m = 19 MiB, t = 2 for the same work in a third of the memory, which keeps a peer's peak footprint small; see <c>docs/pake.md</c>.
/// </remarks>
internal static class Spake2Password
{
    /// <summary>Argon2id memory in KiB for protocol version 1 (7 MiB).</summary>
    public const int MemoryKiB = 7 * 1024;

    /// <summary>Argon2id passes over memory for protocol version 1.</summary>
    public const int Iterations = 5;

    /// <summary>Argon2id lanes for protocol version 1.</summary>
    public const int Parallelism = 1;

    /// <summary>Bytes of Argon2id output beyond the order length, so the reduction mod the order is unbiased to 2^-128.</summary>
    public const int ExtraBytes = 16;

    /// <summary>The shortest salt Argon2 allows (RFC 9106 section 3.1).</summary>
    public const int MinimumSaltLength = 8;

    /// <summary>Argon2id(password, salt) reduced modulo the suite's group order; big-endian, order-length bytes.</summary>
    /// <param name="suite">The suite whose group order w is reduced by.</param>
    /// <param name="password">The password bytes (the UTF-8 secret of the code).</param>
    /// <param name="salt">At least <see cref="MinimumSaltLength"/> bytes; croc uses SHA-256("croc/1|" + channel).</param>
    /// <returns>w, exactly <see cref="Spake2Suite.ScalarLength"/> bytes; the caller should zero it after use.</returns>
    /// <exception cref="ArgumentException"><paramref name="salt"/> is shorter than <see cref="MinimumSaltLength"/> bytes.</exception>
    public static byte[] DeriveW(Spake2Suite suite, ReadOnlySpan<byte> password, ReadOnlySpan<byte> salt)
    {
        ArgumentNullException.ThrowIfNull(suite);
        if (salt.Length < MinimumSaltLength)
        {
            throw new ArgumentException($"The salt must be at least {MinimumSaltLength} bytes; it is {salt.Length}.", nameof(salt));
        }

        var parameters = new Argon2Parameters.Builder(Argon2Parameters.Argon2id)
            .WithVersion(Argon2Parameters.Version13)
            .WithMemoryAsKB(MemoryKiB)
            .WithIterations(Iterations)
            .WithParallelism(Parallelism)
            .WithSalt(salt.ToArray())
            .Build();

        // BouncyCastle wants arrays; these copies are zeroed below, its internal memory blocks are not reachable.
        var passwordCopy = password.ToArray();
        var stretched = new byte[suite.ScalarLength + ExtraBytes];
        try
        {
            var generator = new Argon2BytesGenerator();
            generator.Init(parameters);
            generator.GenerateBytes(passwordCopy, stretched);
            var w = new BigInteger(1, stretched).Mod(suite.Order);
            return PadLeft(w.ToByteArrayUnsigned(), suite.ScalarLength);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(passwordCopy);
            CryptographicOperations.ZeroMemory(stretched);
            parameters.Clear();
        }
    }

    private static byte[] PadLeft(byte[] value, int length)
    {
        var padded = new byte[length];
        value.CopyTo(padded.AsSpan(length - value.Length));
        CryptographicOperations.ZeroMemory(value);
        return padded;
    }
}

using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using BigInteger = Org.BouncyCastle.Math.BigInteger;
using ECCurve = Org.BouncyCastle.Math.EC.ECCurve;
using ECPoint = Org.BouncyCastle.Math.EC.ECPoint;

namespace CrocNet.Pake;

/// <summary>
/// One party's run of SPAKE2 (RFC 9382): <see cref="Start"/> produces this party's message,
/// <see cref="Finish"/> takes the peer's message and yields the keys and confirmations.
/// </summary>
/// <remarks>
/// A run is single-use: <see cref="Finish"/> may be called once, and it consumes the secret scalars even
/// when the peer's message is rejected, so a bad message cannot be followed by a second try on the same x.
/// Not thread-safe.
/// </remarks>
internal sealed class Spake2 : IDisposable
{
    private static readonly byte[] ConfirmationKeysLabel = "ConfirmationKeys"u8.ToArray();

    private readonly Spake2Suite _suite;
    private readonly Spake2Role _role;
    private readonly byte[] _identityA;
    private readonly byte[] _identityB;
    private readonly byte[] _aad;
    private readonly byte[] _message;
    private readonly ECPoint _ownPoint;
    private readonly bool _captureTrace;

    // w as the order-length big-endian bytes that go into TT; cleared when the run ends.
    private byte[] _w;

    // BouncyCastle's BigInteger is immutable and cannot be overwritten, so these copies of w and x can only be
    // dropped (set to null) and left to the garbage collector; the byte copies above are zeroed.
    private BigInteger? _wScalar;
    private BigInteger? _x;

    private bool _finished;
    private bool _disposed;

    private Spake2(Spake2Suite suite, Spake2Role role, byte[] w, BigInteger wScalar, BigInteger x, Spake2Identities identities, ReadOnlySpan<byte> aad, bool captureTrace)
    {
        _suite = suite;
        _role = role;
        _w = w;
        _wScalar = wScalar;
        _x = x;
        _identityA = Encoding.UTF8.GetBytes(identities.A);
        _identityB = Encoding.UTF8.GetBytes(identities.B);
        _aad = aad.ToArray();
        _captureTrace = captureTrace;

        var blind = role == Spake2Role.Sender ? suite.M : suite.N;
        _ownPoint = Spake2Suite.MultiplyFixed(blind, wScalar).Add(Spake2Suite.MultiplyFixed(suite.G, x)).Normalize();
        _message = _ownPoint.GetEncoded(compressed: true);
    }

    /// <summary>The suite this run uses.</summary>
    public Spake2Suite Suite => _suite;

    /// <summary>The side this party plays.</summary>
    public Spake2Role Role => _role;

    /// <summary>This party's public message (pA for the sender, pB for the recipient), SEC1 compressed.</summary>
    public ReadOnlyMemory<byte> Message => _message;

    /// <summary>Starts a run with a fresh random scalar.</summary>
    /// <param name="suite">The ciphersuite both parties agreed on.</param>
    /// <param name="role">Which side this party plays.</param>
    /// <param name="w">The password scalar, big-endian, exactly <see cref="Spake2Suite.ScalarLength"/> bytes and below the group order (see <see cref="Spake2Password.DeriveW"/>).</param>
    /// <param name="identities">The identities of A (sender) and B (recipient), bound into the transcript.</param>
    /// <param name="aad">Associated data bound into the confirmation keys; both sides must use the same bytes.</param>
    /// <exception cref="ArgumentException"><paramref name="w"/> has the wrong length or is not below the group order, or <paramref name="role"/> is unknown.</exception>
    public static Spake2 Start(Spake2Suite suite, Spake2Role role, ReadOnlySpan<byte> w, Spake2Identities identities, ReadOnlySpan<byte> aad) =>
        StartCore(suite, role, w, identities, aad, scalar: default, captureTrace: false);

    /// <summary>Test hook: runs with a fixed scalar x (or y) so published vectors can be replayed, and records every intermediate.</summary>
    internal static Spake2 StartWithScalar(Spake2Suite suite, Spake2Role role, ReadOnlySpan<byte> w, Spake2Identities identities, ReadOnlySpan<byte> aad, ReadOnlySpan<byte> scalar)
    {
        if (scalar.IsEmpty)
        {
            throw new ArgumentException("A fixed scalar is required.", nameof(scalar));
        }

        return StartCore(suite, role, w, identities, aad, scalar, captureTrace: true);
    }

    /// <summary>Finishes the run with the peer's message and derives the keys.</summary>
    /// <param name="peerMessage">The peer's pA or pB, SEC1 compressed (uncompressed is accepted too).</param>
    /// <returns>The session key and confirmations; dispose it when done.</returns>
    /// <exception cref="CrocProtocolException">The peer's message is not a valid point of the group, is the identity, or reflects this party's own message.</exception>
    /// <exception cref="InvalidOperationException"><see cref="Finish"/> was already called.</exception>
    /// <exception cref="ObjectDisposedException">The run was disposed.</exception>
    public Spake2Keys Finish(ReadOnlySpan<byte> peerMessage)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_finished)
        {
            throw new InvalidOperationException("This SPAKE2 run has already finished; start a new run for a new exchange.");
        }

        _finished = true;
        try
        {
            return Derive(peerMessage);
        }
        finally
        {
            ClearSecrets();
        }
    }

    /// <summary>Clears the password scalar and drops the secret scalar.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        ClearSecrets();
    }

    private static Spake2 StartCore(Spake2Suite suite, Spake2Role role, ReadOnlySpan<byte> w, Spake2Identities identities, ReadOnlySpan<byte> aad, ReadOnlySpan<byte> scalar, bool captureTrace)
    {
        ArgumentNullException.ThrowIfNull(suite);
        ArgumentNullException.ThrowIfNull(identities);
        ArgumentNullException.ThrowIfNull(identities.A, nameof(identities));
        ArgumentNullException.ThrowIfNull(identities.B, nameof(identities));
        if (role is not (Spake2Role.Sender or Spake2Role.Recipient))
        {
            throw new ArgumentException($"Unknown SPAKE2 role {role}.", nameof(role));
        }

        if (w.Length != suite.ScalarLength)
        {
            throw new ArgumentException($"w must be {suite.ScalarLength} bytes for {suite.Name}; it is {w.Length}.", nameof(w));
        }

        var wScalar = new BigInteger(1, w);
        if (wScalar.CompareTo(suite.Order) >= 0)
        {
            throw new ArgumentException($"w must be below the group order of {suite.Name}.", nameof(w));
        }

        BigInteger x;
        if (scalar.IsEmpty)
        {
            x = RandomScalar(suite);
        }
        else
        {
            x = new BigInteger(1, scalar);
            if (x.SignValue == 0 || x.CompareTo(suite.Order) >= 0)
            {
                throw new ArgumentException("The fixed scalar must be in [1, order).", nameof(scalar));
            }
        }

        return new Spake2(suite, role, w.ToArray(), wScalar, x, identities, aad, captureTrace);
    }

    // Uniform in [1, n-1]: 128 extra random bits make the bias of the reduction negligible (RFC 9380 section 5's rule).
    private static BigInteger RandomScalar(Spake2Suite suite)
    {
        Span<byte> buffer = stackalloc byte[suite.ScalarLength + 16];
        RandomNumberGenerator.Fill(buffer);
        try
        {
            return new BigInteger(1, buffer).Mod(suite.Order.Subtract(BigInteger.One)).Add(BigInteger.One);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer);
        }
    }

    private Spake2Keys Derive(ReadOnlySpan<byte> peerMessage)
    {
        var w = _wScalar ?? throw new ObjectDisposedException(nameof(Spake2));
        var x = _x ?? throw new ObjectDisposedException(nameof(Spake2));

        var peer = _suite.DecodePeerPoint(peerMessage);

        // An honest peer never sends our own point (it blinds with the other of M and N), so an echo means
        // someone is reflecting our message back; refusing it is cheap defence in depth.
        if (peer.Equals(_ownPoint))
        {
            throw new CrocProtocolException("The peer's SPAKE2 message equals this party's own message (a reflection); aborting.");
        }

        var peerBlind = _role == Spake2Role.Sender ? _suite.N : _suite.M;

        // K = h*x*(peer - w*blind) with h = 1 on every suite. The variable-base multiply uses BouncyCastle's default
        // (wNAF) multiplier, as its own ECDH does; x is ephemeral and used for this one multiplication.
        var k = peer.Subtract(Spake2Suite.MultiplyFixed(peerBlind, w)).Multiply(x).Normalize();
        if (k.IsInfinity)
        {
            throw new CrocProtocolException("The peer's SPAKE2 message leads to the identity as shared point; aborting.");
        }

        var own = _ownPoint.GetEncoded(compressed: false);
        var theirs = peer.GetEncoded(compressed: false);
        var pA = _role == Spake2Role.Sender ? own : theirs;
        var pB = _role == Spake2Role.Sender ? theirs : own;
        var kBytes = k.GetEncoded(compressed: false);
        var transcript = BuildTranscript(_identityA, _identityB, pA, pB, kBytes, _w);
        var hashTT = CryptographicOperations.HashData(_suite.Hash, transcript);
        var half = _suite.HashLength / 2;
        var ke = hashTT.AsSpan(0, half).ToArray();
        var ka = hashTT.AsSpan(half).ToArray();

        var info = new byte[ConfirmationKeysLabel.Length + _aad.Length];
        ConfirmationKeysLabel.CopyTo(info, 0);
        _aad.CopyTo(info, ConfirmationKeysLabel.Length);
        var kc = new byte[_suite.HashLength];

        // RFC 9382 section 4: KDF(Ka, nil, "ConfirmationKeys" || AAD, L); an empty salt is HashLen zero bytes under HMAC.
        HKDF.DeriveKey(_suite.Hash, ka, kc, salt: [], info);
        var kcA = kc.AsSpan(0, half).ToArray();
        var kcB = kc.AsSpan(half).ToArray();
        var cA = CryptographicOperations.HmacData(_suite.Hash, kcA, transcript);
        var cB = CryptographicOperations.HmacData(_suite.Hash, kcB, transcript);

        Spake2Trace? trace = _captureTrace
            ? new Spake2Trace(pA, pB, [.. kBytes], [.. transcript], [.. hashTT], [.. ka], [.. kcA], [.. kcB], [.. cA], [.. cB])
            : null;

        var keys = _role == Spake2Role.Sender
            ? new Spake2Keys(_suite, _role, ke, cA, cB, trace)
            : new Spake2Keys(_suite, _role, ke, cB, cA, trace);

        // Ke and the confirmations now live in the keys object; everything else that could help recompute them goes.
        CryptographicOperations.ZeroMemory(transcript);
        CryptographicOperations.ZeroMemory(hashTT);
        CryptographicOperations.ZeroMemory(ka);
        CryptographicOperations.ZeroMemory(kc);
        CryptographicOperations.ZeroMemory(kcA);
        CryptographicOperations.ZeroMemory(kcB);
        CryptographicOperations.ZeroMemory(kBytes);
        return keys;
    }

    // RFC 9382 section 3.3: TT = len(A)||A||len(B)||B||len(pA)||pA||len(pB)||pB||len(K)||K||len(w)||w,
    // every len an 8-byte little-endian count.
    private static byte[] BuildTranscript(params ReadOnlySpan<byte[]> fields)
    {
        var length = 0;
        foreach (var field in fields)
        {
            length += 8 + field.Length;
        }

        var tt = new byte[length];
        var offset = 0;
        foreach (var field in fields)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(tt.AsSpan(offset, 8), (ulong)field.Length);
            field.CopyTo(tt, offset + 8);
            offset += 8 + field.Length;
        }

        return tt;
    }

    private void ClearSecrets()
    {
        CryptographicOperations.ZeroMemory(_w);
        _w = [];
        _wScalar = null;
        _x = null;
    }
}

/// <summary>Every intermediate of a run, recorded only by the test hook <see cref="Spake2.StartWithScalar"/>.</summary>
internal sealed record Spake2Trace(byte[] PA, byte[] PB, byte[] K, byte[] Transcript, byte[] HashTT, byte[] Ka, byte[] KcA, byte[] KcB, byte[] CA, byte[] CB);

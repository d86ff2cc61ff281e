using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.EC;
using Org.BouncyCastle.Math.EC;
using Org.BouncyCastle.Math.EC.Multiplier;
using BigInteger = Org.BouncyCastle.Math.BigInteger;
using ECCurve = Org.BouncyCastle.Math.EC.ECCurve;
using ECPoint = Org.BouncyCastle.Math.EC.ECPoint;

namespace CrocNet.Pake;

/// <summary>A SPAKE2 ciphersuite (RFC 9382 section 6): the curve, its M and N points, and its hash.</summary>
/// <remarks>
/// Every suite uses HKDF and HMAC with the suite's hash. All four curves have cofactor 1, so
/// RFC 9382's <c>h</c> is 1 and every valid curve point other than the identity is in the prime-order group.
/// </remarks>
internal sealed class Spake2Suite
{
    // RFC 9382 section 6, SEC1 compressed. The same values are in Croc.Tests/TestVectors/spake2-rfc9382.json.
    private const string P256M = "02886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12f";
    private const string P256N = "03d8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f98baa1292b49";
    private const string P384M = "030ff0895ae5ebf6187080a82d82b42e2765e3b2f8749c7e05eba366434b363d3dc36f15314739074d2eb8613fceec2853";
    private const string P384N = "02c72cf2e390853a1c1c4ad816a62fd15824f56078918f43f922ca21518f9c543bb252c5490214cf9aa3f0baab4b665c10";
    private const string P521M = "02003f06f38131b2ba2600791e82488e8d20ab889af753a41806c5db18d37d85608cfae06b82e4a72cd744c719193562a653ea1f119eef9356907edc9b56979962d7aa";
    private const string P521N = "0200c7924b9ec017f3094562894336a53c50167ba8c5963876880542bc669e494b2532d76c5b53dfb349fdf69154b9e0048c58a42e8ed04cef052a3bc349d95575cd25";

    // Not standardised: derived with RFC 9382 appendix A (seed "siec point generation seed (M|N)"),
    // see "proposed_siec_M_N" in Croc.Tests/TestVectors/spake2-derived.json.
    private const string SiecM = "02216930349d605c882621a3f46987f873aced090c60ff0a21e77ba2846d148837";
    private const string SiecN = "0308ebba59cd399b73ae4ccd4bbb8f98dcb80a5b48e90e17121173a2ab4a93e724";

    // tscholl2/siec SIEC255: y^2 = x^3 + 19, generator (5, 12), prime order, cofactor 1.
    private const string SiecPrime = "28948022309329048855892746252183396360603931420023084536990047309120118726721";
    private const string SiecOrder = "28948022309329048855892746252183396360263649053102146073526672701688283398081";

    // The comb multiplier walks every scalar bit the same way and reads its tables through BouncyCastle's
    // cache-safe lookup, so multiples of the fixed bases G, M and N (which involve x and w) do not branch on secret bits.
    private static readonly FixedPointCombMultiplier FixedMultiplier = new();

    // For a field prime p ≡ 1 (mod 4) (SIEC's), where BouncyCastle's own square root is slow; null for p ≡ 3 (mod 4).
    private readonly TonelliShanks? _sqrt;

    private Spake2Suite(
        string name,
        string suiteName,
        ECCurve curve,
        ECPoint generator,
        HashAlgorithmName hash,
        string mHex,
        string nHex)
    {
        Name = name;
        SuiteName = suiteName;
        Curve = curve;
        Order = curve.Order;
        ScalarLength = (Order.BitLength + 7) / 8;
        FieldLength = (curve.FieldSize + 7) / 8;
        G = generator.Normalize();
        Hash = hash;
        HashLength = hash == HashAlgorithmName.SHA512 ? 64 : 32;
        _sqrt = curve.Field.Characteristic.TestBit(1) ? null : new TonelliShanks(curve.Field.Characteristic);
        M = Decode(Convert.FromHexString(mHex)).Normalize();
        N = Decode(Convert.FromHexString(nHex)).Normalize();
        MHex = mHex;
        NHex = nHex;
    }

    /// <summary>NIST P-256 with SHA-256: <c>SPAKE2-P256-SHA256-HKDF-HMAC</c>. The default.</summary>
    public static Spake2Suite P256 { get; } = FromNamedCurve("p256", "P-256", "SPAKE2-P256-SHA256-HKDF-HMAC", HashAlgorithmName.SHA256, P256M, P256N);

    /// <summary>NIST P-384 with SHA-512: <c>SPAKE2-P384-SHA512-HKDF-HMAC</c>.</summary>
    public static Spake2Suite P384 { get; } = FromNamedCurve("p384", "P-384", "SPAKE2-P384-SHA512-HKDF-HMAC", HashAlgorithmName.SHA512, P384M, P384N);

    /// <summary>NIST P-521 with SHA-512: <c>SPAKE2-P521-SHA512-HKDF-HMAC</c>.</summary>
    public static Spake2Suite P521 { get; } = FromNamedCurve("p521", "P-521", "SPAKE2-P521-SHA512-HKDF-HMAC", HashAlgorithmName.SHA512, P521M, P521N);

    /// <summary>
    /// SIEC255 (y² = x³ + 19, as in the original croc) with SHA-256. Its M and N are not standardised;
    /// they come from RFC 9382 appendix A's procedure, documented in <c>docs/pake.md</c>.
    /// </summary>
    public static Spake2Suite Siec { get; } = CreateSiec();

    /// <summary>Every supported short name, in the order of <see cref="All"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["p256", "p384", "p521", "siec"];

    /// <summary>Every supported suite.</summary>
    public static IReadOnlyList<Spake2Suite> All { get; } = [P256, P384, P521, Siec];

    /// <summary>The short name used on the wire and in options: p256, p384, p521 or siec.</summary>
    public string Name { get; }

    /// <summary>The ciphersuite name in RFC 9382 style, for example <c>SPAKE2-P256-SHA256-HKDF-HMAC</c>.</summary>
    public string SuiteName { get; }

    /// <summary>The byte length of a scalar (and of w): the group order's length, rounded up to whole bytes.</summary>
    public int ScalarLength { get; }

    /// <summary>The byte length of Ke, Ka and of each confirmation MAC's key: half the hash output.</summary>
    public int SessionKeyLength => HashLength / 2;

    /// <summary>The byte length of a SEC1 compressed point, the form sent on the wire.</summary>
    public int CompressedPointLength => 1 + FieldLength;

    internal ECCurve Curve { get; }

    internal BigInteger Order { get; }

    internal int FieldLength { get; }

    internal ECPoint G { get; }

    internal ECPoint M { get; }

    internal ECPoint N { get; }

    internal string MHex { get; }

    internal string NHex { get; }

    internal HashAlgorithmName Hash { get; }

    internal int HashLength { get; }

    /// <summary>Finds a suite by short name (exact, lowercase, as on the wire).</summary>
    public static bool TryGet(string? name, [NotNullWhen(true)] out Spake2Suite? suite)
    {
        suite = name switch
        {
            "p256" => P256,
            "p384" => P384,
            "p521" => P521,
            "siec" => Siec,
            _ => null,
        };
        return suite is not null;
    }

    /// <summary>Finds a suite by short name or throws <see cref="ArgumentException"/>.</summary>
    public static Spake2Suite Get(string name) =>
        TryGet(name, out var s) ? s : throw new ArgumentException($"Unknown curve '{name}'; use one of: {string.Join(", ", Names)}.", nameof(name));

    /// <summary>The short name.</summary>
    public override string ToString() => Name;

    /// <summary>
    /// The same curve and points with another hash. Only for checking published vectors of suites we do
    /// not ship (for example P-384 with SHA-256); never reachable from the protocol.
    /// </summary>
    internal Spake2Suite WithHash(HashAlgorithmName hash, string suiteName) =>
        new(Name, suiteName, Curve, G, hash, MHex, NHex);

    internal static ECPoint MultiplyFixed(ECPoint basePoint, BigInteger scalar) =>
        FixedMultiplier.Multiply(basePoint, scalar);

    /// <summary>
    /// Decodes a received point and applies every check RFC 9382 section 3.3 (and PROTOCOL.md) asks for.
    /// Throws <see cref="CrocProtocolException"/> for anything but a valid, non-identity point of the prime-order group.
    /// </summary>
    internal ECPoint DecodePeerPoint(ReadOnlySpan<byte> encoded)
    {
        if (encoded.IsEmpty)
        {
            throw new CrocProtocolException("The peer's SPAKE2 message is empty.");
        }

        // Checked before BouncyCastle sees the bytes: it would also accept 0x00 (the identity) and the
        // hybrid forms 0x06/0x07, neither of which the protocol allows.
        var prefix = encoded[0];
        var expectedLength = prefix switch
        {
            0x02 or 0x03 => 1 + FieldLength,
            0x04 => 1 + (2 * FieldLength),
            0x00 => throw new CrocProtocolException("The peer's SPAKE2 message is the point at infinity, which is never a valid message."),
            _ => throw new CrocProtocolException($"The peer's SPAKE2 message starts with 0x{prefix:x2}; only SEC1 points (0x02, 0x03 or 0x04) are allowed."),
        };
        if (encoded.Length != expectedLength)
        {
            throw new CrocProtocolException($"The peer's SPAKE2 message is {encoded.Length} bytes; a {Name} point with prefix 0x{prefix:x2} is {expectedLength} bytes.");
        }

        ECPoint point;
        try
        {
            // Rejects coordinates >= p, x values with no square root and uncompressed points off the curve.
            point = Decode(encoded);
        }
        catch (ArgumentException ex)
        {
            throw new CrocProtocolException($"The peer's SPAKE2 message is not a point on {Name}.", ex);
        }

        if (point.IsInfinity)
        {
            throw new CrocProtocolException("The peer's SPAKE2 message is the point at infinity, which is never a valid message.");
        }

        if (!point.IsValid())
        {
            throw new CrocProtocolException($"The peer's SPAKE2 message is not a point on {Name}.");
        }

        // With cofactor 1 the curve's point group has prime order n, so by Lagrange every point other than the
        // identity generates all of it: IsValid above already proves membership, and n*P (a full scalar
        // multiplication, ~14 ms on the generic SIEC curve) would be dead work. Only a suite with a cofactor pays for it.
        if (!Curve.Cofactor.Equals(BigInteger.One) && !point.Multiply(Order).IsInfinity)
        {
            throw new CrocProtocolException($"The peer's SPAKE2 message is not in the prime-order group of {Name}.");
        }

        return point.Normalize();
    }

    /// <summary>
    /// SEC1 decoding: BouncyCastle's, except compressed points on a curve whose field prime is ≡ 1 (mod 4), which are
    /// decompressed here with Tonelli–Shanks (y² = x³ + a·x + b, then the root whose parity the prefix names).
    /// </summary>
    private ECPoint Decode(ReadOnlySpan<byte> encoded)
    {
        if (_sqrt is null || encoded.Length != 1 + FieldLength || encoded[0] is not (0x02 or 0x03))
        {
            return Curve.DecodePoint(encoded.ToArray());
        }

        var p = Curve.Field.Characteristic;
        var x = new BigInteger(1, encoded[1..].ToArray());
        if (x.CompareTo(p) >= 0)
        {
            throw new ArgumentException("x is not a field element.", nameof(encoded));
        }

        var rhs = x.Multiply(x).Add(Curve.A.ToBigInteger()).Multiply(x).Add(Curve.B.ToBigInteger()).Mod(p);
        var y = _sqrt.Sqrt(rhs) ?? throw new ArgumentException("x is not the x-coordinate of a curve point.", nameof(encoded));
        if (y.TestBit(0) != (encoded[0] == 0x03))
        {
            if (y.SignValue == 0)
            {
                throw new ArgumentException("y = 0 has no odd root.", nameof(encoded));
            }

            y = p.Subtract(y);
        }

        return Curve.CreatePoint(x, y);
    }

    private static Spake2Suite FromNamedCurve(string name, string curveName, string suiteName, HashAlgorithmName hash, string m, string n)
    {
        var parameters = CustomNamedCurves.GetByName(curveName)
            ?? throw new InvalidOperationException($"BouncyCastle does not know the curve {curveName}.");
        return new Spake2Suite(name, suiteName, parameters.Curve, parameters.G, hash, m, n);
    }

    private static Spake2Suite CreateSiec()
    {
        var curve = new FpCurve(
            new BigInteger(SiecPrime),
            BigInteger.Zero,
            BigInteger.ValueOf(19),
            new BigInteger(SiecOrder),
            BigInteger.One);
        var g = curve.CreatePoint(BigInteger.ValueOf(5), BigInteger.ValueOf(12));
        return new Spake2Suite("siec", "SPAKE2-SIEC255-SHA256-HKDF-HMAC", curve, g, HashAlgorithmName.SHA256, SiecM, SiecN);
    }
}

using BenchmarkDotNet.Attributes;
using CrocNet.Pake;

namespace CrocNet.Benchmarks;

/// <summary>
/// A complete two-party SPAKE2 handshake in one process: both Starts, both Finishes, both confirmations checked.
/// With Argon2id both sides derive w, as two real peers would (each on its own machine), so the Argon2id share
/// of one peer's wall time is about half of what this measures.
/// </summary>
[MemoryDiagnoser]
public class PakeHandshakeBenchmarks
{
    private const string Secret = "autumn-rocket-violin";
    private const string Channel = "k7f2q9xm";

    private Spake2Suite _suite = Spake2Suite.P256;
    private byte[] _w = [];

    /// <summary>The curve short name.</summary>
    [Params("p256", "p384", "p521", "siec")]
    public string Curve { get; set; } = "p256";

    /// <summary>Whether each side derives w with Argon2id (the real protocol) or reuses a precomputed w (the curve work alone).</summary>
    [Params(false, true)]
    public bool Argon2id { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _suite = Spake2Suite.Get(Curve);
        _w = Spake2Password.DeriveW(_suite, System.Text.Encoding.UTF8.GetBytes(Secret), CrocPake.Salt(Channel));
    }

    [Benchmark]
    public int Handshake()
    {
        using var sender = Argon2id
            ? CrocPake.Start(_suite, Spake2Role.Sender, Secret, Channel)
            : Spake2.Start(_suite, Spake2Role.Sender, _w, CrocPake.Identities, CrocPake.Aad(_suite, Channel));
        using var recipient = Argon2id
            ? CrocPake.Start(_suite, Spake2Role.Recipient, Secret, Channel)
            : Spake2.Start(_suite, Spake2Role.Recipient, _w, CrocPake.Identities, CrocPake.Aad(_suite, Channel));
        using var recipientKeys = recipient.Finish(sender.Message.Span);
        using var senderKeys = sender.Finish(recipient.Message.Span);
        senderKeys.VerifyPeerConfirmation(recipientKeys.Confirmation);
        recipientKeys.VerifyPeerConfirmation(senderKeys.Confirmation);
        return senderKeys.SessionKey[0];
    }
}

/// <summary>Argon2id alone (protocol version 1 cost: 19 MiB, 2 passes, 1 lane), per curve (only the output length differs).</summary>
[MemoryDiagnoser]
public class DeriveWBenchmarks
{
    private static readonly byte[] Password = "autumn-rocket-violin"u8.ToArray();
    private static readonly byte[] Salt = CrocPake.Salt("k7f2q9xm");
    private Spake2Suite _suite = Spake2Suite.P256;

    /// <summary>The curve short name.</summary>
    [Params("p256", "p521")]
    public string Curve { get; set; } = "p256";

    [GlobalSetup]
    public void Setup() => _suite = Spake2Suite.Get(Curve);

    [Benchmark]
    public byte[] DeriveW() => Spake2Password.DeriveW(_suite, Password, Salt);
}

/// <summary>
/// Decoding a peer's compressed point: BouncyCastle's generic decoder against ours (<c>DecodePeerPoint</c>, which adds
/// the protocol's checks and, on SIEC, decompresses with Tonelli–Shanks instead of BouncyCastle's square root).
/// </summary>
[MemoryDiagnoser]
public class PointDecodeBenchmarks
{
    private Spake2Suite _suite = Spake2Suite.P256;
    private byte[] _encoded = [];

    /// <summary>The curve short name.</summary>
    [Params("p256", "siec")]
    public string Curve { get; set; } = "p256";

    [GlobalSetup]
    public void Setup()
    {
        _suite = Spake2Suite.Get(Curve);
        _encoded = _suite.M.GetEncoded(true);
    }

    [Benchmark(Baseline = true)]
    public bool BouncyCastle() => _suite.Curve.DecodePoint(_encoded).IsInfinity;

    [Benchmark]
    public bool DecodePeerPoint() => _suite.DecodePeerPoint(_encoded).IsInfinity;
}

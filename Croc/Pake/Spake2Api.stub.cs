// CONTRACT STUB — to be replaced by the real implementation (see issue 2). Signatures are fixed.
using System.Diagnostics.CodeAnalysis;

namespace CrocNet.Pake;

/// <summary>Which side of SPAKE2 this party plays.</summary>
public enum Spake2Role
{
    /// <summary>Party A, the sender; blinds with M.</summary>
    Sender,

    /// <summary>Party B, the recipient; blinds with N.</summary>
    Recipient,
}

/// <summary>A SPAKE2 ciphersuite: the curve, its M and N, and its hash.</summary>
public sealed class Spake2Suite
{
    private Spake2Suite(string name) => Name = name;

    /// <summary>The short name used on the wire: p256, p384, p521 or siec.</summary>
    public string Name { get; }

    /// <summary>Every supported short name.</summary>
    public static IReadOnlyList<string> Names { get; } = ["p256", "p384", "p521", "siec"];

    /// <summary>Finds a suite by short name.</summary>
    public static bool TryGet(string? name, [NotNullWhen(true)] out Spake2Suite? suite)
    {
        suite = name is not null && Names.Contains(name) ? new Spake2Suite(name) : null;
        return suite is not null;
    }

    /// <summary>Finds a suite by short name or throws <see cref="ArgumentException"/>.</summary>
    public static Spake2Suite Get(string name) =>
        TryGet(name, out var s) ? s : throw new ArgumentException($"Unknown curve '{name}'.", nameof(name));
}

/// <summary>The two identities bound into the transcript.</summary>
public sealed record Spake2Identities(string A, string B);

/// <summary>One party's run of SPAKE2.</summary>
public sealed class Spake2 : IDisposable
{
    private Spake2() { }

    /// <summary>This party's public message (pA or pB), SEC1 compressed.</summary>
    public ReadOnlyMemory<byte> Message => throw new NotImplementedException();

    /// <summary>Starts a run.</summary>
    public static Spake2 Start(Spake2Suite suite, Spake2Role role, ReadOnlySpan<byte> w, Spake2Identities identities, ReadOnlySpan<byte> aad) => throw new NotImplementedException();

    /// <summary>Finishes with the peer's message.</summary>
    public Spake2Keys Finish(ReadOnlySpan<byte> peerMessage) => throw new NotImplementedException();

    /// <summary>Clears secrets.</summary>
    public void Dispose() { }
}

/// <summary>The keys of a finished run.</summary>
public sealed class Spake2Keys : IDisposable
{
    private Spake2Keys() { }

    /// <summary>Ke.</summary>
    public ReadOnlySpan<byte> SessionKey => throw new NotImplementedException();

    /// <summary>This party's confirmation (cA or cB).</summary>
    public ReadOnlySpan<byte> Confirmation => throw new NotImplementedException();

    /// <summary>Checks the peer's confirmation in constant time; throws <see cref="CrocAuthenticationException"/>.</summary>
    public void VerifyPeerConfirmation(ReadOnlySpan<byte> peerConfirmation) => throw new NotImplementedException();

    /// <summary>Clears secrets.</summary>
    public void Dispose() { }
}

/// <summary>Turns a password into the SPAKE2 scalar w with Argon2id.</summary>
public static class Spake2Password
{
    /// <summary>Argon2id(password, salt) reduced modulo the suite's group order; big-endian, order-length bytes.</summary>
    public static byte[] DeriveW(Spake2Suite suite, ReadOnlySpan<byte> password, ReadOnlySpan<byte> salt) => throw new NotImplementedException();
}

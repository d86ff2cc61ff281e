using System.Security.Cryptography;

namespace CrocNet.Pake;

/// <summary>The keys of a finished SPAKE2 run: the session key Ke and the two key confirmations.</summary>
/// <remarks>
/// Ke must not be used until <see cref="VerifyPeerConfirmation"/> has succeeded. Dispose clears every key.
/// </remarks>
internal sealed class Spake2Keys : IDisposable
{
    private readonly byte[] _sessionKey;
    private readonly byte[] _confirmation;
    private readonly byte[] _expectedPeerConfirmation;
    private bool _disposed;

    internal Spake2Keys(Spake2Suite suite, Spake2Role role, byte[] sessionKey, byte[] confirmation, byte[] expectedPeerConfirmation, Spake2Trace? trace)
    {
        Suite = suite;
        Role = role;
        _sessionKey = sessionKey;
        _confirmation = confirmation;
        _expectedPeerConfirmation = expectedPeerConfirmation;
        Trace = trace;
    }

    /// <summary>The suite of the run.</summary>
    public Spake2Suite Suite { get; }

    /// <summary>The side this party played.</summary>
    public Spake2Role Role { get; }

    /// <summary>Ke, the first half of Hash(TT): the input keying material for the data keys.</summary>
    /// <exception cref="ObjectDisposedException">The keys were disposed.</exception>
    public ReadOnlySpan<byte> SessionKey
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _sessionKey;
        }
    }

    /// <summary>This party's confirmation to send: cA = MAC(KcA, TT) for the sender, cB = MAC(KcB, TT) for the recipient.</summary>
    /// <exception cref="ObjectDisposedException">The keys were disposed.</exception>
    public ReadOnlySpan<byte> Confirmation
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _confirmation;
        }
    }

    /// <summary>Every intermediate value, only when the run was started by the test hook.</summary>
    internal Spake2Trace? Trace { get; }

    /// <summary>Checks the peer's confirmation in constant time.</summary>
    /// <param name="peerConfirmation">cB when this party is the sender, cA when it is the recipient.</param>
    /// <exception cref="CrocAuthenticationException">The confirmation does not match: the peer used another password, identities, AAD or suite.</exception>
    /// <exception cref="ObjectDisposedException">The keys were disposed.</exception>
    public void VerifyPeerConfirmation(ReadOnlySpan<byte> peerConfirmation)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);

        // FixedTimeEquals takes the same time for any content of equal length; a wrong length is not secret.
        if (!CryptographicOperations.FixedTimeEquals(_expectedPeerConfirmation, peerConfirmation))
        {
            throw new CrocAuthenticationException();
        }
    }

    /// <summary>Clears Ke and the confirmations.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        CryptographicOperations.ZeroMemory(_sessionKey);
        CryptographicOperations.ZeroMemory(_confirmation);
        CryptographicOperations.ZeroMemory(_expectedPeerConfirmation);
    }
}

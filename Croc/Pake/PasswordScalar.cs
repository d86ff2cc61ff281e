using CrocNet.Codes;

namespace CrocNet.Pake;

/// <summary>
/// The password scalar w, derived in the background from the moment the code is known: Argon2id is the
/// slowest step of the handshake, and it needs only the secret, the channel and the curve.
/// </summary>
internal sealed class PasswordScalar : IDisposable
{
    private readonly CodePhrase _code;
    private readonly Spake2Suite _guess;
    private readonly Task<byte[]> _derived;

    public PasswordScalar(CodePhrase code, Spake2Suite likelySuite)
    {
        _code = code;
        _guess = likelySuite;
        _derived = Task.Run(() => CrocPake.DeriveW(likelySuite, code.Secret, code.Channel));
    }

    /// <summary>w for <paramref name="suite"/>: the background result when the guess was right, else derived now.</summary>
    public async Task<byte[]> GetAsync(Spake2Suite suite, CancellationToken cancellationToken)
    {
        if (suite.Name == _guess.Name)
        {
            return (byte[])(await _derived.WaitAsync(cancellationToken).ConfigureAwait(false)).Clone();
        }

        return await Task.Run(() => CrocPake.DeriveW(suite, _code.Secret, _code.Channel), cancellationToken).ConfigureAwait(false);
    }

    public void Dispose()
    {
        // The background derivation may still be running; wipe its result whenever it lands.
        _derived.ContinueWith(
            t => System.Security.Cryptography.CryptographicOperations.ZeroMemory(t.Result),
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }
}

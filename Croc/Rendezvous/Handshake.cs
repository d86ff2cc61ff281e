using CrocNet.Codes;
using CrocNet.Diagnostics;
using CrocNet.Pake;
using CrocNet.Protocol;
using Microsoft.Extensions.Logging;

namespace CrocNet.Rendezvous;

/// <summary>The outcome of the HTTP part of a session: a confirmed key and where to connect.</summary>
internal sealed class HandshakeResult : IDisposable
{
    public required Spake2Keys Keys { get; init; }

    public required RelayState State { get; init; }

    public required string Curve { get; init; }

    public void Dispose() => Keys.Dispose();
}

/// <summary>
/// The seed's sequence over <c>/channel</c>: sender posts X; recipient posts Y and its confirmation;
/// the sender checks it before revealing its own; the recipient checks that. A mismatch on either side
/// ends the channel before any metadata or data can move.
/// </summary>
internal static class Handshake
{
    public static async Task<HandshakeResult> RunSenderAsync(
        IRelaySession relay, CodePhrase code, Spake2Suite suite, PasswordScalar password, TimeSpan peerTimeout, ILogger logger, Action onPeerAnswered, CancellationToken cancellationToken)
    {
        using var spake = await StartAsync(password, suite, Spake2Role.Sender, code.Channel, cancellationToken).ConfigureAwait(false);
        var message = spake.Message.ToArray();
        var state = await PostOnceAsync(relay, r => { r.X = message; r.Curve = suite.Name; }, s => s.X, message, cancellationToken).ConfigureAwait(false);

        Log.WaitingForPeer(logger, code.Channel);
        state = await relay.WaitForAsync(state, s => s.Y is not null && s.HhK is not null, peerTimeout, cancellationToken).ConfigureAwait(false);
        if (state.Closed)
        {
            throw new CrocRelayException(CrocErrorCode.ConnectionLost, "The channel was closed before a recipient answered.", CrocWire.Errors.Closed);
        }

        onPeerAnswered();
        var keys = spake.Finish(state.Y);
        try
        {
            VerifyOrLog(keys, state.HhK!, code.Channel, logger);
            var confirmation = keys.Confirmation.ToArray();
            state = await PostOnceAsync(relay, r => r.HK = confirmation, s => s.HK, confirmation, cancellationToken).ConfigureAwait(false);
            Log.KeyConfirmed(logger, code.Channel);
            return new HandshakeResult { Keys = keys, State = state, Curve = suite.Name };
        }
        catch
        {
            keys.Dispose();
            throw;
        }
    }

    public static async Task<HandshakeResult> RunRecipientAsync(
        IRelaySession relay, RelayState joined, CodePhrase code, PasswordScalar password, TimeSpan peerTimeout, ILogger logger, CancellationToken cancellationToken)
    {
        var state = await relay.WaitForAsync(joined, s => s.X is not null, peerTimeout, cancellationToken).ConfigureAwait(false);
        if (state.Closed)
        {
            throw new CrocRelayException(CrocErrorCode.ConnectionLost, "The sender closed the channel before the key exchange.", CrocWire.Errors.Closed);
        }

        // The sender chooses the curve; the AAD binds it, so a relay that lies about it fails confirmation.
        if (!Spake2Suite.TryGet(state.Curve ?? "p256", out var suite))
        {
            throw new CrocProtocolException($"The channel announces an unsupported curve '{state.Curve}'.");
        }

        using var spake = await StartAsync(password, suite, Spake2Role.Recipient, code.Channel, cancellationToken).ConfigureAwait(false);
        var keys = spake.Finish(state.X);
        try
        {
            var message = spake.Message.ToArray();
            var confirmation = keys.Confirmation.ToArray();
            state = await PostOnceAsync(relay, r => { r.Y = message; r.HhK = confirmation; }, s => s.Y, message, cancellationToken).ConfigureAwait(false);
            // A channel closed before h_k (also when that happens between two polls) comes back as a closed state.
            state = await relay.WaitForAsync(state, s => s.HK is not null, peerTimeout, cancellationToken).ConfigureAwait(false);
            if (state.HK is not { } senderConfirmation)
            {
                // The sender checks our confirmation first and walks away on a mismatch without revealing its own.
                Log.KeyConfirmationFailed(logger, code.Channel);
                // From here that cannot be told apart from a sender that stopped at this very moment; the mismatch is
                // by far the likelier, and the message says both.
                throw new CrocAuthenticationException(
                    "The sender ended the exchange during key confirmation: most likely the two sides used different codes " +
                    "(or the sender stopped just then). Check the code and try again.");
            }

            VerifyOrLog(keys, senderConfirmation, code.Channel, logger);
            Log.KeyConfirmed(logger, code.Channel);
            return new HandshakeResult { Keys = keys, State = state, Curve = suite.Name };
        }
        catch
        {
            keys.Dispose();
            throw;
        }
    }

    private static async Task<Spake2> StartAsync(PasswordScalar password, Spake2Suite suite, Spake2Role role, string channel, CancellationToken cancellationToken)
    {
        var w = await password.GetAsync(suite, cancellationToken).ConfigureAwait(false);
        try
        {
            return CrocPake.Start(suite, role, w, channel);
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(w);
        }
    }

    private static void VerifyOrLog(Spake2Keys keys, byte[] peerConfirmation, string channel, ILogger logger)
    {
        try
        {
            keys.VerifyPeerConfirmation(peerConfirmation);
        }
        catch (CrocAuthenticationException)
        {
            Log.KeyConfirmationFailed(logger, channel);
            throw;
        }
    }

    /// <summary>
    /// Posts a set-once value. If a retried request finds it already set, the first attempt got through:
    /// accept that only when the stored value is exactly ours.
    /// </summary>
    private static async Task<RelayState> PostOnceAsync(
        IRelaySession relay, Action<ChannelRequest> action, Func<RelayState, byte[]?> stored, byte[] ours, CancellationToken cancellationToken)
    {
        try
        {
            return await relay.PostAsync(action, cancellationToken).ConfigureAwait(false);
        }
        catch (CrocRelayException ex) when (ex.RelayCode == CrocWire.Errors.AlreadySet)
        {
            var state = await relay.PostAsync(null, cancellationToken).ConfigureAwait(false);
            if (stored(state) is { } value && value.AsSpan().SequenceEqual(ours))
            {
                return state;
            }

            throw;
        }
    }
}

using CrocNet.Codes;
using CrocNet.Pake;
using CrocNet.Protocol;
using CrocNet.Rendezvous;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrocNet.Tests.Rendezvous;

/// <summary>The key exchange over a scripted in-memory channel that keeps the relay's rules (set once, in order, rev grows).</summary>
public class HandshakeTests
{
    private static readonly TimeSpan PeerTimeout = TimeSpan.FromSeconds(20);

    [TestCase("p256")]
    [TestCase("siec")]
    [CancelAfter(30_000)]
    public async Task BothSides_SameCode_AgreeOnTheSessionKey(string curve, CancellationToken cancellationToken)
    {
        var code = CodePhrase.Generate();
        var channel = new InMemoryChannel(code.Channel);

        var (sender, recipient) = await RunAsync(channel, code, code, curve, cancellationToken, out _);

        using (sender)
        using (recipient)
        {
            Assert.That(sender.Keys.SessionKey.ToArray(), Is.EqualTo(recipient.Keys.SessionKey.ToArray()));
            Assert.That(recipient.Curve, Is.EqualTo(curve), "the recipient follows the sender's curve");
            Assert.That(channel.Current.HK, Is.Not.Null);
        }
    }

    [Test]
    [CancelAfter(30_000)]
    public void BothSides_DifferentSecrets_BothFailAuthenticationAndTheSenderNeverRevealsItsConfirmation(CancellationToken cancellationToken)
    {
        var code = CodePhrase.Generate();
        var wrong = CodePhrase.Parse(code.Channel + "-not-the-same-words");
        var channel = new InMemoryChannel(code.Channel);

        var both = RunAsync(channel, code, wrong, "p256", cancellationToken, out var sides);

        Assert.ThrowsAsync<CrocAuthenticationException>(async () => await both);
        Assert.That(sides.Sender.Exception?.InnerException, Is.TypeOf<CrocAuthenticationException>(), "the sender checked the recipient's confirmation");
        Assert.That(sides.Recipient.Exception?.InnerException, Is.TypeOf<CrocAuthenticationException>(), "the recipient was never shown h_k");
        Assert.That(channel.Current.HK, Is.Null, "h_k is only posted after the recipient's confirmation verified");
        Assert.That(channel.Current.Closed, Is.True);
    }

    [Test]
    [CancelAfter(30_000)]
    public void Recipient_ChannelClosedBeforeX_ConnectionLostNotAFabricatedHttpStatus(CancellationToken cancellationToken)
    {
        var code = CodePhrase.Generate();
        var channel = new InMemoryChannel(code.Channel);
        channel.Close();
        using var password = new PasswordScalar(code, Spake2Suite.P256);

        var ex = Assert.ThrowsAsync<CrocRelayException>(() => Handshake.RunRecipientAsync(
            channel.Recipient, channel.Current, code, password, PeerTimeout, NullLogger.Instance, cancellationToken));

        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.ConnectionLost));
        Assert.That(ex.RelayCode, Is.EqualTo(CrocWire.Errors.Closed));
        Assert.That(ex.StatusCode, Is.Null, "no HTTP reply said so");
    }

    private static Task<(HandshakeResult Sender, HandshakeResult Recipient)> RunAsync(
        InMemoryChannel channel, CodePhrase senderCode, CodePhrase recipientCode, string curve, CancellationToken cancellationToken,
        out (Task<HandshakeResult> Sender, Task<HandshakeResult> Recipient) sides)
    {
        var suite = Spake2Suite.Get(curve);
        var senderPassword = new PasswordScalar(senderCode, suite);
        var recipientPassword = new PasswordScalar(recipientCode, Spake2Suite.P256);
        var sender = Handshake.RunSenderAsync(channel.Sender, senderCode, suite, senderPassword, PeerTimeout, NullLogger.Instance, static () => { }, cancellationToken);
        var recipient = Handshake.RunRecipientAsync(channel.Recipient, channel.Current, recipientCode, recipientPassword, PeerTimeout, NullLogger.Instance, cancellationToken);
        sides = (sender, recipient);
        return BothAsync(channel, sender, recipient, senderPassword, recipientPassword);
    }

    private static async Task<(HandshakeResult Sender, HandshakeResult Recipient)> BothAsync(
        InMemoryChannel channel, Task<HandshakeResult> sender, Task<HandshakeResult> recipient, PasswordScalar senderPassword, PasswordScalar recipientPassword)
    {
        using var _ = senderPassword;
        using var __ = recipientPassword;
        var first = await Task.WhenAny(sender, recipient);
        if (first.IsFaulted)
        {
            // A side that fails closes the channel, as the session does, so the other stops waiting.
            channel.Close();
            await Task.WhenAll(Settle(sender), Settle(recipient));
            throw first.Exception!.InnerException!;
        }

        await Task.WhenAll(Settle(sender), Settle(recipient));
        return (await sender, await recipient);

        static async Task Settle(Task task)
        {
            try
            {
                await task;
            }
            catch (Exception)
            {
                // Observed through the first fault above.
            }
        }
    }

    /// <summary>The relay's blackboard for one channel: set-once values in protocol order, rev, long-poll wake-ups.</summary>
    private sealed class InMemoryChannel(string name)
    {
        private readonly Lock _lock = new();
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private RelayState _state = new() { Channel = name, Rev = 1, Ports = [1] };

        public IRelaySession Sender => new Participant(this, ParticipantRole.Sender);

        public IRelaySession Recipient => new Participant(this, ParticipantRole.Recipient);

        public RelayState Current
        {
            get
            {
                lock (_lock)
                {
                    return Copy(_state);
                }
            }
        }

        public void Close() => Apply(ParticipantRole.Sender, r => r.Close = true);

        public RelayState Apply(ParticipantRole role, Action<ChannelRequest>? action)
        {
            var request = new ChannelRequest { Channel = name, Uuid = "u" };
            action?.Invoke(request);
            lock (_lock)
            {
                if (_state.Closed)
                {
                    throw new CrocRelayException(CrocErrorCode.RelayRefused, "closed", CrocWire.Errors.Closed, 410);
                }

                var next = Copy(_state);
                if (request.Close == true)
                {
                    next.Closed = true;
                }
                else if (request.X is not null)
                {
                    Require(role == ParticipantRole.Sender && next.X is null);
                    (next.X, next.Curve) = (request.X, request.Curve);
                }
                else if (request.Y is not null)
                {
                    Require(role == ParticipantRole.Recipient && next.X is not null && next.Y is null);
                    (next.Y, next.HhK) = (request.Y, request.HhK);
                }
                else if (request.HK is not null)
                {
                    Require(role == ParticipantRole.Sender && next.Y is not null && next.HK is null);
                    next.HK = request.HK;
                }
                else
                {
                    return Copy(_state);
                }

                next.Rev++;
                _state = next;
                _changed.TrySetResult();
                _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
                return Copy(_state);
            }
        }

        public async Task<RelayState> WaitAsync(Func<RelayState, bool> isDone, TimeSpan timeout, CancellationToken cancellationToken)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(timeout);
            while (true)
            {
                Task changed;
                lock (_lock)
                {
                    if (isDone(_state) || _state.Closed)
                    {
                        return Copy(_state);
                    }

                    changed = _changed.Task;
                }

                try
                {
                    await changed.WaitAsync(deadline.Token);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new CrocTimeoutException("timeout");
                }
            }
        }

        private static void Require(bool ok)
        {
            if (!ok)
            {
                throw new CrocRelayException(CrocErrorCode.RelayRefused, "not allowed", CrocWire.Errors.NotReady, 409);
            }
        }

        private static RelayState Copy(RelayState s) => new()
        {
            Channel = s.Channel, Curve = s.Curve, Rev = s.Rev, X = s.X, Y = s.Y, HhK = s.HhK, HK = s.HK, Closed = s.Closed, Ports = s.Ports,
        };

        private sealed class Participant(InMemoryChannel channel, ParticipantRole role) : IRelaySession
        {
            public string Channel => channel.Current.Channel;

            public Task<RelayState> PostAsync(Action<ChannelRequest>? action, CancellationToken cancellationToken) => Task.FromResult(channel.Apply(role, action));

            public Task<RelayState> WaitForAsync(RelayState current, Func<RelayState, bool> isDone, TimeSpan timeout, CancellationToken cancellationToken) =>
                channel.WaitAsync(isDone, timeout, cancellationToken);
        }
    }
}

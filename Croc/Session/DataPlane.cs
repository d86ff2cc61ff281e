using System.Security.Cryptography;
using CrocNet.Crypto;
using CrocNet.Pake;
using CrocNet.Transfer;
using CrocNet.Transport;

namespace CrocNet.Session;

/// <summary>
/// Turns a confirmed session key and the stapled connections into one side's data plane: per connection and
/// direction a frame writer or reader under its own HKDF key (docs/protocol.md).
/// </summary>
internal static class DataPlane
{
    /// <summary>Frames carry one chunk plus its record header; the rest is headroom for control messages.</summary>
    public const int MaxFramePayload = FileSender.ChunkSize + (64 * 1024);

    public static TransferContext Create(
        Spake2Keys keys, Stream[] streams, StreamDirection own, ProgressTracker tracker, TimeSpan idleTimeout, TimeSpan decisionTimeout, TimeProvider time,
        ILaneDialer? dialer = null, Action<int, long>? reconnected = null)
    {
        var key = keys.SessionKey.ToArray();
        try
        {
            return Create(key, streams, own, tracker, idleTimeout, decisionTimeout, time, dialer, reconnected);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>The same from a raw session key (tests run the data plane over in-memory pipes with one).</summary>
    public static TransferContext Create(
        ReadOnlySpan<byte> sessionKey, Stream[] streams, StreamDirection own, ProgressTracker tracker, TimeSpan idleTimeout, TimeSpan decisionTimeout, TimeProvider time,
        ILaneDialer? dialer = null, Action<int, long>? reconnected = null, int window = LaneSettings.DefaultWindow)
    {
        // Both sides write on every lane now (the recipient its acknowledgements) and read every lane.
        TransferContext? context = null;
        var settings = new LaneSettings
        {
            Window = window,
            FramePayload = MaxFramePayload,
            Dialer = dialer,
            Time = time,
            Reconnected = reconnected,
            // An acknowledgement is the peer saying it got something: progress, as far as the idle watchdog goes.
            Acknowledged = () => context?.Touch(),
        };
        var lanes = new ReliableLane[streams.Length];
        for (var i = 0; i < streams.Length; i++)
        {
            // A leg whose lane already had a pair (the relay said "ok again") starts with a greeting, as the peer's does.
            var leg = ReattachedLeg.Unwrap(streams[i], out var reattached);
            lanes[i] = new ReliableLane(i, leg, sessionKey, own, settings, greetFirst: reattached);
        }

        context = new TransferContext(lanes, tracker, idleTimeout, time) { DecisionTimeout = decisionTimeout, ResumeKey = ResumeHandshake.DeriveKey(sessionKey) };
        return context;
    }
}

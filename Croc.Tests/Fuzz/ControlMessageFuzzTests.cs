using System.Text.Json.Serialization.Metadata;
using CrocNet.Crypto;
using CrocNet.Files;
using CrocNet.Transfer;
using CsCheck;

namespace CrocNet.Tests.Fuzz;

/// <summary>The peer's JSON control messages (accept, abort, done, a trailer piece, progress) (inside authenticated frames, but written by a possibly hostile peer).</summary>
public class ControlMessageFuzzTests
{
    [Test]
    public void Parse_AnyPayload_MessageOrProtocolError()
    {
        var gen = Gen.Select(Gen.Int[0, 4], Fuzzing.HostileBytes(Fuzzing.JsonAlphabet + "acceptmsgfileindexsizeabort", 300));

        Fuzzing.Run(
            gen,
            ((int Kind, byte[] Payload) c) =>
            {
                switch (c.Kind)
                {
                    case 0: Parse(FrameType.Accept, c.Payload, TransferJsonContext.Default.AcceptMessage); break;
                    case 1:
                        var abort = Parse(FrameType.Abort, c.Payload, TransferJsonContext.Default.AbortMessage);
                        var error = ControlMessages.FromAbort(abort, peerIsRecipient: true);
                        Fuzzing.Check(!error.Message.Any(char.IsControl), "the peer's words are made safe for a terminal");
                        break;
                    case 2: Parse(FrameType.Done, c.Payload, TransferJsonContext.Default.DoneMessage); break;
                    case 3: Parse(FrameType.Trailer, c.Payload, TransferJsonContext.Default.TrailerMessage); break;
                    default: Parse(FrameType.Progress, c.Payload, TransferJsonContext.Default.ProgressMessage); break;
                }
            },
            typeof(CrocProtocolException));
    }

    private static T Parse<T>(FrameType type, byte[] payload, JsonTypeInfo<T> info) =>
        ControlMessages.Parse(new Frame(type, FrameFlags.None, payload), info);
}

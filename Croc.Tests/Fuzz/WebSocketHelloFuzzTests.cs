using System.IO.Pipelines;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using CrocNet.Relay;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Diagnostics;
using CrocNet.Relay.Staple;
using CsCheck;
using Microsoft.Extensions.Options;

namespace CrocNet.Tests.Fuzz;

/// <summary>
/// The WebSocket hello under hostile input. The parser: <see cref="Fuzzing.Iterations"/> messages (hostile bytes,
/// templated hellos, oversize ones) are accepted well-formed or refused as <c>bad_request</c>, never thrown. The leg:
/// a tenth as many cases, each a real WebSocket (in memory) whose first message — text, binary or a close, in one to
/// three frames — goes through the relay's WebSocket leg and its staple session against a live, confirmed channel.
/// Oracle: the session never throws; the answer is <c>ok</c> or <c>error &lt;code&gt;</c> from the protocol's list (or,
/// for a text message that is not UTF-8, the WebSocket's own close); a refused hello changes nothing (the channel's
/// <c>rev</c>, the waiting legs); an accepted one waits until its client closes, then frees its lane.
/// </summary>
public sealed class WebSocketHelloFuzzTests : IDisposable
{
    private static readonly string[] Codes = ["bad_request", "bad_uuid", "ip_limit", "timeout"];
    private static readonly IPAddress SenderAddress = IPAddress.Parse("10.2.0.1");
    private static readonly IPAddress RecipientAddress = IPAddress.Parse("10.2.0.2");
    private static readonly IPAddress ThirdAddress = IPAddress.Parse("10.2.0.3");
    private readonly List<Live> _fixtures = [];
    private readonly Lock _gate = new();

    public void Dispose()
    {
        foreach (var live in _fixtures)
        {
            live.Dispose();
        }
    }

    [Test]
    public void Parse_AnyMessage_AcceptedWellFormedOrBadRequest()
    {
        // Names and uuids valid half the time, so the lane rules are reached often.
        var names = Gen.OneOf(Gen.String[Gen.Char["abcz019"], 1, 64], Gen.String[Gen.Char["abc0129-_\u001b\""], 0, 80]);
        var uuids = Gen.OneOf(Gen.String[Gen.Char["0123456789abcdef"], 1, 40], Gen.String[Gen.Char["uvw-0\\\"\u0000"], 0, 200]);
        var templated = Gen.Select(names, uuids, Gen.Int[-3, 9], Gen.Bool)
            .Select((channel, uuid, lane, named) => Encoding.UTF8.GetBytes(named
                ? $$"""{"channel":"{{channel}}","uuid":"{{uuid}}","lane":{{lane}}}"""
                : $$"""{"channel":"{{channel}}","uuid":"{{uuid}}"}"""));
        var gen = Gen.Select(Gen.Frequency((1, Fuzzing.HostileBytes(Fuzzing.JsonAlphabet, 1100)), (1, templated)), Gen.Int[1, 8]);

        Fuzzing.Run(gen, ((byte[] Message, int Lanes) c) =>
        {
            var (hello, error) = WebSocketHello.Parse(c.Message, c.Lanes);
            if (hello is not null)
            {
                Fuzzing.Check(c.Message.Length <= WebSocketHello.MaxLength, "an accepted hello fits in 1 KiB");
                Fuzzing.Check(ChannelNames.IsValid(hello.Channel) && hello.Uuid.Length is > 0 and <= 128, "an accepted hello is well-formed");
                Fuzzing.Check(hello.Lane is { } lane && lane >= 0 && lane < c.Lanes, "an accepted hello names a lane in range");
            }
            else
            {
                Fuzzing.Check(error.Code == RelayErrorCode.BadRequest && error.Message.Length > 0, "a refused hello is a bad request");
            }
        });
    }

    [Test]
    [CancelAfter(60_000)]
    public void Hello_AnyFirstMessage_ProtocolAnswerAndRefusalsChangeNothing(CancellationToken cancellationToken)
    {
        // One relay core and one confirmed channel per fuzzing thread, so each case's before/after comparison sees
        // only its own leg.
        using var perThread = new ThreadLocal<Live>(() =>
        {
            var live = Live.OpenAsync(cancellationToken).GetAwaiter().GetResult();
            lock (_gate)
            {
                _fixtures.Add(live);
            }

            return live;
        });
        string[] lanes = ["0", "3", "1", "4", "-1", "\"0\"", "1.5", "null", "99999999999", "2"];
        var templated = Gen.Select(Gen.Int[0, 6], Gen.Int[0, 5], Gen.Int[0, lanes.Length], Gen.Int[0, 3]);
        var payload = Gen.Frequency(
            (2, templated.Select(t => (Raw: (byte[]?)null, Template: t, Pad: 0))),
            (1, Fuzzing.HostileBytes(Fuzzing.JsonAlphabet, 1100).Select(b => (Raw: (byte[]?)b, Template: (0, 0, 0, 0), Pad: 0))),
            (1, Gen.Int[1000, 1100].Select(n => (Raw: (byte[]?)null, Template: (0, 0, 0, 0), Pad: n))));
        var gen = Gen.Select(payload, Gen.Int[0, 9], Gen.Int[1, 3], Gen.Int[0, 9]);
        var cases = 0;
        var accepted = 0;

        var iterations = Math.Max(1, Fuzzing.Iterations / 10);
        gen.Sample((((byte[]? Raw, (int C, int U, int L, int Extra) Template, int Pad) Body, int Kind, int Frames, int From) c) =>
        {
            var live = perThread.Value!;
            var message = c.Body.Raw ?? (c.Body.Pad > 0 ? live.Padded(c.Body.Pad) : live.Templated(c.Body.Template, lanes));
            var type = c.Kind switch { 0 => WebSocketMessageType.Binary, 1 => WebSocketMessageType.Close, _ => WebSocketMessageType.Text };
            var address = c.From switch { 0 => ThirdAddress, < 5 => SenderAddress, _ => RecipientAddress };
            var answer = RunCaseAsync(live.Session, message, type, c.Frames, address, cancellationToken).GetAwaiter().GetResult();
            var after = live.Registry.GetAsync(live.Channel, cancellationToken).AsTask().GetAwaiter().GetResult()!;
            Interlocked.Increment(ref cases);
            if (answer == "ok")
            {
                Interlocked.Increment(ref accepted);
                Fuzzing.Check(type == WebSocketMessageType.Text, "only a text hello is accepted");
            }
            else if (answer is null)
            {
                Fuzzing.Check(type == WebSocketMessageType.Text && !IsUtf8(message), "only a text message that is not UTF-8 ends without an answer");
            }
            else
            {
                Fuzzing.Check(answer.StartsWith("error ", StringComparison.Ordinal) && Codes.Contains(answer[6..]), $"answer '{answer}'");
            }

            Fuzzing.Check(after.Rev == live.Rev, "a hello changed the channel");
            Fuzzing.Check(live.Registry.WaitingConnections == 0, "a leg still waits after its client closed");
        }, seed: Fuzzing.Seed, iter: iterations, threads: 2);

        Assert.That(cases, Is.EqualTo(iterations));
        Assert.That(accepted, Is.GreaterThan(0), "the generator reaches accepted hellos too");
    }

    /// <summary>A relay core with one confirmed channel: TCP accepted, no leg yet.</summary>
    private sealed class Live : IDisposable
    {
        private readonly RelayMetrics _metrics = new();
        private string[] _channels = [];
        private string[] _uuids = [];

        private Live()
        {
            Registry = new ChannelRegistry(
                Options.Create(new CrocRelayOptions
                {
                    Ports = [],
                    Lanes = 4,
                    MaxChannels = 1_000_000,
                    MaxChannelsPerAddress = 1_000_000,
                    MaxJoinsPerMinute = 100_000_000,
                    MaxFailedLookupsPerMinute = 100_000_000,
                }),
                new RelayClock(TimeProvider.System),
                _metrics);
            Session = new StapleSession(Registry);
        }

        public ChannelRegistry Registry { get; }

        public StapleSession Session { get; }

        public string Channel { get; private set; } = "";

        public string SenderUuid { get; private set; } = "";

        public long Rev { get; private set; }

        public static async Task<Live> OpenAsync(CancellationToken cancellationToken)
        {
            var live = new Live();
            var registry = live.Registry;
            var sender = (await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), SenderAddress, cancellationToken)).Value!;
            var channel = sender.State.Channel;
            var recipient = (await registry.JoinAsync(new JoinCommand(channel, null, ParticipantRole.Recipient), RecipientAddress, cancellationToken)).Value!;
            await registry.ExecuteAsync(new ChannelCommand(channel, sender.Uuid, ChannelAction.SetX, null, "AQ=="), SenderAddress, cancellationToken);
            await registry.ExecuteAsync(new ChannelCommand(channel, recipient.Uuid, ChannelAction.SetY, null, "Ag==", "Aw=="), RecipientAddress, cancellationToken);
            live.Rev = (await registry.ExecuteAsync(new ChannelCommand(channel, sender.Uuid, ChannelAction.SetHK, null, "BA=="), SenderAddress, cancellationToken)).Value!.Rev;
            live.Channel = channel;
            live.SenderUuid = sender.Uuid;
            live._channels = [channel, channel, channel, "nochannel", "", "UPPER", new string('a', 65)];
            live._uuids = [sender.Uuid, recipient.Uuid, sender.Uuid, "wrong", "", new string('f', 129)];
            return live;
        }

        public byte[] Templated((int C, int U, int L, int Extra) t, string[] lanes)
        {
            var lane = t.L == lanes.Length ? "" : $",\"lane\":{lanes[t.L]}";
            var more = t.Extra switch { 1 => ",\"auth\":\"x\"", 2 => ",\"future\":[1,{\"a\":2}]", 3 => ",\"lane\":0", _ => "" };
            return Encoding.UTF8.GetBytes($$"""{"channel":"{{_channels[t.C]}}","uuid":"{{_uuids[t.U]}}"{{lane}}{{more}}}""");
        }

        public byte[] Padded(int pad)
            => Encoding.UTF8.GetBytes($$"""{"channel":"{{Channel}}","uuid":"{{SenderUuid}}","lane":0,"pad":"{{new string('x', pad)}}"}""");

        public void Dispose()
        {
            Registry.Dispose();
            _metrics.Dispose();
        }
    }

    /// <summary>One leg: the client sends its first message, reads the answer, closes; returns the answer (null: none).</summary>
    private static async Task<string?> RunCaseAsync(StapleSession session, byte[] message, WebSocketMessageType type, int frames, IPAddress address, CancellationToken cancellationToken)
    {
        var (serverStream, clientStream) = DuplexStream.CreatePair();
        using var server = System.Net.WebSockets.WebSocket.CreateFromStream(serverStream, new WebSocketCreationOptions { IsServer = true });
        using var client = System.Net.WebSockets.WebSocket.CreateFromStream(clientStream, new WebSocketCreationOptions { IsServer = false });
        var connection = new WebSocketStapleConnection(server, 4, TimeProvider.System);
        var run = session.RunAsync(connection, lane: null, label: -1, address, helloDone: null, evicted: default, stopping: cancellationToken);

        if (type == WebSocketMessageType.Close)
        {
            await client.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cancellationToken);
        }
        else
        {
            var step = Math.Max(1, (message.Length + frames - 1) / frames);
            var offset = 0;
            do
            {
                var length = Math.Min(step, message.Length - offset);
                await client.SendAsync(message.AsMemory(offset, length), type, offset + length >= message.Length, cancellationToken);
                offset += length;
            }
            while (offset < message.Length);
        }

        string? answer = null;
        try
        {
            var buffer = new byte[256];
            var result = await client.ReceiveAsync(buffer.AsMemory(), cancellationToken);
            if (result.MessageType == WebSocketMessageType.Text)
            {
                answer = Encoding.ASCII.GetString(buffer, 0, result.Count);
            }
        }
        catch (WebSocketException)
        {
            // The relay cut the leg without an answer.
        }

        if (client.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            try
            {
                await client.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cancellationToken);
            }
            catch (WebSocketException)
            {
            }
        }

        await run.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
        await connection.Closed.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
        return answer;
    }

    private static bool IsUtf8(byte[] bytes)
    {
        try
        {
            _ = new UTF8Encoding(false, true).GetString(bytes);
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>Two streams joined back to back through in-memory pipes.</summary>
    private sealed class DuplexStream(Stream input, Stream output) : Stream
    {
        public static (Stream A, Stream B) CreatePair()
        {
            var toA = new Pipe();
            var toB = new Pipe();
            return (new DuplexStream(toA.Reader.AsStream(), toB.Writer.AsStream()), new DuplexStream(toB.Reader.AsStream(), toA.Writer.AsStream()));
        }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush() => output.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => output.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => input.Read(buffer, offset, count);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => input.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => input.ReadAsync(buffer, offset, count, cancellationToken);

        public override void Write(byte[] buffer, int offset, int count) => output.Write(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => output.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => output.WriteAsync(buffer, offset, count, cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                // The other side reads the end of the stream, as after a closed connection.
                output.Dispose();
                input.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}

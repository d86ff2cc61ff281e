using System.Net;
using System.Text;
using CrocNet.Relay;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Diagnostics;
using CrocNet.Relay.Hosting;
using CrocNet.Relay.Staple;
using CsCheck;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace CrocNet.Tests.Fuzz;

/// <summary>
/// The relay's parsers under hostile input: HTTP bodies for <c>/join</c> and <c>/channel</c> (through the real
/// handler and registry) and the TCP hello line. Oracle: an answer from the protocol's list, and a refused request
/// changes nothing (the live channel's <c>rev</c> stays put).
/// </summary>
public sealed class RelayRequestFuzzTests : IDisposable
{
    private static readonly int[] Allowed = [200, 400, 403, 404, 409, 410, 503];
    private static readonly IPAddress SenderAddress = IPAddress.Parse("10.1.0.1");
    private static readonly IPAddress RecipientAddress = IPAddress.Parse("10.1.0.2");
    private readonly ChannelRegistry _registry = new(
        Options.Create(new CrocRelayOptions
        {
            // No long-poll is held (wait is clamped to zero) and no limit stops the fuzzer before the parsers do.
            MaxWait = TimeSpan.Zero,
            MaxChannels = 1_000_000,
            MaxChannelsPerAddress = 1_000_000,
            MaxJoinsPerMinute = 100_000_000,
            MaxFailedLookupsPerMinute = 100_000_000,
        }),
        new RelayClock(TimeProvider.System),
        new RelayMetrics());

    public void Dispose() => _registry.Dispose();

    [Test]
    public async Task Channel_AnyBody_ProtocolAnswerAndRefusalsChangeNothing()
    {
        _registry.SetPorts([7001]);
        var handler = new RelayHttpHandler(_registry);
        // A live channel for every case: one that was closed or forgotten by an earlier case is replaced, so the
        // "a refusal changes nothing" check runs against a channel that could have changed.
        string channel = "", senderUuid = "", recipientUuid = "";
        async Task OpenAsync()
        {
            var sender = (await _registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), SenderAddress)).Value!;
            channel = sender.State.Channel;
            senderUuid = sender.Uuid;
            recipientUuid = (await _registry.JoinAsync(new JoinCommand(channel, null, ParticipantRole.Recipient), RecipientAddress)).Value!.Uuid;
        }

        await OpenAsync();
        string[] values = ["AQ==", "Ag", "!!", "", new string('A', 400), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="];
        var templated = Gen.Select(Gen.Int[0, 3], Gen.Int[0, 3], Gen.Int[0, 5], Gen.Int[0, 6], Gen.Int[-5, 50])
            .Select((n, u, v, action, number) => (n, u, v, action, number));
        var gen = Gen.Select(Gen.Frequency((1, Fuzzing.HostileBytes(Fuzzing.JsonAlphabet, 300).Select(b => ((byte[]?)b, (0, 0, 0, 0, 0)))), (2, templated.Select(t => ((byte[]?)null, t)))), Gen.Bool);
        var live = 0;

        Fuzzing.Run(gen, (((byte[]? Raw, (int n, int u, int v, int action, int number) T) Body, bool FromRecipient) c) =>
        {
            var before = _registry.GetAsync(channel).AsTask().GetAwaiter().GetResult();
            if (before is null || before.Closed)
            {
                OpenAsync().GetAwaiter().GetResult();
                before = _registry.GetAsync(channel).AsTask().GetAwaiter().GetResult();
            }

            live++;
            var body = c.Body.Raw ?? Templated(c.Body.T);
            var status = Invoke(handler.ChannelAsync, body, c.FromRecipient ? RecipientAddress : SenderAddress);
            var after = _registry.GetAsync(channel).AsTask().GetAwaiter().GetResult();
            Fuzzing.Check(Allowed.Contains(status), $"status {status}");
            Fuzzing.Check(status == 200 || before!.Rev == after?.Rev, $"a refused request ({status}) changed the channel");
            Fuzzing.Check(after is null || after.Rev >= before!.Rev, "rev only grows");
        }, threads: 1);

        Assert.That(live, Is.EqualTo(Fuzzing.Iterations), "every case met a live channel");

        byte[] Templated((int n, int u, int v, int action, int number) t)
        {
            var (n, u, v, action, number) = t;
            string[] names = [channel, channel, "nochannel", ""];
            string[] uuids = [senderUuid, recipientUuid, "wrong", ""];
            {
                var field = action switch { 0 => "x", 1 => "y", 2 => "hh_k", 3 => "h_k", 4 => "close", 5 => "wait", _ => "since" };
                var value = action switch { 4 => number % 2 == 0 ? "true" : "1", 5 or 6 => number.ToString(System.Globalization.CultureInfo.InvariantCulture), _ => $"\"{values[v]}\"" };
                return Encoding.UTF8.GetBytes($$"""{"channel":"{{names[n]}}","uuid":"{{uuids[u]}}","{{field}}":{{value}}}""");
            }
        }
    }

    [Test]
    public void Join_AnyBody_ProtocolAnswer()
    {
        _registry.SetPorts([7001]);
        var handler = new RelayHttpHandler(_registry);
        string[] roles = ["sender", "recipient", "Sender", "", "x"];
        string[] curves = ["p256", "siec", "p999", ""];
        var templated = Gen.Select(Gen.Int[0, 4], Gen.Int[0, 3], Gen.String[Gen.Char["abc019-_ \u00e9"], 0, 70])
            .Select((r, c, name) => Encoding.UTF8.GetBytes($$"""{"channel":"{{name}}","role":"{{roles[r]}}","curve":"{{curves[c]}}"}"""));

        Fuzzing.Run(Gen.Frequency((1, Fuzzing.HostileBytes(Fuzzing.JsonAlphabet + "rolesendcipt", 300)), (1, templated)), body =>
        {
            var status = Invoke(handler.JoinAsync, body, SenderAddress);
            Fuzzing.Check(Allowed.Contains(status), $"status {status}");
        });
    }

    [Test]
    public void Hello_AnyLine_ParsedOrRefusedNeverThrown()
    {
        var templated = Gen.Select(Gen.String[Gen.Char["abc0129-_\u001b\""], 0, 80], Gen.String[Gen.Char["uvw-0\\\"\u0000"], 0, 200])
            .Select((channel, uuid) => Encoding.UTF8.GetBytes($$"""{"channel":"{{channel}}","uuid":"{{uuid}}"}"""));

        Fuzzing.Run(Gen.Frequency((1, Fuzzing.HostileBytes(Fuzzing.JsonAlphabet, 1100)), (1, templated)), line =>
        {
            var (hello, error) = HelloReader.Parse(line);
            if (hello is not null)
            {
                Fuzzing.Check(ChannelNames.IsValid(hello.Channel) && hello.Uuid.Length is > 0 and <= 128, "an accepted hello is well-formed");
            }
            else
            {
                Fuzzing.Check(error.Code == RelayErrorCode.BadRequest, "a refused hello is a bad request");
            }
        });
    }

    private static int Invoke(Func<HttpContext, Task> route, byte[] body, IPAddress address)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "POST";
        context.Request.ContentType = "application/json";
        context.Request.Body = new MemoryStream(body);
        context.Request.ContentLength = body.Length;
        context.Response.Body = new MemoryStream();
        context.Connection.RemoteIpAddress = address;
        route(context).GetAwaiter().GetResult();
        return context.Response.StatusCode;
    }
}

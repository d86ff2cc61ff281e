using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using CrocNet.Relay;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Staple;
using Microsoft.Extensions.DependencyInjection;
using static CrocNet.Tests.Relay.RelayTestKit;
using static CrocNet.Tests.Relay.WebSocket.WebSocketTestKit;

namespace CrocNet.Tests.Relay.WebSocket;

/// <summary>
/// WebSocket legs on a real relay (Kestrel, real TCP listeners): <see cref="ClientWebSocket"/> legs from 127.0.0.1 (the
/// sender) and 127.0.0.2 (the recipient), paired with each other and with TCP legs.
/// </summary>
[CancelAfter(30_000)]
public class WebSocketLegTests : RelayFixture
{
    private Uri Base => RelayServer.BaseAddress;

    private Task<RelayReply> StateAsync(Pair pair, CancellationToken cancellationToken)
        => OkAsync(PostAsync(A, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken));

    [Test]
    public async Task Staple_WebSocketLegsOnEveryLane_StapledAndEachLanePipesBothWays(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        var senders = new List<ClientWebSocket>();
        var recipients = new List<ClientWebSocket>();
        try
        {
            for (var lane = 0; lane < 4; lane++)
            {
                var (s, sAnswer) = await LegAsync(Base, pair.Channel, pair.SenderUuid, lane, cancellationToken);
                senders.Add(s);
                Assert.That(sAnswer, Is.EqualTo("ok"));
                Assert.That((bool)(await StateAsync(pair, cancellationToken)).Body["stapled"]!, Is.False);
                var (r, rAnswer) = await LegAsync(Base, pair.Channel, pair.RecipientUuid, lane, cancellationToken, Second);
                recipients.Add(r);
                Assert.That(rAnswer, Is.EqualTo("ok"));
            }

            var state = await StateAsync(pair, cancellationToken);
            Assert.That((bool)state.Body["stapled"]!, Is.True);
            Assert.That(state.Rev, Is.EqualTo(6), "5 after key confirmation, +1 for stapled");
            for (var lane = 0; lane < 4; lane++)
            {
                await SendBytesAsync(senders[lane], Encoding.UTF8.GetBytes($"to recipient {lane}"), cancellationToken);
                await SendBytesAsync(recipients[lane], Encoding.UTF8.GetBytes($"to sender {lane}"), cancellationToken);
                Assert.That(Encoding.UTF8.GetString(await ReadExactlyAsync(recipients[lane], $"to recipient {lane}".Length, cancellationToken)), Is.EqualTo($"to recipient {lane}"));
                Assert.That(Encoding.UTF8.GetString(await ReadExactlyAsync(senders[lane], $"to sender {lane}".Length, cancellationToken)), Is.EqualTo($"to sender {lane}"));
            }
        }
        finally
        {
            senders.Concat(recipients).ToList().ForEach(s => s.Dispose());
        }
    }

    [Test]
    public async Task Pipe_WebSocketPairOneSideCloses_PeerSeesCloseAndStillSendsBack(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        var (sender, _) = await LegAsync(Base, pair.Channel, pair.SenderUuid, 3, cancellationToken);
        var (recipient, answer) = await LegAsync(Base, pair.Channel, pair.RecipientUuid, 3, cancellationToken, Second);
        using (sender)
        using (recipient)
        {
            Assert.That(answer, Is.EqualTo("ok"));
            var up = RandomNumberGenerator.GetBytes(300_000);
            await SendBytesAsync(sender, up, cancellationToken);
            await sender.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cancellationToken);
            Assert.That((await ReadToCloseAsync(recipient, cancellationToken)).AsSpan().SequenceEqual(up), Is.True, "the bytes, then the sender's close as a close");

            var down = RandomNumberGenerator.GetBytes(200_000);
            var atSender = ReadToCloseAsync(sender, cancellationToken);
            await SendBytesAsync(recipient, down, cancellationToken);
            await recipient.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cancellationToken);
            Assert.That((await atSender).AsSpan().SequenceEqual(down), Is.True, "the other direction goes on after a close (a half-close)");
            Assert.That((sender.State, recipient.State), Is.EqualTo((WebSocketState.Closed, WebSocketState.Closed)));
        }
    }

    [Test]
    public async Task Pipe_WebSocketSenderTcpRecipient_MegabytesExactBothWaysThenCloseIsEndOfStream(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        var (sender, sAnswer) = await LegAsync(Base, pair.Channel, pair.SenderUuid, 2, cancellationToken);
        var (recipient, rAnswer) = await HelloAsync(RelayServer.Ports[2], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        using (sender)
        using (recipient)
        {
            Assert.That((sAnswer, rAnswer), Is.EqualTo(("ok", "ok")));
            var up = RandomNumberGenerator.GetBytes((3 * 1024 * 1024) + 17);
            var down = RandomNumberGenerator.GetBytes((2 * 1024 * 1024) + 5);
            var atRecipient = ReadToEndAsync(recipient, cancellationToken);
            var atSender = ReadToCloseAsync(sender, cancellationToken);
            await Task.WhenAll(
                Task.Run(async () =>
                {
                    await SendBytesAsync(sender, up, cancellationToken, messageSize: 50_000);
                    await sender.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cancellationToken);
                }, cancellationToken),
                Task.Run(async () =>
                {
                    await SendAsync(recipient, down, cancellationToken);
                    recipient.Shutdown(SocketShutdown.Send);
                }, cancellationToken));

            Assert.That((await atRecipient).AsSpan().SequenceEqual(up), Is.True, "WebSocket sender to TCP recipient, then its close is the end of stream");
            Assert.That((await atSender).AsSpan().SequenceEqual(down), Is.True, "TCP recipient to WebSocket sender, then its FIN is the relay's close");
        }
    }

    [Test]
    public async Task Pipe_TcpSenderWebSocketRecipient_MegabytesExactBothWays(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        var (sender, sAnswer) = await HelloAsync(RelayServer.Ports[1], pair.Channel, pair.SenderUuid, cancellationToken);
        var (recipient, rAnswer) = await LegAsync(Base, pair.Channel, pair.RecipientUuid, 1, cancellationToken, Second);
        using (sender)
        using (recipient)
        {
            Assert.That((sAnswer, rAnswer), Is.EqualTo(("ok", "ok")));
            var up = RandomNumberGenerator.GetBytes((3 * 1024 * 1024) + 1);
            var down = RandomNumberGenerator.GetBytes((1024 * 1024) + 3);
            var atRecipient = ReadToCloseAsync(recipient, cancellationToken);
            var atSender = ReadToEndAsync(sender, cancellationToken);
            await Task.WhenAll(
                Task.Run(async () =>
                {
                    await SendAsync(sender, up, cancellationToken);
                    sender.Shutdown(SocketShutdown.Send);
                }, cancellationToken),
                Task.Run(async () =>
                {
                    // One message far over 64 KiB: after the hello, messages are just bytes.
                    await recipient.SendAsync(down, WebSocketMessageType.Binary, true, cancellationToken);
                    await recipient.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cancellationToken);
                }, cancellationToken));

            Assert.That((await atRecipient).AsSpan().SequenceEqual(up), Is.True, "TCP sender to WebSocket recipient");
            Assert.That((await atSender).AsSpan().SequenceEqual(down), Is.True, "a 1 MiB message arrives as bytes");
        }
    }

    [Test]
    public async Task Pipe_WebSocketLegAborts_TcpPeerCutOtherLanesKeepPiping(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        var (wsSender, _) = await LegAsync(Base, pair.Channel, pair.SenderUuid, 0, cancellationToken);
        var (tcpRecipient, _) = await HelloAsync(RelayServer.Ports[0], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        var (otherSender, _) = await HelloAsync(RelayServer.Ports[3], pair.Channel, pair.SenderUuid, cancellationToken);
        var (otherRecipient, answer) = await LegAsync(Base, pair.Channel, pair.RecipientUuid, 3, cancellationToken, Second);
        using (wsSender)
        using (tcpRecipient)
        using (otherSender)
        using (otherRecipient)
        {
            Assert.That(answer, Is.EqualTo("ok"));
            await SendBytesAsync(wsSender, "x"u8.ToArray(), cancellationToken);
            Assert.That(await ReadExactlyAsync(tcpRecipient, 1, cancellationToken), Is.EqualTo("x"u8.ToArray()));

            wsSender.Abort();
            Assert.That(await ReadToEndAsync(tcpRecipient, cancellationToken), Is.Empty, "the TCP peer is cut");
            await SendAsync(otherSender, "y"u8.ToArray(), cancellationToken);
            Assert.That(await ReadExactlyAsync(otherRecipient, 1, cancellationToken), Is.EqualTo("y"u8.ToArray()), "the other lane's pair keeps piping");

            var (again, againAnswer) = await LegAsync(Base, pair.Channel, pair.SenderUuid, 0, cancellationToken);
            again.Dispose();
            Assert.That(againAnswer, Is.EqualTo("ok again"), "the broken lane takes a new leg, and says it had a pair");
        }
    }

    [Test]
    public async Task Waiting_WebSocketClientCloses_SlotFreedAndReconnectAccepted(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        var registry = RelayServer.Services.GetRequiredService<ChannelRegistry>();
        var before = registry.WaitingConnections;
        var (first, answer) = await LegAsync(Base, pair.Channel, pair.SenderUuid, 0, cancellationToken);
        Assert.That(answer, Is.EqualTo("ok"));
        Assert.That(registry.WaitingConnections, Is.EqualTo(before + 1));
        await first.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cancellationToken);
        Assert.That(await EndedAsync(first, cancellationToken), Is.True, "the relay closes the dropped leg");
        first.Dispose();
        Assert.That(await EventuallyAsync(() => registry.WaitingConnections == before, TimeSpan.FromSeconds(10), cancellationToken), Is.True, "its waiting slot is free");

        var (again, againAnswer) = await LegAsync(Base, pair.Channel, pair.SenderUuid, 0, cancellationToken);
        using (again)
        {
            Assert.That(againAnswer, Is.EqualTo("ok"), "no duplicate: the lane was freed");
        }
    }

    [Test]
    public async Task Waiting_EarlyBinaryPayloadThenTcpPeer_PayloadDeliveredFirst(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        var (sender, _) = await LegAsync(Base, pair.Channel, pair.SenderUuid, 1, cancellationToken);
        using (sender)
        {
            await SendBytesAsync(sender, "early"u8.ToArray(), cancellationToken);
            var (recipient, answer) = await HelloAsync(RelayServer.Ports[1], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
            using (recipient)
            {
                Assert.That(answer, Is.EqualTo("ok"));
                Assert.That(await ReadExactlyAsync(recipient, 5, cancellationToken), Is.EqualTo("early"u8.ToArray()));
            }
        }
    }

    [TestCase("not json", TestName = "Hello_NotJson_BadRequestThenClosed")]
    [TestCase("{\"channel\":\"abc\",\"uuid\":\"u\"}", TestName = "Hello_NoLane_BadRequestThenClosed")]
    [TestCase("{\"channel\":\"abc\",\"uuid\":\"u\",\"lane\":4}", TestName = "Hello_LaneOutOfRange_BadRequestThenClosed")]
    [TestCase("{\"channel\":\"abc\",\"uuid\":\"u\",\"lane\":-1}", TestName = "Hello_NegativeLane_BadRequestThenClosed")]
    [TestCase("{\"channel\":\"abc\",\"uuid\":\"u\",\"lane\":\"0\"}", TestName = "Hello_LaneNotANumber_BadRequestThenClosed")]
    [TestCase(null, TestName = "Hello_Oversize_BadRequestThenClosed")]
    public async Task Hello_Malformed_BadRequestThenClosedAndNothingAttached(string? hello, CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        var registry = RelayServer.Services.GetRequiredService<ChannelRegistry>();
        var rev = (await StateAsync(pair, cancellationToken)).Rev;
        using var socket = await ConnectAsync(Base, cancellationToken);
        var text = hello?.Replace("abc", pair.Channel, StringComparison.Ordinal).Replace("\"u\"", $"\"{pair.SenderUuid}\"", StringComparison.Ordinal)
            ?? $"{{\"channel\":\"{pair.Channel}\",\"uuid\":\"{pair.SenderUuid}\",\"lane\":0,\"pad\":\"{new string('x', 1100)}\"}}";
        await SendTextAsync(socket, text, cancellationToken);
        Assert.That(await ReceiveTextAsync(socket, cancellationToken), Is.EqualTo("error bad_request"));
        Assert.That(await EndedAsync(socket, cancellationToken), Is.True, "closed after the error");
        Assert.That(socket.CloseStatus, Is.EqualTo(WebSocketCloseStatus.PolicyViolation));
        Assert.That((await StateAsync(pair, cancellationToken)).Rev, Is.EqualTo(rev), "nothing changed");

        // The lane is still free for the real leg.
        var (real, answer) = await LegAsync(Base, pair.Channel, pair.SenderUuid, 0, cancellationToken);
        real.Dispose();
        Assert.That(answer, Is.EqualTo("ok"));
    }

    [Test]
    public async Task Hello_BinaryFirst_BadRequestThenClosed(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        using var socket = await ConnectAsync(Base, cancellationToken);
        await socket.SendAsync(Encoding.UTF8.GetBytes($"{{\"channel\":\"{pair.Channel}\",\"uuid\":\"{pair.SenderUuid}\",\"lane\":0}}"), WebSocketMessageType.Binary, true, cancellationToken);
        Assert.That(await ReceiveTextAsync(socket, cancellationToken), Is.EqualTo("error bad_request"));
        Assert.That(await EndedAsync(socket, cancellationToken), Is.True);
    }

    [Test]
    public async Task Hello_UnknownChannelOrUuid_BadUuid(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        var (unknown, unknownAnswer) = await LegAsync(Base, "nosuchchannel", pair.SenderUuid, 0, cancellationToken);
        unknown.Dispose();
        var (wrong, wrongAnswer) = await LegAsync(Base, pair.Channel, "0123456789abcdef0123456789abcdef", 0, cancellationToken);
        wrong.Dispose();
        Assert.That((unknownAnswer, wrongAnswer), Is.EqualTo(("error bad_uuid", "error bad_uuid")));
    }

    [Test]
    public async Task Hello_BeforeKeyConfirmation_NotReady(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken, confirm: false);
        var (leg, answer) = await LegAsync(Base, pair.Channel, pair.SenderUuid, 0, cancellationToken);
        leg.Dispose();
        Assert.That(answer, Is.EqualTo("error not_ready"));
    }

    [Test]
    public async Task Hello_ThirdAddress_IpLimit(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        var (leg, answer) = await LegAsync(Base, pair.Channel, pair.SenderUuid, 0, cancellationToken, Third);
        leg.Dispose();
        Assert.That(answer, Is.EqualTo("error ip_limit"));
    }

    [Test]
    public async Task Hello_DuplicateOnALane_Duplicate(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        var (tcp, _) = await HelloAsync(RelayServer.Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        using (tcp)
        {
            var (leg, answer) = await LegAsync(Base, pair.Channel, pair.SenderUuid, 0, cancellationToken);
            leg.Dispose();
            Assert.That(answer, Is.EqualTo("error duplicate"), "a WebSocket leg and a TCP leg share the lane");
        }
    }

    [Test]
    public async Task Upgrade_PlainGet_BadRequestInTheErrorShape(CancellationToken cancellationToken)
    {
        using var response = await A.GetAsync("staple", cancellationToken);
        var body = System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken))!;
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That((string?)body["code"], Is.EqualTo("bad_request"));
        Assert.That((string?)body["error"], Does.Contain("WebSocket"));
    }

    [Test]
    public async Task Upgrade_PermessageDeflateOffered_NotNegotiated(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        using var socket = await ConnectAsync(Base, cancellationToken, configure: o => o.DangerousDeflateOptions = new WebSocketDeflateOptions());
        Assert.That(socket.HttpResponseHeaders!.ContainsKey("Sec-WebSocket-Extensions"), Is.False, "no compression extension");
        Assert.That(await HelloAsync(socket, pair.Channel, pair.SenderUuid, 0, cancellationToken), Is.EqualTo("ok"));
    }

    [Test]
    public async Task State_Always_ReportsLanesAndWs(CancellationToken cancellationToken)
    {
        var joined = await OkAsync(PostAsync(A, "join", new { role = "sender" }, cancellationToken));
        Assert.That((int)joined.Body["lanes"]!, Is.EqualTo(4));
        Assert.That((bool)joined.Body["ws"]!, Is.True);
        var state = await OkAsync(PostAsync(A, "channel", new { channel = joined.Str("channel"), uuid = joined.Str("uuid") }, cancellationToken));
        Assert.That((int)state.Body["lanes"]!, Is.EqualTo(4));
        Assert.That((bool)state.Body["ws"]!, Is.True);
    }
}

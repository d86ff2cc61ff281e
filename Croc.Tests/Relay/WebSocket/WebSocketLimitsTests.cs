using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using CrocNet.Relay;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Staple;
using Microsoft.Extensions.DependencyInjection;
using static CrocNet.Tests.Relay.RelayTestKit;
using static CrocNet.Tests.Relay.WebSocket.WebSocketTestKit;

namespace CrocNet.Tests.Relay.WebSocket;

/// <summary>
/// Every limit that guards TCP legs guards WebSocket legs, from one budget shared by both transports; the relay
/// password on the upgrade; relays without TCP listeners; keep-alive frames. Each test runs its own relay.
/// </summary>
[CancelAfter(30_000)]
public class WebSocketLimitsTests
{
    [Test]
    public async Task Hello_NeverSent_TimeoutErrorAndSlotsFreed(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.HelloTimeout = TimeSpan.FromMilliseconds(300));
        var legs = relay.Services.GetRequiredService<StapleListenerService>();
        using var silent = await ConnectAsync(relay.BaseAddress, cancellationToken);
        Assert.That(await EventuallyAsync(() => legs.PendingHellos == 1 && legs.OpenConnections == 1, TimeSpan.FromSeconds(5), cancellationToken), Is.True, "the leg holds a pre-hello slot");
        Assert.That(await ReceiveTextAsync(silent, cancellationToken), Is.EqualTo("error timeout"));
        Assert.That(await EndedAsync(silent, cancellationToken), Is.True);
        Assert.That(await EventuallyAsync(() => legs.PendingHellos == 0 && legs.OpenConnections == 0, TimeSpan.FromSeconds(5), cancellationToken), Is.True, "both slots are freed");
    }

    [Test]
    public async Task PendingHellos_PerAddressLimit_SharedByWebSocketAndTcpLegs(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.MaxPendingHellosPerAddress = 1);
        using var silent = await ConnectAsync(relay.BaseAddress, cancellationToken);

        var (status, _) = await RefusedStatusAsync(relay.BaseAddress, cancellationToken);
        Assert.That(status, Is.EqualTo(HttpStatusCode.ServiceUnavailable), "a second silent WebSocket leg from the address");
        Assert.That(await ClosedAtOnceAsync(relay.Ports[0], null, cancellationToken), Is.Empty, "a TCP leg from the address is closed at once: one budget");

        var (other, otherAnswer) = await LegAsync(relay.BaseAddress, "nosuch", "u", 0, cancellationToken, Second);
        other.Dispose();
        Assert.That(otherAnswer, Is.EqualTo("error bad_uuid"), "another address is served");

        Assert.That(await HelloAsync(silent, "nosuch", "u", 0, cancellationToken), Is.EqualTo("error bad_uuid"), "the first leg is served");
        var (later, laterAnswer) = await HelloAsync(relay.Ports[0], "nosuch", "u", cancellationToken);
        later.Dispose();
        Assert.That(laterAnswer, Is.EqualTo("error bad_uuid"), "the slot is free once the hello was read");
    }

    [Test]
    public async Task PendingHellos_RelayWideSlotsHeldBySilentWebSockets_ANewAddressTakesTheOldest(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o =>
        {
            o.Relay.MaxPendingHellos = 2;
            o.Relay.MaxPendingHellosPerAddress = 2;
            o.Relay.HelloTimeout = TimeSpan.FromMinutes(1);
        });
        var legs = relay.Services.GetRequiredService<StapleListenerService>();
        using var first = await ConnectAsync(relay.BaseAddress, cancellationToken, Second);
        using var second = await ConnectAsync(relay.BaseAddress, cancellationToken, Second);
        Assert.That(await EventuallyAsync(() => legs.PendingHellos == 2, TimeSpan.FromSeconds(5), cancellationToken), Is.True);

        var (probe, answer) = await HelloAsync(relay.Ports[0], "nosuch", "u", cancellationToken);
        probe.Dispose();
        Assert.That(answer, Is.EqualTo("error bad_uuid"), "a TCP leg of a new address is served");
        Assert.That(await EndedAsync(first, cancellationToken), Is.True, "the heaviest address's oldest WebSocket leg gave up its slot");
        Assert.That(second.State, Is.EqualTo(WebSocketState.Open));
    }

    [Test]
    public async Task Connections_PerAddressLimit_CountsWebSocketAndTcpLegsTogether(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o =>
        {
            o.Relay.MaxConnectionsPerAddress = 8;
            o.Relay.HelloTimeout = TimeSpan.FromMinutes(1);
        });
        var legs = relay.Services.GetRequiredService<StapleListenerService>();
        var held = new List<IDisposable>();
        try
        {
            for (var i = 0; i < 4; i++)
            {
                held.Add(await ConnectAsync(relay.BaseAddress, cancellationToken));
                held.Add(await ConnectAsync(relay.Ports[i], cancellationToken));
            }

            Assert.That(await EventuallyAsync(() => legs.OpenConnections == 8, TimeSpan.FromSeconds(5), cancellationToken), Is.True);
            var (status, _) = await RefusedStatusAsync(relay.BaseAddress, cancellationToken);
            Assert.That(status, Is.EqualTo(HttpStatusCode.ServiceUnavailable), "a ninth leg over WebSocket");
            Assert.That(await ClosedAtOnceAsync(relay.Ports[0], null, cancellationToken), Is.Empty, "a ninth leg over TCP");
            var (other, otherAnswer) = await LegAsync(relay.BaseAddress, "nosuch", "u", 0, cancellationToken, Second);
            other.Dispose();
            Assert.That(otherAnswer, Is.EqualTo("error bad_uuid"), "another address is served");
        }
        finally
        {
            held.ForEach(h => h.Dispose());
        }

        Assert.That(await EventuallyAsync(() => legs.OpenConnections == 0, TimeSpan.FromSeconds(10), cancellationToken), Is.True, "every slot comes back");
    }

    [Test]
    public async Task Connections_RelayWideLimit_RefusesAWebSocketLegOfAnyAddress(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o =>
        {
            o.Relay.MaxConnections = 8;
            o.Relay.HelloTimeout = TimeSpan.FromMinutes(1);
        });
        var legs = relay.Services.GetRequiredService<StapleListenerService>();
        var held = new List<IDisposable>();
        try
        {
            for (var i = 0; i < 4; i++)
            {
                held.Add(await ConnectAsync(relay.BaseAddress, cancellationToken));
                held.Add(await ConnectAsync(relay.Ports[i], cancellationToken, Second));
            }

            Assert.That(await EventuallyAsync(() => legs.OpenConnections == 8, TimeSpan.FromSeconds(5), cancellationToken), Is.True);
            var (status, _) = await RefusedStatusAsync(relay.BaseAddress, cancellationToken, Third);
            Assert.That(status, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        }
        finally
        {
            held.ForEach(h => h.Dispose());
        }
    }

    [Test]
    public async Task Waiting_PerAddressLimit_WebSocketLegGetsCapacity(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.MaxWaitingConnectionsPerAddress = 4);
        using var a = Client(relay.BaseAddress);
        using var b = Client(relay.BaseAddress, Second);
        var one = await OpenAsync(a, b, cancellationToken);
        var two = await OpenAsync(a, b, cancellationToken);
        var held = new List<IDisposable>();
        try
        {
            for (var lane = 0; lane < 4; lane++)
            {
                // Half of them TCP: waiting slots are one budget too.
                if (lane % 2 == 0)
                {
                    var (leg, answer) = await LegAsync(relay.BaseAddress, one.Channel, one.SenderUuid, lane, cancellationToken);
                    held.Add(leg);
                    Assert.That(answer, Is.EqualTo("ok"));
                }
                else
                {
                    var (leg, answer) = await HelloAsync(relay.Ports[lane], one.Channel, one.SenderUuid, cancellationToken);
                    held.Add(leg);
                    Assert.That(answer, Is.EqualTo("ok"));
                }
            }

            var (over, overAnswer) = await LegAsync(relay.BaseAddress, two.Channel, two.SenderUuid, 0, cancellationToken);
            held.Add(over);
            Assert.That(overAnswer, Is.EqualTo("error capacity"), "a fifth waiting leg from the address");
            var (peer, peerAnswer) = await LegAsync(relay.BaseAddress, one.Channel, one.RecipientUuid, 0, cancellationToken, Second);
            held.Add(peer);
            Assert.That(peerAnswer, Is.EqualTo("ok"), "a leg that completes a pair does not wait");
        }
        finally
        {
            held.ForEach(h => h.Dispose());
        }
    }

    [Test]
    public async Task Waiting_NoPeerWithinWaitingTimeout_WebSocketLegCutAndSlotFreed(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.WaitingTimeout = TimeSpan.FromMilliseconds(300));
        using var a = Client(relay.BaseAddress);
        using var b = Client(relay.BaseAddress, Second);
        var pair = await OpenAsync(a, b, cancellationToken);
        var registry = relay.Services.GetRequiredService<ChannelRegistry>();
        var (leg, answer) = await LegAsync(relay.BaseAddress, pair.Channel, pair.SenderUuid, 0, cancellationToken);
        using (leg)
        {
            Assert.That(answer, Is.EqualTo("ok"));
            Assert.That(await EndedAsync(leg, cancellationToken), Is.True, "cut after WaitingTimeout");
            Assert.That(await EventuallyAsync(() => registry.WaitingConnections == 0, TimeSpan.FromSeconds(5), cancellationToken), Is.True);
        }
    }

    [Test]
    public async Task Password_UpgradeWithoutOrWithWrongAuthorization_401BeforeUpgradingAndNothingAttached(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.Password = "s3cret-pass");
        var legs = relay.Services.GetRequiredService<StapleListenerService>();
        using var a = Client(relay.BaseAddress);
        using var b = Client(relay.BaseAddress, Second);
        a.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "s3cret-pass");
        b.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "s3cret-pass");
        var pair = await OpenAsync(a, b, cancellationToken);

        var (none, noneHeaders) = await RefusedStatusAsync(relay.BaseAddress, cancellationToken);
        var (wrong, _) = await RefusedStatusAsync(relay.BaseAddress, cancellationToken, configure: o => o.SetRequestHeader("Authorization", "Bearer not-it"));
        Assert.That((none, wrong), Is.EqualTo((HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized)));
        Assert.That(noneHeaders!["WWW-Authenticate"], Is.EqualTo(new[] { "Bearer" }));
        Assert.That((legs.OpenConnections, legs.PendingHellos), Is.EqualTo((0, 0)), "nothing was admitted");

        var (sender, sAnswer) = await LegAsync(relay.BaseAddress, pair.Channel, pair.SenderUuid, 0, cancellationToken, configure: o => o.SetRequestHeader("Authorization", "Bearer s3cret-pass"));
        var (recipient, rAnswer) = await HelloAsync(relay.Ports[0], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        using (sender)
        using (recipient)
        {
            Assert.That(sAnswer, Is.EqualTo("ok"), "the upgrade's Authorization header opens a WebSocket leg");
            Assert.That(rAnswer, Is.EqualTo("error unauthorized"), "a TCP hello without auth is still refused");
        }
    }

    [Test]
    public async Task WebSocketOnlyRelay_NoTcpListeners_StateHasNoPortsAndLegsPairOverWebSockets(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o =>
        {
            o.Relay.Ports = [];
            o.Relay.Lanes = 2;
        });
        Assert.That(relay.Ports, Is.Empty);
        Assert.That(relay.Services.GetRequiredService<CrocRelayListeners>().Ports, Is.Empty);
        using var a = Client(relay.BaseAddress);
        using var b = Client(relay.BaseAddress, Second);
        var pair = await OpenAsync(a, b, cancellationToken);
        var legs = new List<ClientWebSocket>();
        try
        {
            for (var lane = 0; lane < 2; lane++)
            {
                var (s, sAnswer) = await LegAsync(relay.BaseAddress, pair.Channel, pair.SenderUuid, lane, cancellationToken);
                var (r, rAnswer) = await LegAsync(relay.BaseAddress, pair.Channel, pair.RecipientUuid, lane, cancellationToken, Second);
                legs.Add(s);
                legs.Add(r);
                Assert.That((sAnswer, rAnswer), Is.EqualTo(("ok", "ok")));
            }

            var (third, thirdAnswer) = await LegAsync(relay.BaseAddress, pair.Channel, pair.SenderUuid, 2, cancellationToken);
            third.Dispose();
            Assert.That(thirdAnswer, Is.EqualTo("error bad_request"), "lane 2 of 2 is out of range");

            var state = await OkAsync(PostAsync(a, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken));
            Assert.That(state.Body["ports"]!.AsArray(), Is.Empty);
            Assert.That((int)state.Body["lanes"]!, Is.EqualTo(2));
            Assert.That((bool)state.Body["ws"]!, Is.True);
            Assert.That((bool)state.Body["stapled"]!, Is.True, "stapled once every lane is piped, with no port at all");

            await SendBytesAsync(legs[2], "lane one"u8.ToArray(), cancellationToken);
            Assert.That(await ReadExactlyAsync(legs[3], 8, cancellationToken), Is.EqualTo("lane one"u8.ToArray()));
        }
        finally
        {
            legs.ForEach(l => l.Dispose());
        }
    }

    [Test]
    public async Task WebSocketOnlyRelay_LanesUnset_FourLanes(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.Ports = []);
        using var a = Client(relay.BaseAddress);
        var joined = await OkAsync(PostAsync(a, "join", new { role = "sender" }, cancellationToken));
        Assert.That((int)joined.Body["lanes"]!, Is.EqualTo(4));
        Assert.That(joined.Body["ports"]!.AsArray(), Is.Empty);
    }

    [Test]
    public async Task WebSocketsOff_StapleRouteAbsentAndStateSaysSo(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.WebSockets = false);
        using var a = Client(relay.BaseAddress);
        var joined = await OkAsync(PostAsync(a, "join", new { role = "sender" }, cancellationToken));
        Assert.That((bool)joined.Body["ws"]!, Is.False);
        var (status, _) = await RefusedStatusAsync(relay.BaseAddress, cancellationToken);
        Assert.That(status, Is.EqualTo(HttpStatusCode.NotFound));
    }

    [Test]
    public async Task KeepAlive_IdleWaitingLeg_RelaySendsKeepAliveFramesEveryInterval(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.WebSocketKeepAliveInterval = TimeSpan.FromSeconds(1));
        using var a = Client(relay.BaseAddress);
        using var b = Client(relay.BaseAddress, Second);
        var pair = await OpenAsync(a, b, cancellationToken);

        // A raw client: the frames on the wire are visible, and it never pings by itself.
        using var socket = await ConnectAsync(relay.BaseAddress.Port, cancellationToken);
        await SendAsync(socket, $"GET /staple HTTP/1.1\r\nHost: 127.0.0.1:{relay.BaseAddress.Port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n", cancellationToken);
        var head = new StringBuilder();
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            head.Append((char)(await ReadExactlyAsync(socket, 1, cancellationToken))[0]);
        }

        Assert.That(head.ToString(), Does.StartWith("HTTP/1.1 101"));
        Assert.That(head.ToString(), Does.Not.Contain("Sec-WebSocket-Extensions").IgnoreCase, "no compression");
        await SendAsync(socket, MaskedTextFrame($"{{\"channel\":\"{pair.Channel}\",\"uuid\":\"{pair.SenderUuid}\",\"lane\":0}}"), cancellationToken);
        var (opcode, payload) = await ReadFrameAsync(socket, cancellationToken);
        Assert.That((opcode, Encoding.ASCII.GetString(payload)), Is.EqualTo((1, "ok")));

        // The leg now waits, idle: the relay keeps it alive (an unsolicited pong: a heartbeat that needs no answer).
        var started = DateTime.UtcNow;
        for (var i = 0; i < 2; i++)
        {
            (opcode, payload) = await ReadFrameAsync(socket, cancellationToken);
            Assert.That(opcode, Is.EqualTo(0xA), "a keep-alive frame");
        }

        Assert.That(DateTime.UtcNow - started, Is.LessThan(TimeSpan.FromSeconds(10)));
    }

    private static byte[] MaskedTextFrame(string text)
    {
        var payload = Encoding.UTF8.GetBytes(text);
        Assert.That(payload, Has.Length.LessThan(126));
        byte[] mask = [1, 2, 3, 4];
        var frame = new byte[6 + payload.Length];
        frame[0] = 0x81;
        frame[1] = (byte)(0x80 | payload.Length);
        mask.CopyTo(frame, 2);
        for (var i = 0; i < payload.Length; i++)
        {
            frame[6 + i] = (byte)(payload[i] ^ mask[i % 4]);
        }

        return frame;
    }

    private static async Task<(int Opcode, byte[] Payload)> ReadFrameAsync(Socket socket, CancellationToken cancellationToken)
    {
        var header = await ReadExactlyAsync(socket, 2, cancellationToken);
        Assert.That(header[0] & 0x80, Is.EqualTo(0x80), "FIN");
        Assert.That(header[1] & 0x80, Is.Zero, "a server does not mask");
        var length = header[1] & 0x7F;
        Assert.That(length, Is.LessThan(126), "small frames only here");
        return (header[0] & 0x0F, await ReadExactlyAsync(socket, length, cancellationToken));
    }

    private static async Task<byte[]> ClosedAtOnceAsync(int port, IPAddress? source, CancellationToken cancellationToken)
    {
        try
        {
            using var socket = await ConnectAsync(port, cancellationToken, source);
            return await ReadToEndAsync(socket, cancellationToken);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionRefused)
        {
            return [];
        }
    }
}

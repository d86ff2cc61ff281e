using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using CrocNet.Relay;
using CrocNet.Relay.Channels;
using Microsoft.Extensions.DependencyInjection;
using static CrocNet.Tests.Relay.RelayTestKit;

namespace CrocNet.Tests.Relay.Staple;

/// <summary>TCP stapling on a real relay: real sockets on loopback, the sender from 127.0.0.1 and the recipient from 127.0.0.2.</summary>
[CancelAfter(20_000)]
public class StapleTests : RelayFixture
{
    private Task<RelayReply> StateAsync(Pair pair, CancellationToken cancellationToken)
        => OkAsync(PostAsync(A, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken));

    [Test]
    public async Task Staple_BothPartiesOnEveryPort_StapledAndEachPortPipes(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        var senders = new List<Socket>();
        var recipients = new List<Socket>();
        try
        {
            foreach (var port in RelayServer.Ports)
            {
                var (s, sAnswer) = await HelloAsync(port, pair.Channel, pair.SenderUuid, cancellationToken);
                senders.Add(s);
                Assert.That(sAnswer, Is.EqualTo("ok"));
                Assert.That((bool)(await StateAsync(pair, cancellationToken)).Body["stapled"]!, Is.False);
                var (r, rAnswer) = await HelloAsync(port, pair.Channel, pair.RecipientUuid, cancellationToken, Second);
                recipients.Add(r);
                Assert.That(rAnswer, Is.EqualTo("ok"));
            }

            var state = await StateAsync(pair, cancellationToken);
            Assert.That((bool)state.Body["stapled"]!, Is.True);
            Assert.That(state.Rev, Is.EqualTo(6), "5 after key confirmation, +1 for stapled");

            for (var i = 0; i < senders.Count; i++)
            {
                await SendAsync(senders[i], $"to recipient {i}\n", cancellationToken);
                await SendAsync(recipients[i], $"to sender {i}\n", cancellationToken);
                Assert.That(await ReadLineAsync(recipients[i], cancellationToken), Is.EqualTo($"to recipient {i}"));
                Assert.That(await ReadLineAsync(senders[i], cancellationToken), Is.EqualTo($"to sender {i}"));
            }
        }
        finally
        {
            senders.Concat(recipients).ToList().ForEach(s => s.Dispose());
        }
    }

    [Test]
    public async Task Pipe_MegabytesBothWaysAtOnce_ArriveIntactThenHalfCloseEnds(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        var port = RelayServer.Ports[0];
        var (sender, _) = await HelloAsync(port, pair.Channel, pair.SenderUuid, cancellationToken);
        var (recipient, answer) = await HelloAsync(port, pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        using (sender)
        using (recipient)
        {
            Assert.That(answer, Is.EqualTo("ok"));
            var up = RandomNumberGenerator.GetBytes(5 * 1024 * 1024 + 17);
            var down = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 5);

            async Task SendAndHalfCloseAsync(Socket socket, byte[] data)
            {
                await SendAsync(socket, data, cancellationToken);
                socket.Shutdown(SocketShutdown.Send);
            }

            var sends = Task.WhenAll(SendAndHalfCloseAsync(sender, up), SendAndHalfCloseAsync(recipient, down));
            var atRecipient = ReadToEndAsync(recipient, cancellationToken);
            var atSender = ReadToEndAsync(sender, cancellationToken);
            await sends;

            // SequenceEqual: NUnit's element-wise comparison of megabyte arrays is slow.
            Assert.That((await atRecipient).AsSpan().SequenceEqual(up), Is.True, "sender to recipient");
            Assert.That((await atSender).AsSpan().SequenceEqual(down), Is.True, "recipient to sender");
        }
    }

    [Test]
    public async Task Pipe_OneDirectionHalfClosed_OtherDirectionKeepsFlowing(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        var port = RelayServer.Ports[1];
        var (sender, _) = await HelloAsync(port, pair.Channel, pair.SenderUuid, cancellationToken);
        var (recipient, _) = await HelloAsync(port, pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        using (sender)
        using (recipient)
        {
            await SendAsync(sender, "done\n", cancellationToken);
            sender.Shutdown(SocketShutdown.Send);
            Assert.That(await ReadLineAsync(recipient, cancellationToken), Is.EqualTo("done"));
            Assert.That(await ReadLineAsync(recipient, cancellationToken), Is.Null, "the recipient sees the sender's end of stream");

            await SendAsync(recipient, "still here\n", cancellationToken);
            Assert.That(await ReadLineAsync(sender, cancellationToken), Is.EqualTo("still here"));
        }
    }

    [Test]
    public async Task Pipe_OnePairFinishesCleanly_OtherPairsKeepPiping(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        var (s0, _) = await HelloAsync(RelayServer.Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        var (r0, _) = await HelloAsync(RelayServer.Ports[0], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        var (s1, _) = await HelloAsync(RelayServer.Ports[1], pair.Channel, pair.SenderUuid, cancellationToken);
        var (r1, _) = await HelloAsync(RelayServer.Ports[1], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        using (s0)
        using (r0)
        using (s1)
        using (r1)
        {
            s0.Shutdown(SocketShutdown.Send);
            r0.Shutdown(SocketShutdown.Send);
            Assert.That(await ReadToEndAsync(r0, cancellationToken), Is.Empty);
            Assert.That(await ReadToEndAsync(s0, cancellationToken), Is.Empty);

            // Port 0's pair is done; port 1's transfer must not be cut by it.
            var data = RandomNumberGenerator.GetBytes(1024 * 1024);
            var receiving = ReadExactlyAsync(r1, data.Length, cancellationToken);
            await SendAsync(s1, data, cancellationToken);
            Assert.That((await receiving).AsSpan().SequenceEqual(data), Is.True);
        }
    }

    [Test]
    public async Task Staple_BytesSentRightAfterHelloBeforePeerArrives_Delivered(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        var port = RelayServer.Ports[2];
        var early = RandomNumberGenerator.GetBytes(100_000);
        using var sender = await ConnectAsync(port, cancellationToken);

        // Hello and payload in one write: the relay must not swallow what follows the newline.
        byte[] first = [.. Encoding.UTF8.GetBytes(HelloLine(pair.Channel, pair.SenderUuid)), .. early];
        await SendAsync(sender, first, cancellationToken);
        Assert.That(await ReadLineAsync(sender, cancellationToken), Is.EqualTo("ok"));

        var (recipient, answer) = await HelloAsync(port, pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        using (recipient)
        {
            Assert.That(answer, Is.EqualTo("ok"));
            Assert.That((await ReadExactlyAsync(recipient, early.Length, cancellationToken)).AsSpan().SequenceEqual(early), Is.True);
        }
    }

    [Test]
    public async Task Hello_Refusals_ErrorLineCloseAndNeverPiped(CancellationToken cancellationToken)
    {
        var notReady = await OpenAsync(A, B, cancellationToken, confirm: false);
        var pair = await OpenAsync(A, B, cancellationToken);
        var port = RelayServer.Ports[3];

        async Task ExpectRefusalAsync(string hello, string code, IPAddress? source = null)
        {
            using var socket = await ConnectAsync(port, cancellationToken, source);
            await SendAsync(socket, hello, cancellationToken);
            Assert.That(await ReadLineAsync(socket, cancellationToken), Is.EqualTo("error " + code), hello);
            Assert.That(await ReadToEndAsync(socket, cancellationToken), Is.Empty, "closed after the error");
        }

        await ExpectRefusalAsync(HelloLine("nosuchchannel", pair.SenderUuid), "bad_uuid");
        await ExpectRefusalAsync(HelloLine(pair.Channel, pair.SenderUuid + "0"), "bad_uuid");
        await ExpectRefusalAsync(HelloLine(notReady.Channel, notReady.SenderUuid), "not_ready");
        await ExpectRefusalAsync(HelloLine(pair.Channel, pair.RecipientUuid), "ip_limit", Third);
        await ExpectRefusalAsync("{\"channel\":\"abc\"}\n", "bad_request");
        await ExpectRefusalAsync("hello there\n", "bad_request");
        await ExpectRefusalAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad_request");
        await ExpectRefusalAsync(new string('{', 2000), "bad_request");

        // The refused attempts left no trace: the real participants still staple and pipe.
        var (sender, s) = await HelloAsync(port, pair.Channel, pair.SenderUuid, cancellationToken);
        using (sender)
        {
            Assert.That(s, Is.EqualTo("ok"));
            await ExpectRefusalAsync(HelloLine(pair.Channel, pair.SenderUuid), "duplicate");
            var (recipient, r) = await HelloAsync(port, pair.Channel, pair.RecipientUuid, cancellationToken, Second);
            using (recipient)
            {
                Assert.That(r, Is.EqualTo("ok"));
                await SendAsync(sender, "hi\n", cancellationToken);
                Assert.That(await ReadLineAsync(recipient, cancellationToken), Is.EqualTo("hi"));
            }
        }
    }

    [Test]
    public async Task Hello_BinaryGarbage_BadRequestAndRelayKeepsServing(CancellationToken cancellationToken)
    {
        using (var socket = await ConnectAsync(RelayServer.Ports[0], cancellationToken))
        {
            var garbage = RandomNumberGenerator.GetBytes(4096);
            garbage[0] = 0xff;
            garbage.AsSpan().Replace((byte)'\n', (byte)0);
            garbage[100] = (byte)'\n';
            await SendAsync(socket, garbage, cancellationToken);
            Assert.That(await ReadLineAsync(socket, cancellationToken), Is.EqualTo("error bad_request"));
        }

        await OkAsync(PostAsync(A, "join", new { role = "sender" }, cancellationToken));
    }

    [Test]
    public async Task Close_WhilePiped_TearsDownEveryConnection(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        var (s0, _) = await HelloAsync(RelayServer.Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        var (r0, _) = await HelloAsync(RelayServer.Ports[0], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        var (waiting, answer) = await HelloAsync(RelayServer.Ports[1], pair.Channel, pair.SenderUuid, cancellationToken);
        using (s0)
        using (r0)
        using (waiting)
        {
            Assert.That(answer, Is.EqualTo("ok"));
            var closed = await OkAsync(PostAsync(B, "channel", new { channel = pair.Channel, uuid = pair.RecipientUuid, close = true }, cancellationToken));
            Assert.That((bool)closed.Body["closed"]!, Is.True);

            Assert.That(await ReadToEndAsync(s0, cancellationToken), Is.Empty);
            Assert.That(await ReadToEndAsync(r0, cancellationToken), Is.Empty);
            Assert.That(await ReadToEndAsync(waiting, cancellationToken), Is.Empty);

            var (late, lateAnswer) = await HelloAsync(RelayServer.Ports[1], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
            late.Dispose();
            Assert.That(lateAnswer, Is.EqualTo("error closed"));
        }
    }

    [Test]
    public async Task Pipe_PeerResets_PartnerCutOtherLanesKeepPipingChannelOpen(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken);
        var (s0, _) = await HelloAsync(RelayServer.Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        var (r0, _) = await HelloAsync(RelayServer.Ports[0], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        var (s1, _) = await HelloAsync(RelayServer.Ports[1], pair.Channel, pair.SenderUuid, cancellationToken);
        var (r1, _) = await HelloAsync(RelayServer.Ports[1], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        using (s1)
        using (r1)
        using (r0)
        {
            s0.LingerState = new LingerOption(true, 0);
            s0.Dispose();

            Assert.That(await ReadToEndAsync(r0, cancellationToken), Is.Empty);
            await SendAsync(s1, "lane 1 goes on\n", cancellationToken);
            Assert.That(await ReadLineAsync(r1, cancellationToken), Is.EqualTo("lane 1 goes on"), "a break cuts its own pair only");
            var state = await StateAsync(pair, cancellationToken);
            Assert.That((bool)state.Body["closed"]!, Is.False, "a TCP failure ends the pair, not the channel");
        }
    }
}

/// <summary>Timeouts and expiry, each on its own relay.</summary>
[CancelAfter(20_000)]
public class StapleTimeoutTests
{
    [Test]
    public async Task Hello_NeverEnds_TimeoutErrorAfterHelloTimeout(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.HelloTimeout = TimeSpan.FromMilliseconds(200));
        using var socket = await ConnectAsync(relay.Ports[0], cancellationToken);
        await SendAsync(socket, "{\"channel\":\"abc\",", cancellationToken);

        Assert.That(await ReadLineAsync(socket, cancellationToken), Is.EqualTo("error timeout"));
    }

    [Test]
    public async Task Hello_SilentConnection_TimeoutError(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.HelloTimeout = TimeSpan.FromMilliseconds(200));
        using var socket = await ConnectAsync(relay.Ports[1], cancellationToken);

        Assert.That(await ReadLineAsync(socket, cancellationToken), Is.EqualTo("error timeout"));
    }

    [Test]
    public async Task Expiry_FakeClockPassesChannelExpiry_ConnectionsCutThenClosedThenNoChannel(CancellationToken cancellationToken)
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        await using var relay = await StartRelayAsync(cancellationToken, o => o.TimeProvider = time);
        using var a = Client(relay.BaseAddress);
        using var b = Client(relay.BaseAddress, RelayTestKit.Second);
        var pair = await OpenAsync(a, b, cancellationToken);
        var (waiting, answer) = await HelloAsync(relay.Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        using (waiting)
        {
            Assert.That(answer, Is.EqualTo("ok"));

            time.Advance(TimeSpan.FromHours(3));

            Assert.That(await ReadToEndAsync(waiting, cancellationToken), Is.Empty, "the waiting connection is cut");
            AssertError(await PostAsync(a, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken), HttpStatusCode.Gone, "closed");

            time.Advance(TimeSpan.FromMinutes(1));
            AssertError(await PostAsync(a, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken), HttpStatusCode.Forbidden, "bad_uuid");
        }
    }

    [Test]
    public async Task Expiry_FakeClockPassesChannelExpiryWhileAPairPipes_TransferGoesOnThenChannelExpiresWhenItEnds(CancellationToken cancellationToken)
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        await using var piped = await PipedOnFakeClockAsync(time, TimeSpan.FromDays(1), cancellationToken);
        var (a, pair, sender, recipient) = (piped.SenderHttp, piped.Pair, piped.Sender, piped.Recipient);
        await SendAsync(sender, "before\n", cancellationToken);
        Assert.That(await ReadLineAsync(recipient, cancellationToken), Is.EqualTo("before"));

        time.Advance(TimeSpan.FromHours(4));

        await SendAsync(sender, "after the expiry\n", cancellationToken);
        Assert.That(await ReadLineAsync(recipient, cancellationToken), Is.EqualTo("after the expiry"), "a transfer in flight is not cut");
        await SendAsync(recipient, "and back\n", cancellationToken);
        Assert.That(await ReadLineAsync(sender, cancellationToken), Is.EqualTo("and back"));
        await OkAsync(PostAsync(a, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken));

        // The pair finishes: now the expiry that waited takes effect.
        sender.Shutdown(SocketShutdown.Send);
        recipient.Shutdown(SocketShutdown.Send);
        Assert.That(await ReadToEndAsync(recipient, cancellationToken), Is.Empty);
        Assert.That(await ReadToEndAsync(sender, cancellationToken), Is.Empty);
        AssertError(await piped.PollUntilNotOpenAsync(cancellationToken), HttpStatusCode.Gone, "closed");
        time.Advance(TimeSpan.FromMinutes(1));
        AssertError(await PostAsync(a, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken), HttpStatusCode.Forbidden, "bad_uuid");
    }

    [Test]
    public async Task Pipe_NoByteEitherWayForPipeIdleTimeout_CutButActivityKeepsItOpen(CancellationToken cancellationToken)
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        await using var piped = await PipedOnFakeClockAsync(time, TimeSpan.FromMinutes(10), cancellationToken);
        var (relay, pair, sender, recipient) = (piped.Relay, piped.Pair, piped.Sender, piped.Recipient);

        // Activity every 6 minutes, in either direction, keeps the pair: 24 minutes in all.
        for (var i = 0; i < 4; i++)
        {
            time.Advance(TimeSpan.FromMinutes(6));
            var (from, to) = i % 2 == 0 ? (sender, recipient) : (recipient, sender);
            await SendAsync(from, $"tick {i}\n", cancellationToken);
            Assert.That(await ReadLineAsync(to, cancellationToken), Is.EqualTo($"tick {i}"), "an active pair stays piped");
        }

        time.Advance(TimeSpan.FromMinutes(10));

        Assert.That(await ReadToEndAsync(recipient, cancellationToken), Is.Empty, "the idle pair is cut");
        Assert.That(await ReadToEndAsync(sender, cancellationToken), Is.Empty);

        // An idle cut is a break: the lane waits for new legs within ReconnectWindow, then the channel is reset.
        await WaitForWindowsAsync(relay, pair, 1, cancellationToken);
        time.Advance(TimeSpan.FromSeconds(60));
        AssertError(await piped.PollUntilNotOpenAsync(cancellationToken), HttpStatusCode.Gone, "closed");
        var (late, answer) = await HelloAsync(relay.Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        using (late)
        {
            Assert.That(answer, Is.EqualTo("error closed"), "the channel was reset");
        }
    }

    [Test]
    public async Task Expiry_DeferredByAPipingPairThenItGoesIdle_NoNewHellosThenCutAndExpired(CancellationToken cancellationToken)
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        await using var piped = await PipedOnFakeClockAsync(time, TimeSpan.FromMinutes(10), cancellationToken, channelExpiry: TimeSpan.FromMinutes(15));
        var (relay, a, pair, sender, recipient) = (piped.Relay, piped.SenderHttp, piped.Pair, piped.Sender, piped.Recipient);

        // Minutes 6, 12, 18: the expiry (minute 15) passes while the pair is moving data.
        for (var i = 0; i < 3; i++)
        {
            time.Advance(TimeSpan.FromMinutes(6));
            await SendAsync(sender, $"tick {i}\n", cancellationToken);
            Assert.That(await ReadLineAsync(recipient, cancellationToken), Is.EqualTo($"tick {i}"));
        }

        await OkAsync(PostAsync(a, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken));
        var (late, answer) = await HelloAsync(relay.Ports[1], pair.Channel, pair.SenderUuid, cancellationToken);
        using (late)
        {
            Assert.That(answer, Is.EqualTo("error closed"), "past its expiry the channel takes no new connections");
        }

        time.Advance(TimeSpan.FromMinutes(10));

        Assert.That(await ReadToEndAsync(recipient, cancellationToken), Is.Empty, "the idle pair is cut");
        AssertError(await piped.PollUntilNotOpenAsync(cancellationToken), HttpStatusCode.Gone, "closed");
    }

    /// <summary>A relay on a fake clock with one channel whose first port's pair is piped.</summary>
    private sealed record PipedChannel(CrocRelayServer Relay, HttpClient SenderHttp, HttpClient RecipientHttp, Pair Pair, Socket Sender, Socket Recipient) : IAsyncDisposable
    {
        /// <summary>Asks for the channel's state until the relay stops answering 200 (it closes asynchronously); returns that answer.</summary>
        public async Task<RelayReply> PollUntilNotOpenAsync(CancellationToken cancellationToken)
        {
            RelayReply reply;
            while ((reply = await PostAsync(SenderHttp, "channel", new { channel = Pair.Channel, uuid = Pair.SenderUuid }, cancellationToken)).Status == HttpStatusCode.OK)
            {
                await Task.Delay(10, cancellationToken);
            }

            return reply;
        }

        public async ValueTask DisposeAsync()
        {
            Sender.Dispose();
            Recipient.Dispose();
            SenderHttp.Dispose();
            RecipientHttp.Dispose();
            await Relay.DisposeAsync();
        }
    }

    private static async Task<PipedChannel> PipedOnFakeClockAsync(
        TimeProvider time, TimeSpan pipeIdleTimeout, CancellationToken cancellationToken, TimeSpan? channelExpiry = null)
    {
        var relay = await StartRelayAsync(cancellationToken, o =>
        {
            o.TimeProvider = time;
            o.Relay.PipeIdleTimeout = pipeIdleTimeout;
            o.Relay.ChannelExpiry = channelExpiry ?? o.Relay.ChannelExpiry;
        });
        var a = Client(relay.BaseAddress);
        var b = Client(relay.BaseAddress, RelayTestKit.Second);
        var pair = await OpenAsync(a, b, cancellationToken);
        var (sender, senderAnswer) = await HelloAsync(relay.Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        var (recipient, recipientAnswer) = await HelloAsync(relay.Ports[0], pair.Channel, pair.RecipientUuid, cancellationToken, RelayTestKit.Second);
        Assert.That((senderAnswer, recipientAnswer), Is.EqualTo(("ok", "ok")));
        return new PipedChannel(relay, a, b, pair, sender, recipient);
    }

    private static ChannelRegistry Registry(CrocRelayServer relay) => relay.Services.GetRequiredService<ChannelRegistry>();

    /// <summary>Waits (polling, bounded by the test's cancellation) until <paramref name="count"/> of the channel's lanes have a reconnect window open.</summary>
    private static async Task WaitForWindowsAsync(CrocRelayServer relay, Pair pair, int count, CancellationToken cancellationToken)
    {
        var id = (await Registry(relay).GetAsync(pair.Channel, cancellationToken))!.Id;
        while (Registry(relay).InspectLegs(id).Windows != count)
        {
            await Task.Delay(5, cancellationToken);
        }
    }

    /// <summary>Waits (polling, bounded by the test's cancellation) until the relay has <paramref name="count"/> waiting connections.</summary>
    private static async Task WaitForWaitingAsync(CrocRelayServer relay, int count, CancellationToken cancellationToken)
    {
        while (Registry(relay).WaitingConnections != count)
        {
            await Task.Delay(5, cancellationToken);
        }
    }

    [Test]
    public async Task Waiting_ClientCloses_SlotFreedAndReconnectAccepted(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken);
        using var a = Client(relay.BaseAddress);
        using var b = Client(relay.BaseAddress, RelayTestKit.Second);
        var pair = await OpenAsync(a, b, cancellationToken);
        var port = relay.Ports[0];

        var (first, answer) = await HelloAsync(port, pair.Channel, pair.SenderUuid, cancellationToken);
        Assert.That(answer, Is.EqualTo("ok"));
        Assert.That(Registry(relay).WaitingConnections, Is.EqualTo(1));
        first.Dispose();
        await WaitForWaitingAsync(relay, 0, cancellationToken);

        var (again, againAnswer) = await HelloAsync(port, pair.Channel, pair.SenderUuid, cancellationToken);
        using (again)
        {
            Assert.That(againAnswer, Is.EqualTo("ok"), "not duplicate: the closed connection's slot was freed");
            Assert.That(Registry(relay).WaitingConnections, Is.EqualTo(1));
            var (recipient, recipientAnswer) = await HelloAsync(port, pair.Channel, pair.RecipientUuid, cancellationToken, RelayTestKit.Second);
            using (recipient)
            {
                Assert.That(recipientAnswer, Is.EqualTo("ok"));
                await SendAsync(again, "over the reconnected pair\n", cancellationToken);
                Assert.That(await ReadLineAsync(recipient, cancellationToken), Is.EqualTo("over the reconnected pair"));
            }
        }
    }

    [Test]
    public async Task Waiting_EarlyPayloadThenPeer_PayloadStillDelivered(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken);
        using var a = Client(relay.BaseAddress);
        using var b = Client(relay.BaseAddress, RelayTestKit.Second);
        var pair = await OpenAsync(a, b, cancellationToken);
        var port = relay.Ports[0];

        var (sender, answer) = await HelloAsync(port, pair.Channel, pair.SenderUuid, cancellationToken);
        using (sender)
        {
            Assert.That(answer, Is.EqualTo("ok"));
            await SendAsync(sender, "early\n", cancellationToken);
            var (recipient, recipientAnswer) = await HelloAsync(port, pair.Channel, pair.RecipientUuid, cancellationToken, RelayTestKit.Second);
            using (recipient)
            {
                Assert.That(recipientAnswer, Is.EqualTo("ok"));
                Assert.That(await ReadLineAsync(recipient, cancellationToken), Is.EqualTo("early"), "the waiting watch peeks, never consumes");
            }
        }
    }

    [Test]
    public async Task Waiting_NoPeerWithinWaitingTimeout_CutAndSlotFreed(CancellationToken cancellationToken)
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        await using var relay = await StartRelayAsync(cancellationToken, o => o.TimeProvider = time);
        using var a = Client(relay.BaseAddress);
        using var b = Client(relay.BaseAddress, RelayTestKit.Second);
        var pair = await OpenAsync(a, b, cancellationToken);
        var port = relay.Ports[0];

        var (waiting, answer) = await HelloAsync(port, pair.Channel, pair.SenderUuid, cancellationToken);
        using (waiting)
        {
            Assert.That(answer, Is.EqualTo("ok"));
            time.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromSeconds(1));
            Assert.That(Registry(relay).WaitingConnections, Is.EqualTo(1));
            time.Advance(TimeSpan.FromSeconds(1));

            Assert.That(await ReadToEndAsync(waiting, cancellationToken), Is.Empty, "the unpaired connection is cut");
            await WaitForWaitingAsync(relay, 0, cancellationToken);
        }

        var (again, againAnswer) = await HelloAsync(port, pair.Channel, pair.SenderUuid, cancellationToken);
        again.Dispose();
        Assert.That(againAnswer, Is.EqualTo("ok"));
    }

    /// <summary>Connects and reads to the end; a reset (even one that beats the connect) counts as the end.</summary>
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

    [Test]
    public async Task PendingHellos_PerAddressLimit_ExcessClosedAtOnceOthersServed(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.MaxPendingHellosPerAddress = 1);
        var port = relay.Ports[0];
        using var silent = await ConnectAsync(port, cancellationToken);
        Assert.That(await ClosedAtOnceAsync(port, null, cancellationToken), Is.Empty, "closed without an answer, long before HelloTimeout");

        var (other, otherAnswer) = await HelloAsync(port, "nosuch", "u", cancellationToken, RelayTestKit.Second);
        other.Dispose();
        Assert.That(otherAnswer, Is.EqualTo("error bad_uuid"), "another address is served");

        await SendAsync(silent, HelloLine("nosuch", "u"), cancellationToken);
        Assert.That(await ReadLineAsync(silent, cancellationToken), Is.EqualTo("error bad_uuid"), "the first connection is served");
        var (later, laterAnswer) = await HelloAsync(port, "nosuch", "u", cancellationToken);
        later.Dispose();
        Assert.That(laterAnswer, Is.EqualTo("error bad_uuid"), "the slot is free once the hello was read");
    }

    [Test]
    public async Task PendingHellos_RelayWideLimit_ExcessClosedAtOnce(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.MaxPendingHellos = 1);
        var port = relay.Ports[0];
        using var silent = await ConnectAsync(port, cancellationToken);
        Assert.That(await ClosedAtOnceAsync(port, RelayTestKit.Second, cancellationToken), Is.Empty);
        await SendAsync(silent, HelloLine("nosuch", "u"), cancellationToken);
        Assert.That(await ReadLineAsync(silent, cancellationToken), Is.EqualTo("error bad_uuid"));
    }

    [Test]
    public async Task PendingHellos_AllSlotsHeldBySilentAddresses_ANewAddressTakesTheOldestSlotOfTheHeaviest(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o =>
        {
            o.Relay.MaxPendingHellos = 4;
            o.Relay.MaxPendingHellosPerAddress = 2;
            o.Relay.HelloTimeout = TimeSpan.FromMinutes(1);
        });
        var port = relay.Ports[0];
        var listener = relay.Services.GetRequiredService<CrocNet.Relay.Staple.StapleListenerService>();
        var silent = new List<Socket>();
        try
        {
            foreach (var source in new[] { RelayTestKit.Second, RelayTestKit.Second, RelayTestKit.Third, RelayTestKit.Third })
            {
                silent.Add(await ConnectAsync(port, cancellationToken, source));
            }

            Assert.That(await EventuallyAsync(() => listener.PendingHellos == 4, TimeSpan.FromSeconds(10), cancellationToken), Is.True);

            var (probe, answer) = await HelloAsync(port, "nosuch", "u", cancellationToken);
            probe.Dispose();

            Assert.That(answer, Is.EqualTo("error bad_uuid"), "a new address is served, not shut out by silent ones");
            Assert.That(await EventuallyAsync(() => silent.Count(s => s.Poll(0, SelectMode.SelectRead)) == 1, TimeSpan.FromSeconds(10), cancellationToken), Is.True, "exactly one silent connection gave up its slot");
            Assert.That(silent[0].Poll(0, SelectMode.SelectRead) || silent[2].Poll(0, SelectMode.SelectRead), Is.True, "the oldest of its address");
        }
        finally
        {
            foreach (var socket in silent)
            {
                socket.Dispose();
            }
        }
    }
}

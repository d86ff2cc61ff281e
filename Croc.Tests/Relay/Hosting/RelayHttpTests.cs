using System.Diagnostics;
using System.Net;
using CrocNet.Relay;
using static CrocNet.Tests.Relay.RelayTestKit;

namespace CrocNet.Tests.Relay.Hosting;

/// <summary>The HTTP routes of a real relay on Kestrel (127.0.0.1, port 0).</summary>
[CancelAfter(20_000)]
public class RelayHttpTests : RelayFixture
{
    [Test]
    public async Task Join_Sender_ReturnsFullStateWithUuidRoleAndPorts(CancellationToken cancellationToken)
    {
        var reply = await OkAsync(PostAsync(A, "join", new { role = "sender", curve = "p384" }, cancellationToken));
        var body = reply.Body;

        Assert.That(reply.Str("channel"), Does.Match("^[0-9a-z]{10}$"));
        Assert.That(reply.Str("uuid"), Does.Match("^[0-9a-f]{32}$"));
        Assert.That(reply.Str("role"), Is.EqualTo("sender"));
        Assert.That(reply.Str("curve"), Is.EqualTo("p384"));
        Assert.That(reply.Rev, Is.EqualTo(1));
        Assert.That(body["ports"]!.AsArray().Select(p => (int)p!), Is.EqualTo(RelayServer.Ports));
        foreach (var name in new[] { "x", "y", "hh_k", "h_k" })
        {
            Assert.That(body.ContainsKey(name) && body[name] is null, Is.True, $"{name} must be present as null");
        }

        Assert.That((bool)body["stapled"]!, Is.False);
        Assert.That((bool)body["closed"]!, Is.False);
        Assert.That(body.ContainsKey("host"), Is.False, "no AdvertisedHost configured");
    }

    [Test]
    public async Task Channel_FullExchange_EveryValueAndRevVisibleToBoth(CancellationToken cancellationToken)
    {
        var sender = await OkAsync(PostAsync(A, "join", new { role = "sender", channel = "fullexchange1" }, cancellationToken));
        Assert.That(sender.Str("channel"), Is.EqualTo("fullexchange1"));
        var recipient = await OkAsync(PostAsync(B, "join", new { role = "recipient", channel = "fullexchange1" }, cancellationToken));
        Assert.That(recipient.Str("role"), Is.EqualTo("recipient"));
        var (s, r) = (sender.Str("uuid"), recipient.Str("uuid"));
        Assert.That(s, Is.Not.EqualTo(r));

        var read = await OkAsync(PostAsync(B, "channel", new { channel = "fullexchange1", uuid = r }, cancellationToken));
        Assert.That(read.Body["x"], Is.Null);
        Assert.That(read.Body.ContainsKey("uuid"), Is.False, "uuids appear only in the join reply");

        await OkAsync(PostAsync(A, "channel", new { channel = "fullexchange1", uuid = s, x = B64(1), curve = "siec" }, cancellationToken));
        await OkAsync(PostAsync(B, "channel", new { channel = "fullexchange1", uuid = r, y = B64(2), hh_k = B64(3, 32) }, cancellationToken));
        await OkAsync(PostAsync(A, "channel", new { channel = "fullexchange1", uuid = s, h_k = B64(4, 32) }, cancellationToken));

        var state = await OkAsync(PostAsync(B, "channel", new { channel = "fullexchange1", uuid = r }, cancellationToken));
        Assert.That((state.Str("x"), state.Str("y"), state.Str("hh_k"), state.Str("h_k")), Is.EqualTo((B64(1), B64(2), B64(3, 32), B64(4, 32))));
        Assert.That(state.Str("curve"), Is.EqualTo("siec"));
        Assert.That(state.Rev, Is.EqualTo(5));

        var closed = await OkAsync(PostAsync(B, "channel", new { channel = "fullexchange1", uuid = r, close = true }, cancellationToken));
        Assert.That((bool)closed.Body["closed"]!, Is.True);
        Assert.That(closed.Rev, Is.EqualTo(6));

        AssertError(await PostAsync(A, "channel", new { channel = "fullexchange1", uuid = s }, cancellationToken), HttpStatusCode.Gone, "closed");
        AssertError(await PostAsync(A, "join", new { role = "sender", channel = "fullexchange1" }, cancellationToken), HttpStatusCode.Gone, "closed");
    }

    [Test]
    public async Task Routes_EachErrorCode_RightStatusBodyAndNoStateChange(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken, confirm: false);
        var c = pair.Channel;
        async Task<long> RevAsync() => (await OkAsync(PostAsync(A, "channel", new { channel = c, uuid = pair.SenderUuid }, cancellationToken))).Rev;
        var rev = await RevAsync();

        AssertError(await PostAsync(A, "join", new { role = "sender", channel = c }, cancellationToken), HttpStatusCode.Conflict, "occupied");
        AssertError(await PostAsync(B, "join", new { role = "recipient", channel = c }, cancellationToken), HttpStatusCode.Conflict, "occupied");
        AssertError(await PostAsync(B, "join", new { role = "recipient", channel = "doesnotexist" }, cancellationToken), HttpStatusCode.NotFound, "no_channel");
        AssertError(await PostAsync(B, "channel", new { channel = "doesnotexist", uuid = pair.RecipientUuid }, cancellationToken), HttpStatusCode.Forbidden, "bad_uuid");
        AssertError(await PostAsync(B, "channel", new { channel = c, uuid = pair.SenderUuid + "0" }, cancellationToken), HttpStatusCode.Forbidden, "bad_uuid");
        AssertError(await PostAsync(B, "channel", new { channel = c, uuid = pair.RecipientUuid, y = B64(2), hh_k = B64(3) }, cancellationToken), HttpStatusCode.Conflict, "not_ready");
        AssertError(await PostAsync(A, "channel", new { channel = c, uuid = pair.SenderUuid, h_k = B64(4) }, cancellationToken), HttpStatusCode.Conflict, "not_ready");
        Assert.That(await RevAsync(), Is.EqualTo(rev));

        await OkAsync(PostAsync(A, "channel", new { channel = c, uuid = pair.SenderUuid, x = B64(1) }, cancellationToken));
        AssertError(await PostAsync(A, "channel", new { channel = c, uuid = pair.SenderUuid, x = B64(9) }, cancellationToken), HttpStatusCode.Conflict, "already_set");
        var state = await OkAsync(PostAsync(A, "channel", new { channel = c, uuid = pair.SenderUuid }, cancellationToken));
        Assert.That(state.Str("x"), Is.EqualTo(B64(1)), "the refused second x changed nothing");
        Assert.That(state.Rev, Is.EqualTo(rev + 1));
    }

    [Test]
    public async Task Routes_ThirdSourceAddress_IpLimitAndTheFirstTwoStillWork(CancellationToken cancellationToken)
    {
        using var third = Client(RelayServer.BaseAddress, Third);
        var pair = await OpenAsync(A, B, cancellationToken, confirm: false);

        AssertError(await PostAsync(third, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken), HttpStatusCode.Forbidden, "ip_limit");
        AssertError(await PostAsync(third, "join", new { role = "sender", channel = pair.Channel }, cancellationToken), HttpStatusCode.Forbidden, "ip_limit");
        await OkAsync(PostAsync(A, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken));
        await OkAsync(PostAsync(B, "channel", new { channel = pair.Channel, uuid = pair.RecipientUuid }, cancellationToken));
    }

    [Test]
    public async Task Routes_RefusedRecipientFromSecondAddress_DoesNotUseUpTheAddressSlot(CancellationToken cancellationToken)
    {
        using var third = Client(RelayServer.BaseAddress, Third);
        var sender = await OkAsync(PostAsync(A, "join", new { role = "sender" }, cancellationToken));
        var c = sender.Str("channel");

        AssertError(await PostAsync(B, "channel", new { channel = c, uuid = "0123" }, cancellationToken), HttpStatusCode.Forbidden, "bad_uuid");
        await OkAsync(PostAsync(third, "join", new { role = "recipient", channel = c }, cancellationToken));

        // Without a valid uuid B learns nothing about the channel, not even that the IP rule would refuse it.
        AssertError(await PostAsync(B, "channel", new { channel = c, uuid = "0123" }, cancellationToken), HttpStatusCode.Forbidden, "bad_uuid");
    }

    [TestCase("join", "not json")]
    [TestCase("join", "")]
    [TestCase("join", "null")]
    [TestCase("join", "[]")]
    [TestCase("join", "{\"role\":5}")]
    [TestCase("join", "{\"role\":\"boss\"}")]
    [TestCase("join", "{}")]
    [TestCase("join", "{\"role\":\"sender\",\"curve\":\"p999\"}")]
    [TestCase("join", "{\"role\":\"sender\",\"channel\":\"Upper\"}")]
    [TestCase("join", "{\"role\":\"sender\",\"channel\":\"\"}")]
    [TestCase("join", "{\"role\":\"sender\",\"channel\":\"with-dash\"}")]
    [TestCase("join", "{\"role\":\"sender\",\"role\":\"recipient\"}")]
    [TestCase("join", "{\"role\":\"recipient\"}")]
    [TestCase("join", "{\"role\":\"sender\",\"uuid\":\"short\"}")]
    [TestCase("join", "{\"role\":\"sender\",\"uuid\":\"0123456789ABCDEF0123456789abcdef\"}")]
    [TestCase("join", "{\"role\":\"sender\",\"uuid\":7}")]
    [TestCase("channel", "{\"channel\":\"abc\"}")]
    [TestCase("channel", "{\"channel\":\"abc\",\"uuid\":7}")]
    [TestCase("channel", "{\"channel\":\"abc\",\"uuid\":\"u\",\"close\":\"yes\"}")]
    [TestCase("channel", "{\"channel\":\"abc\",\"uuid\":\"u\",\"wait\":-1}")]
    [TestCase("channel", "{\"channel\":\"abc\",\"uuid\":\"u\",\"wait\":\"5\"}")]
    [TestCase("channel", "{\"channel\":\"abc\",\"uuid\":\"u\",\"since\":-1}")]
    [TestCase("channel", "{\"channel\":\"abc\",\"uuid\":\"u\",\"x\":\"not base64!\"}")]
    [TestCase("channel", "{\"channel\":\"abc\",\"uuid\":\"u\",\"x\":\"\"}")]
    [TestCase("channel", "{\"channel\":\"abc\",\"uuid\":\"u\",\"x\":\"eA==\",\"close\":true}")]
    [TestCase("channel", "{\"channel\":\"abc\",\"uuid\":\"u\",\"y\":\"eA==\"}")]
    [TestCase("channel", "{\"channel\":\"abc\",\"uuid\":\"u\",\"x\":\"eA==\",\"curve\":\"p1\"}")]
    public async Task Routes_MalformedBody_BadRequest(string route, string body, CancellationToken cancellationToken)
        => AssertError(await PostRawAsync(A, route, body, cancellationToken), HttpStatusCode.BadRequest, "bad_request");

    [Test]
    public async Task Channel_OversizeValuesAndBodies_BadRequestAndNoStateChange(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken, confirm: false);
        var rev = (await OkAsync(PostAsync(A, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken))).Rev;

        AssertError(await PostAsync(A, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid, x = B64(1, 257) }, cancellationToken), HttpStatusCode.BadRequest, "bad_request");
        var padding = new string(' ', 17 * 1024);
        AssertError(await PostRawAsync(A, "channel", $"{{\"channel\":\"{pair.Channel}\",\"uuid\":\"{pair.SenderUuid}\",\"x\":\"{B64(1)}\"{padding}}}", cancellationToken), HttpStatusCode.BadRequest, "bad_request");
        AssertError(await PostRawAsync(A, "join", "{\"role\":\"sender\",\"channel\":\"" + new string('a', 65) + "\"}", cancellationToken), HttpStatusCode.BadRequest, "bad_request");

        var state = await OkAsync(PostAsync(A, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken));
        Assert.That(state.Rev, Is.EqualTo(rev));
        Assert.That(state.Body["x"], Is.Null);
    }

    [Test]
    public async Task Channel_OversizeChunkedBody_BadRequest(CancellationToken cancellationToken)
    {
        // No Content-Length: the relay must count the bytes itself.
        using var content = new StreamContent(new MemoryStream(new byte[64 * 1024]));
        content.Headers.ContentType = new("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "channel") { Content = content };
        request.Headers.TransferEncodingChunked = true;
        using var response = await A.SendAsync(request, cancellationToken);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(await response.Content.ReadAsStringAsync(cancellationToken), Does.Contain("\"code\":\"bad_request\""));
    }

    [Test]
    public async Task Channel_LongPoll_ReturnsWhenTheStateChanges(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken, confirm: false);
        var since = (await OkAsync(PostAsync(B, "channel", new { channel = pair.Channel, uuid = pair.RecipientUuid }, cancellationToken))).Rev;

        var poll = PostAsync(B, "channel", new { channel = pair.Channel, uuid = pair.RecipientUuid, wait = 30, since }, cancellationToken);
        await OkAsync(PostAsync(A, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid, x = B64(7) }, cancellationToken));

        var state = await OkAsync(poll);
        Assert.That(state.Rev, Is.GreaterThan(since));
        Assert.That(state.Str("x"), Is.EqualTo(B64(7)));
    }

    [Test]
    public async Task Channel_LongPoll_ReturnsUnchangedStateWhenTimeRunsOut(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken, confirm: false);
        var clock = Stopwatch.StartNew();

        var state = await OkAsync(PostAsync(B, "channel", new { channel = pair.Channel, uuid = pair.RecipientUuid, wait = 0.5 }, cancellationToken));

        Assert.That(clock.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(450)), "the reply was held");
        Assert.That(state.Rev, Is.EqualTo(2));
    }

    [Test]
    public async Task Channel_LongPoll_ReturnsWhenTheChannelCloses(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(A, B, cancellationToken, confirm: false);

        var clock = Stopwatch.StartNew();
        var poll = PostAsync(B, "channel", new { channel = pair.Channel, uuid = pair.RecipientUuid, wait = 30, since = 1000 }, cancellationToken);
        await OkAsync(PostAsync(A, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid, close = true }, cancellationToken));

        // Both requests are in flight at once: a poll parked before the close is released with the closed
        // state; one that reaches the relay just after it is refused as closed. Either way it never waits out its 30 s.
        var reply = await poll;
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)));
        if (reply.Status == HttpStatusCode.OK)
        {
            Assert.That((bool)reply.Body["closed"]!, Is.True);
        }
        else
        {
            AssertError(reply, HttpStatusCode.Gone, "closed");
        }
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Post_BodyThatStopsArriving_BadRequestInTheContractShape(CancellationToken cancellationToken)
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, RelayServer.BaseAddress.Port, cancellationToken);
        var head = $"POST {RelayServer.BaseAddress.AbsolutePath}join HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{{\"role\":";
        await socket.SendAsync(System.Text.Encoding.ASCII.GetBytes(head), cancellationToken);

        // The rest of the body never comes; the relay answers instead of waiting for ever.
        var response = new List<byte>();
        var buffer = new byte[4096];
        int read;
        while ((read = await socket.ReceiveAsync(buffer, cancellationToken)) > 0)
        {
            response.AddRange(buffer.AsSpan(0, read).ToArray());
            if (System.Text.Encoding.ASCII.GetString(response.ToArray()).Contains('}', StringComparison.Ordinal))
            {
                break;
            }
        }

        var text = System.Text.Encoding.ASCII.GetString(response.ToArray());
        Assert.That(text, Does.StartWith("HTTP/1.1 400"));
        Assert.That(text, Does.Contain("\"code\":\"bad_request\""));
    }

    [TestCase("text/plain")]
    [TestCase("application/x-www-form-urlencoded")]
    [TestCase("multipart/form-data; boundary=x")]
    [TestCase(null)]
    public async Task Post_ContentTypeNotJson_BadRequest(string? contentType, CancellationToken cancellationToken)
    {
        using var content = new ByteArrayContent("{\"role\":\"sender\"}"u8.ToArray());
        if (contentType is not null)
        {
            content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        }

        using var response = await A.PostAsync("join", content, cancellationToken);
        var body = System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken))!.AsObject();
        AssertError(new RelayReply(response.StatusCode, body), HttpStatusCode.BadRequest, "bad_request");
        Assert.That((string?)body["error"], Does.Contain("application/json"));
    }

    [Test]
    public async Task Post_JsonWithCharset_Accepted(CancellationToken cancellationToken)
    {
        using var content = new StringContent("{\"role\":\"sender\"}", System.Text.Encoding.UTF8, "application/json");
        Assert.That(content.Headers.ContentType!.CharSet, Is.EqualTo("utf-8"));
        using var response = await A.PostAsync("join", content, cancellationToken);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
    }

    [TestCase(0)]
    [TestCase(200)]
    [CancelAfter(20_000)]
    public async Task Channel_WaitAboveMaxWait_ClampedNotRefused(int maxWaitMs, CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o => o.Relay.MaxWait = TimeSpan.FromMilliseconds(maxWaitMs));
        using var a = Client(relay.BaseAddress);
        using var b = Client(relay.BaseAddress, Second);
        var pair = await OpenAsync(a, b, cancellationToken, confirm: false);
        var rev = (await OkAsync(PostAsync(a, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken))).Rev;

        var started = System.Diagnostics.Stopwatch.StartNew();
        var state = await OkAsync(PostAsync(a, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid, wait = 30, since = rev }, cancellationToken));

        Assert.That(state.Rev, Is.EqualTo(rev), "nothing changed: the long-poll ran out");
        Assert.That(started.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(maxWaitMs * 0.9)).And.LessThan(TimeSpan.FromSeconds(10)));
    }

    [Test]
    public async Task Channel_NoValidUuid_SameAnswerForUnknownLiveThirdAddressAndClosedChannels(CancellationToken cancellationToken)
    {
        using var third = Client(RelayServer.BaseAddress, Third);
        var pair = await OpenAsync(A, B, cancellationToken, confirm: false);
        var answers = new List<string>
        {
            (await PostAsync(third, "channel", new { channel = "nosuchchannel", uuid = "0123" }, cancellationToken)).Body.ToJsonString(),
            (await PostAsync(third, "channel", new { channel = pair.Channel, uuid = "0123" }, cancellationToken)).Body.ToJsonString(),
            (await PostAsync(A, "channel", new { channel = pair.Channel, uuid = "0123" }, cancellationToken)).Body.ToJsonString(),
        };
        await OkAsync(PostAsync(A, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid, close = true }, cancellationToken));
        answers.Add((await PostAsync(third, "channel", new { channel = pair.Channel, uuid = "0123" }, cancellationToken)).Body.ToJsonString());

        Assert.That(answers.Distinct().ToList(), Has.Count.EqualTo(1), string.Join("\n", answers));
        AssertError(await PostAsync(third, "channel", new { channel = pair.Channel, uuid = "0123" }, cancellationToken), HttpStatusCode.Forbidden, "bad_uuid");
        await OkAsync(PostAsync(B, "channel", new { channel = pair.Channel, uuid = pair.RecipientUuid, close = true }, cancellationToken));
    }
}

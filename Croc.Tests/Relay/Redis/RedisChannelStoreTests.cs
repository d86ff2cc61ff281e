using System.Diagnostics;
using System.Net;
using CrocNet.Relay;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using static CrocNet.Tests.Relay.RelayTestKit;

namespace CrocNet.Tests.Relay.Redis;

/// <summary>
/// Three real relay nodes sharing their channels through one real redis-server: every route on any node, the protocol's
/// rules across nodes, atomic transitions under races, wake-ups across nodes, expiry, and an outage of Redis.
/// </summary>
[NonParallelizable]
public class RedisChannelStoreTests
{
    private RedisServer _redis = null!;

    [OneTimeSetUp]
    public async Task StartRedisAsync() => _redis = await RedisServer.StartAsync(CancellationToken.None);

    [OneTimeTearDown]
    public async Task StopRedisAsync() => await _redis.DisposeAsync();

    [Test]
    [CancelAfter(30_000)]
    public async Task Handshake_JoinOnOneNodeEachStepOnAnother_WholeExchangeWorks(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken);
        var (sa, sb, sc) = (cluster.Client(0), cluster.Client(1), cluster.Client(2));
        var (ra, rb, rc) = (cluster.Client(0, Second), cluster.Client(1, Second), cluster.Client(2, Second));

        var joined = await OkAsync(PostAsync(sa, "join", new { role = "sender" }, cancellationToken));
        var channel = joined.Str("channel");
        var sender = joined.Str("uuid");
        var recipient = (await OkAsync(PostAsync(rb, "join", new { role = "recipient", channel }, cancellationToken))).Str("uuid");
        var x = await OkAsync(PostAsync(sc, "channel", new { channel, uuid = sender, x = B64(1) }, cancellationToken));
        var y = await OkAsync(PostAsync(ra, "channel", new { channel, uuid = recipient, y = B64(2), hh_k = B64(3, 32) }, cancellationToken));
        var hk = await OkAsync(PostAsync(sb, "channel", new { channel, uuid = sender, h_k = B64(4, 32) }, cancellationToken));

        Assert.That(new[] { joined.Rev, x.Rev, y.Rev, hk.Rev }, Is.EqualTo(new long[] { 1, 3, 4, 5 }), "the recipient's join was rev 2");
        foreach (var reader in new[] { rc, sa, rb })
        {
            var uuid = reader == sa ? sender : recipient;
            var state = await OkAsync(PostAsync(reader, "channel", new { channel, uuid }, cancellationToken));
            Assert.Multiple(() =>
            {
                Assert.That(state.Rev, Is.EqualTo(5));
                Assert.That(state.Str("x"), Is.EqualTo(B64(1)));
                Assert.That(state.Str("y"), Is.EqualTo(B64(2)));
                Assert.That(state.Str("hh_k"), Is.EqualTo(B64(3, 32)));
                Assert.That(state.Str("h_k"), Is.EqualTo(B64(4, 32)));
            });
        }

        // Redis holds hashes of the bearer tokens, never the tokens themselves.
        var (_, json, _) = await cluster.RecordAsync(channel);
        Assert.That(json, Does.Not.Contain(sender).And.Not.Contain(recipient).And.Contain(UuidHashOf(sender)));
        Assert.That(json, Does.Contain("\"o\":\"node-a\""), "the creating node is recorded as the owner");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Reconnecting_WrittenOnOneNode_ReadOnAnotherAndGoneOnceStapled(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken);
        var pair = await OpenAsync(cluster.Client(0), cluster.Client(1, Second), cancellationToken);
        var store = cluster.Nodes[0].Services.GetRequiredService<CrocNet.Relay.Channels.IChannelStore>();
        var id = (await cluster.Registry(0).GetAsync(pair.Channel, cancellationToken))!.Id;

        await store.UpdateAsync(pair.Channel, id, static s => CrocNet.Relay.Channels.ChannelMachine.SetStapled(s, stapled: false, reconnecting: true), cancellationToken);
        var read = await OkAsync(PostAsync(cluster.Client(2), "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken));
        Assert.That(((bool)read.Body["stapled"]!, (bool?)read.Body["reconnecting"]), Is.EqualTo((false, (bool?)true)));
        Assert.That((await cluster.RecordAsync(pair.Channel)).Json, Does.Contain("\"rc\":true"));

        await store.UpdateAsync(pair.Channel, id, static s => CrocNet.Relay.Channels.ChannelMachine.SetStapled(s, stapled: true, reconnecting: false), cancellationToken);
        read = await OkAsync(PostAsync(cluster.Client(1), "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken));
        Assert.That(((bool)read.Body["stapled"]!, read.Body.ContainsKey("reconnecting")), Is.EqualTo((true, false)));
        Assert.That((await cluster.RecordAsync(pair.Channel)).Json, Does.Not.Contain("\"rc\""), "written only when true: older nodes read the record as before");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Channel_RecordThatCannotBeRead_503UnavailableAndNothingOfItInTheAnswer(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken);
        var pair = await OpenAsync(cluster.Client(0), cluster.Client(1, Second), cancellationToken);
        var (version, _, _) = await cluster.RecordAsync(pair.Channel);
        await using (var connection = await _redis.ConnectAsync())
        {
            // Damaged (or written by something else): an address that is no address.
            await connection.GetDatabase().HashSetAsync(cluster.Prefix + "ch:{" + pair.Channel + "}", "s", "{\"f\":1,\"id\":1,\"n\":\"x\",\"a\":[\"not-an-address\"],\"ck\":\"also-not\"}");
        }

        var reply = await PostAsync(cluster.Client(2), "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken);

        AssertError(reply, HttpStatusCode.ServiceUnavailable, "unavailable");
        Assert.That(reply.Body.ToJsonString(), Does.Not.Contain("not-an-address"));
        Assert.That(version, Is.Not.Null);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task JoinRecipient_TwoNodesAtOnce_ExactlyOneWinsTheOtherOccupiedAndChangesNothing(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken);
        var sender = cluster.Client(0);
        var (onB, onC) = (cluster.Client(1, Second), cluster.Client(2, Second));
        for (var round = 0; round < 100; round++)
        {
            var channel = (await OkAsync(PostAsync(sender, "join", new { role = "sender" }, cancellationToken))).Str("channel");
            var first = PostAsync(onB, "join", new { role = "recipient", channel }, cancellationToken);
            var second = PostAsync(onC, "join", new { role = "recipient", channel }, cancellationToken);
            var replies = await Task.WhenAll(first, second);

            var won = replies.Where(r => r.Status == HttpStatusCode.OK).ToList();
            var lost = replies.Where(r => r.Status != HttpStatusCode.OK).ToList();
            Assert.That(won, Has.Count.EqualTo(1), $"round {round}: exactly one recipient joins");
            AssertError(lost.Single(), HttpStatusCode.Conflict, "occupied");
            Assert.That(won[0].Rev, Is.EqualTo(2));
            var (version, _, _) = await cluster.RecordAsync(channel);
            Assert.That(version, Does.EndWith(":2"), "the refused join wrote nothing: the record was written twice, create and one join");
        }
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Channel_ThirdAddressOnAnotherNode_IpLimitAndNothingChanges(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken);
        var pair = await OpenAsync(cluster.Client(0), cluster.Client(1, Second), cancellationToken, confirm: false);
        var before = await cluster.RecordAsync(pair.Channel);

        AssertError(await PostAsync(cluster.Client(2, Third), "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken), HttpStatusCode.Forbidden, "ip_limit");
        AssertError(await PostAsync(cluster.Client(1, Third), "channel", new { channel = pair.Channel, uuid = pair.SenderUuid, x = B64(1) }, cancellationToken), HttpStatusCode.Forbidden, "ip_limit");
        AssertError(await PostAsync(cluster.Client(0, Third), "join", new { role = "recipient", channel = pair.Channel }, cancellationToken), HttpStatusCode.Forbidden, "ip_limit");

        var after = await cluster.RecordAsync(pair.Channel);
        Assert.That((after.Version, after.Json), Is.EqualTo((before.Version, before.Json)), "refused requests on any node change nothing");
        var state = await OkAsync(PostAsync(cluster.Client(2), "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken));
        Assert.That(state.Rev, Is.EqualTo(2));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Rev_ChangesAndRefusalsSpreadOverNodes_OnlyGrows(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken);
        var senders = Enumerable.Range(0, 3).Select(i => cluster.Client(i)).ToArray();
        var recipients = Enumerable.Range(0, 3).Select(i => cluster.Client(i, Second)).ToArray();
        var pair = await OpenAsync(senders[0], recipients[1], cancellationToken, confirm: false);
        var revs = new List<long>();
        for (var i = 0; i < 12; i++)
        {
            // Reads, refused re-posts and the handshake's steps, each on the next node.
            var node = i % 3;
            var reply = (i % 4) switch
            {
                0 => await PostAsync(senders[node], "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken),
                1 => await PostAsync(senders[node], "channel", new { channel = pair.Channel, uuid = pair.SenderUuid, x = B64(i) }, cancellationToken),
                2 => await PostAsync(recipients[node], "channel", new { channel = pair.Channel, uuid = pair.RecipientUuid, y = B64(i), hh_k = B64(i, 32) }, cancellationToken),
                _ => await PostAsync(senders[node], "channel", new { channel = pair.Channel, uuid = pair.SenderUuid, h_k = B64(i, 32) }, cancellationToken),
            };
            Assert.That(reply.Status, Is.EqualTo(HttpStatusCode.OK).Or.EqualTo(HttpStatusCode.Conflict), reply.Body.ToJsonString());
            var read = await OkAsync(PostAsync(senders[(node + 1) % 3], "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken));
            revs.Add(read.Rev);
        }

        Assert.That(revs, Is.Ordered.Ascending);
        Assert.That(revs[^1], Is.EqualTo(5), "join, recipient, x, y, h_k: each changed it once; nothing else did");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Join_PerAddressLimitAcrossNodes_ThirdRefusedCapacity(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken, o => o.Relay.MaxChannelsPerAddress = 2);
        await OkAsync(PostAsync(cluster.Client(0), "join", new { role = "sender" }, cancellationToken));
        await OkAsync(PostAsync(cluster.Client(1), "join", new { role = "sender" }, cancellationToken));

        var third = await PostAsync(cluster.Client(2), "join", new { role = "sender" }, cancellationToken);

        AssertError(third, HttpStatusCode.ServiceUnavailable, "capacity");
        Assert.That((string?)third.Body["error"], Does.Contain("This address has too many channels"));
        await OkAsync(PostAsync(cluster.Client(2, Second), "join", new { role = "sender" }, cancellationToken));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Join_MaxChannelsAcrossNodes_RelayWideCapacity(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken, o => o.Relay.MaxChannels = 2);
        await OkAsync(PostAsync(cluster.Client(0), "join", new { role = "sender" }, cancellationToken));
        await OkAsync(PostAsync(cluster.Client(1, Second), "join", new { role = "sender" }, cancellationToken));

        var third = await PostAsync(cluster.Client(2, Third), "join", new { role = "sender" }, cancellationToken);

        AssertError(third, HttpStatusCode.ServiceUnavailable, "capacity");
        Assert.That((string?)third.Body["error"], Does.Contain("at capacity"));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Join_JoinRateAcrossNodes_ThirdRefused(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken, o => o.Relay.MaxJoinsPerMinute = 2);
        await OkAsync(PostAsync(cluster.Client(0), "join", new { role = "sender" }, cancellationToken));
        await OkAsync(PostAsync(cluster.Client(1), "join", new { role = "sender" }, cancellationToken));

        var third = await PostAsync(cluster.Client(2), "join", new { role = "sender" }, cancellationToken);

        AssertError(third, HttpStatusCode.ServiceUnavailable, "capacity");
        Assert.That((string?)third.Body["error"], Does.Contain("joined too often"));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Join_FailedLookupsAcrossNodes_BudgetSpentEverywhere(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken, o => o.Relay.MaxFailedLookupsPerMinute = 2);
        var channel = (await OkAsync(PostAsync(cluster.Client(0), "join", new { role = "sender" }, cancellationToken))).Str("channel");
        var guesser = Enumerable.Range(0, 3).Select(i => cluster.Client(i, Second)).ToArray();
        AssertError(await PostAsync(guesser[0], "join", new { role = "recipient", channel = "nosuchchannel1" }, cancellationToken), HttpStatusCode.NotFound, "no_channel");
        AssertError(await PostAsync(guesser[1], "join", new { role = "recipient", channel = "nosuchchannel2" }, cancellationToken), HttpStatusCode.NotFound, "no_channel");

        // Out of lookups on every node: even the real channel is "not there" for this address, and it stays unjoined.
        AssertError(await PostAsync(guesser[2], "join", new { role = "recipient", channel }, cancellationToken), HttpStatusCode.NotFound, "no_channel");
        var (version, _, _) = await cluster.RecordAsync(channel);
        Assert.That(version, Does.EndWith(":1"));
        await OkAsync(PostAsync(cluster.Client(2, Third), "join", new { role = "recipient", channel }, cancellationToken));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task LongPoll_OnOneNode_WakesPromptlyOnAChangeOnAnother(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken);
        var joined = await OkAsync(PostAsync(cluster.Client(0), "join", new { role = "sender" }, cancellationToken));
        var channel = joined.Str("channel");
        var poll = PostAsync(cluster.Client(1), "channel", new { channel, uuid = joined.Str("uuid"), wait = 20, since = 1 }, cancellationToken);
        await Task.Delay(300, cancellationToken); // let the poll reach node B and hold (not a correctness wait: a late poll returns at once too)
        Assert.That(poll.IsCompleted, Is.False, "nothing changed yet: the poll holds");

        var clock = Stopwatch.StartNew();
        await OkAsync(PostAsync(cluster.Client(2, Second), "join", new { role = "recipient", channel }, cancellationToken));
        var woke = await OkAsync(poll);

        Assert.That(woke.Rev, Is.EqualTo(2));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2)), "woken by the notification, not by the periodic re-read");
    }

    [Test]
    [CancelAfter(40_000)]
    public async Task Expiry_ShortLifetime_NoKeysLeftAndTtlOnlyABackstop(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(
            _redis,
            cancellationToken,
            o =>
            {
                o.Relay.ChannelExpiry = TimeSpan.FromSeconds(10);
                o.Relay.HandshakeExpiry = TimeSpan.FromSeconds(10);
                o.Relay.ClosedRetention = TimeSpan.Zero;
                o.Relay.ReconnectWindow = TimeSpan.FromSeconds(5);
            },
            r => r.KeyTtlMargin = TimeSpan.FromSeconds(10));
        var pair = await OpenAsync(cluster.Client(0), cluster.Client(1, Second), cancellationToken, confirm: false);
        var (_, _, ttl) = await cluster.RecordAsync(pair.Channel);
        Assert.That(ttl, Is.GreaterThan(TimeSpan.FromSeconds(10)).And.LessThanOrEqualTo(TimeSpan.FromSeconds(20)), "lifetime plus margin, never less than the lifetime");

        var deadline = Stopwatch.StartNew();
        List<string> keys;
        // The running nodes' directory entries stay while they run (they go when a node stops; a test below checks).
        while ((keys = [.. (await cluster.KeysAsync()).Where(k => !k.StartsWith(cluster.Prefix + "node:", StringComparison.Ordinal))]).Any(k => k != cluster.Prefix + "ids") && deadline.Elapsed < TimeSpan.FromSeconds(25))
        {
            await Task.Delay(200, cancellationToken);
        }

        Assert.That(keys, Is.EquivalentTo(new[] { cluster.Prefix + "ids" }), "the channel, its slots and the rate buckets are all gone; only the id sequence stays");
        Assert.That(deadline.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)), "forgotten by the relay at expiry, not by the backstop TTL");
        AssertError(await PostAsync(cluster.Client(2), "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken), HttpStatusCode.Forbidden, "bad_uuid");
        await cluster.DisposeAsync();
        Assert.That((await cluster.KeysAsync()).Where(k => k.StartsWith(cluster.Prefix + "node:", StringComparison.Ordinal)), Is.Empty, "stopped nodes left the directory");
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task RedisDown_Routes503UnhealthyPipesGoOn_RedisBack_ServiceResumes(CancellationToken cancellationToken)
    {
        // An outage of its own Redis: the fixture's stays up for the other tests.
        await using var redis = await RedisServer.StartAsync(cancellationToken);
        await using var cluster = await RelayCluster.StartAsync(redis, cancellationToken);
        var node = cluster.Nodes[0];
        var health = new CrocRelayHealthCheck(node.Services);
        var healthy = await health.CheckHealthAsync(new HealthCheckContext(), cancellationToken);
        Assert.That(healthy.Status, Is.EqualTo(HealthStatus.Healthy), healthy.Description);

        // A transfer piped on node A before the outage.
        var pair = await OpenAsync(cluster.Client(0), cluster.Client(0, Second), cancellationToken);
        var (s, sAnswer) = await HelloAsync(node.Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        var (r, rAnswer) = await HelloAsync(node.Ports[0], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        using var senderLeg = s;
        using var recipientLeg = r;
        Assert.That((sAnswer, rAnswer), Is.EqualTo(("ok", "ok")));

        await redis.StopAsync();

        var clock = Stopwatch.StartNew();
        AssertError(await PostAsync(cluster.Client(1), "join", new { role = "sender" }, cancellationToken), HttpStatusCode.ServiceUnavailable, "unavailable");
        AssertError(await PostAsync(cluster.Client(2), "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken), HttpStatusCode.ServiceUnavailable, "unavailable");
        AssertError(await PostAsync(cluster.Client(0), "channel", new { channel = pair.Channel, uuid = pair.SenderUuid, wait = 5 }, cancellationToken), HttpStatusCode.ServiceUnavailable, "unavailable");
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(6)), "answered within the command timeout, never hanging");
        var unhealthy = await health.CheckHealthAsync(new HealthCheckContext(), cancellationToken);
        Assert.That(unhealthy.Status, Is.EqualTo(HealthStatus.Unhealthy));
        Assert.That(unhealthy.Description, Does.Contain("channel store").And.Not.Contain(redis.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var (late, lateAnswer) = await HelloAsync(cluster.Nodes[1].Ports[1], pair.Channel, pair.SenderUuid, cancellationToken);
        late.Dispose();
        Assert.That(lateAnswer, Is.EqualTo("error unavailable"), "a new leg cannot be routed while the store is away: a clear, transient refusal");

        var payload = new byte[256 * 1024];
        new Random(7).NextBytes(payload);
        await SendAsync(senderLeg, payload, cancellationToken);
        Assert.That(await ReadExactlyAsync(recipientLeg, payload.Length, cancellationToken), Is.EqualTo(payload), "a running pipe does not need Redis");

        await redis.StartAgainAsync(cancellationToken);
        var back = Stopwatch.StartNew();
        var checks = cluster.Nodes.Select(n => new CrocRelayHealthCheck(n.Services)).ToList();
        while (true)
        {
            // Each node reconnects on its own (its multiplexer retries every second): wait for all three, bounded.
            var statuses = await Task.WhenAll(checks.Select(c => c.CheckHealthAsync(new HealthCheckContext(), cancellationToken)));
            if (statuses.All(h => h.Status == HealthStatus.Healthy))
            {
                break;
            }

            Assert.That(back.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)), "every node serves again once Redis is back");
            await Task.Delay(100, cancellationToken);
        }

        var joined = await OkAsync(PostAsync(cluster.Client(1), "join", new { role = "sender" }, cancellationToken));
        await OkAsync(PostAsync(cluster.Client(2, Second), "join", new { role = "recipient", channel = joined.Str("channel") }, cancellationToken));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task PipedChannel_KeyNearItsTtl_RefreshedWhileThisNodePipesIt(CancellationToken cancellationToken)
    {
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var cluster = await RelayCluster.StartAsync(
            _redis,
            cancellationToken,
            o =>
            {
                o.Relay.Ports = [0];
                o.TimeProvider = clock;
            },
            r => r.KeyTtlMargin = TimeSpan.FromSeconds(30),
            nodes: 1);
        var node = cluster.Nodes[0];
        var pair = await OpenAsync(cluster.Client(0), cluster.Client(0, Second), cancellationToken);
        var (s, _) = await HelloAsync(node.Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        var (r, _) = await HelloAsync(node.Ports[0], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        using var senderLeg = s;
        using var recipientLeg = r;
        var deadline = Stopwatch.StartNew();
        while (!(await cluster.RecordAsync(pair.Channel)).Json!.Contains("\"st\":true", StringComparison.Ordinal))
        {
            Assert.That(deadline.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)), "the channel is stapled");
            await Task.Delay(20, cancellationToken);
        }

        // The transfer outlives what the key was last given (as a long one would): the piping node keeps it alive.
        await using (var connection = await _redis.ConnectAsync())
        {
            await connection.GetDatabase().KeyExpireAsync(cluster.Prefix + "ch:{" + pair.Channel + "}", TimeSpan.FromSeconds(3));
        }

        clock.Advance(TimeSpan.FromSeconds(11));
        deadline.Restart();
        TimeSpan? ttl;
        while ((ttl = (await cluster.RecordAsync(pair.Channel)).Ttl) is not { } left || left < TimeSpan.FromSeconds(30))
        {
            Assert.That(deadline.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2)), $"refreshed (ttl {ttl})");
            await Task.Delay(20, cancellationToken);
        }

        Assert.That(ttl, Is.LessThanOrEqualTo(TimeSpan.FromSeconds(60)), "twice the margin");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task AllAsync_ChannelsOfEveryNode_ScannedFromAnyNodeAndStoppingANodeClosesNone(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken);
        var names = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            names.Add((await OkAsync(PostAsync(cluster.Client(i), "join", new { role = "sender" }, cancellationToken))).Str("channel"));
        }

        var store = cluster.Nodes[2].Services.GetRequiredService<CrocNet.Relay.Channels.IChannelStore>();
        var all = new List<string>();
        await foreach (var state in store.AllAsync(cancellationToken))
        {
            all.Add(state.Name);
        }

        Assert.That(all, Is.EquivalentTo(names));

        // A node that stops (a rolling deploy) leaves the shared channels open for the others.
        await cluster.Nodes[0].StopAsync(cancellationToken);
        foreach (var name in names)
        {
            var (_, json, _) = await cluster.RecordAsync(name);
            Assert.That(json, Does.Contain("\"cl\":false"), name);
        }
    }

    private static string UuidHashOf(string uuid) => CrocNet.Relay.Channels.UuidHash.Of(uuid);
}

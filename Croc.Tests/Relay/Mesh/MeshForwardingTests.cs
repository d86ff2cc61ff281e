using System.Net;
using System.Net.Sockets;
using System.Text;
using CrocNet.Relay;
using CrocNet.Relay.Redis;
using CrocNet.Tests.Diagnostics;
using CrocNet.Tests.Relay.Redis;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using static CrocNet.Tests.Relay.RelayTestKit;

namespace CrocNet.Tests.Relay.Mesh;

/// <summary>
/// Legs that land on a node that does not own their channel, through three real relay nodes on one real Redis: they
/// are forwarded one hop to the owner over the authenticated mesh link, keep their client's address there, and meet.
/// </summary>
[NonParallelizable]
public class MeshForwardingTests
{
    private RedisServer _redis = null!;

    [OneTimeSetUp]
    public async Task StartRedisAsync() => _redis = await RedisServer.StartAsync(CancellationToken.None);

    [OneTimeTearDown]
    public async Task StopRedisAsync() => await _redis.DisposeAsync();

    [Test]
    [CancelAfter(30_000)]
    public async Task Leg_SenderOnOneNodeRecipientOnAnother_BothForwardedToTheOwnerAndPiped(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken);
        var pair = await OpenAsync(cluster.Client(0), cluster.Client(0, Second), cancellationToken);

        var (sender, senderAnswer) = await HelloAsync(cluster.Nodes[1].Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        var (recipient, recipientAnswer) = await HelloAsync(cluster.Nodes[2].Ports[0], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        using (sender)
        using (recipient)
        {
            Assert.That((senderAnswer, recipientAnswer), Is.EqualTo(("ok", "ok")));
            await SendAsync(sender, "from the sender", cancellationToken);
            Assert.That(Encoding.ASCII.GetString(await ReadExactlyAsync(recipient, 15, cancellationToken)), Is.EqualTo("from the sender"));
            await SendAsync(recipient, "back", cancellationToken);
            Assert.That(Encoding.ASCII.GetString(await ReadExactlyAsync(sender, 4, cancellationToken)), Is.EqualTo("back"));

            // A clean end on one side half-closes the other, through both links.
            sender.Shutdown(SocketShutdown.Send);
            Assert.That(await ReadToEndAsync(recipient, cancellationToken), Is.Empty);
        }

        Assert.That((cluster.Mesh(1).ForwardedLegs, cluster.Mesh(2).ForwardedLegs, cluster.Mesh(0).AcceptedLegs, cluster.Mesh(0).ForwardedLegs), Is.EqualTo((1L, 1L, 2L, 0L)));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Leg_ForwardedPairBreaksAndBothRedial_OwnersOkAgainReachesTheClientsAndTheyMeet(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken);
        var pair = await OpenAsync(cluster.Client(0), cluster.Client(0, Second), cancellationToken);
        var (sender, _) = await HelloAsync(cluster.Nodes[1].Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        var (recipient, _) = await HelloAsync(cluster.Nodes[2].Ports[0], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        using (recipient)
        {
            await SendAsync(sender, "first", cancellationToken);
            Assert.That(Encoding.ASCII.GetString(await ReadExactlyAsync(recipient, 5, cancellationToken)), Is.EqualTo("first"));

            // A reset on the sender's side breaks the pair at the owner, which cuts the recipient's leg too.
            sender.LingerState = new LingerOption(true, 0);
            sender.Dispose();
            Assert.That(await ReadToEndAsync(recipient, cancellationToken), Is.Empty);
        }

        var (again, againAnswer) = await HelloAsync(cluster.Nodes[1].Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        var (peer, peerAnswer) = await HelloAsync(cluster.Nodes[2].Ports[0], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        using (again)
        using (peer)
        {
            Assert.That((againAnswer, peerAnswer), Is.EqualTo(("ok again", "ok again")), "the owner's answer, word for word");
            await SendAsync(again, "second", cancellationToken);
            Assert.That(Encoding.ASCII.GetString(await ReadExactlyAsync(peer, 6, cancellationToken)), Is.EqualTo("second"));
        }
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Leg_OnTheOwnerNode_AttachedWithoutForwarding(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken, nodes: 2);
        var pair = await OpenAsync(cluster.Client(1), cluster.Client(0, Second), cancellationToken);

        var (sender, answer) = await HelloAsync(cluster.Nodes[1].Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        using (sender)
        {
            Assert.That(answer, Is.EqualTo("ok"));
            Assert.That(await EventuallyAsync(() => cluster.Registry(1).WaitingConnections == 1, TimeSpan.FromSeconds(5), cancellationToken));
        }

        Assert.That((cluster.Mesh(0).AcceptedLegs, cluster.Mesh(1).AcceptedLegs, cluster.Mesh(1).ForwardedLegs), Is.EqualTo((0L, 0L, 0L)));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Leg_ThirdAddressOnANonOwnerNode_RefusedByTheOwnerAndChangesNothing(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken);

        // The sender's address is the one the links come from (127.0.0.1): only the forwarded address tells them apart.
        var pair = await OpenAsync(cluster.Client(0), cluster.Client(1, Second), cancellationToken);
        var before = await cluster.RecordAsync(pair.Channel);

        var (stranger, answer) = await HelloAsync(cluster.Nodes[2].Ports[0], pair.Channel, pair.SenderUuid, cancellationToken, Third);
        using (stranger)
        {
            Assert.That(answer, Does.StartWith("error "));
            Assert.That(await ReadToEndAsync(stranger, cancellationToken), Is.Empty, "the refused leg is closed");
        }

        Assert.That(cluster.Mesh(0).AcceptedLegs, Is.EqualTo(1L), "the owner judged the leg");
        Assert.That((await cluster.RecordAsync(pair.Channel)).Version, Is.EqualTo(before.Version), "the refusal changed nothing");
        Assert.That(cluster.Registry(0).WaitingConnections, Is.Zero);

        // The real sender still gets in, through yet another node.
        var (sender, senderAnswer) = await HelloAsync(cluster.Nodes[1].Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        sender.Dispose();
        Assert.That(senderAnswer, Is.EqualTo("ok"));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Leg_Forwarded_CountsAgainstTheOwnersPerAddressLimitsByItsOriginalAddress(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken, o => o.Relay.MaxWaitingConnectionsPerAddress = 4);
        var a = await OpenAsync(cluster.Client(0, Second), cluster.Client(0, Third), cancellationToken);
        var b = await OpenAsync(cluster.Client(0, Second), cluster.Client(0, Third), cancellationToken);

        var legs = new List<Socket>();
        try
        {
            // Four waiting legs from one address, through two non-owner nodes: the owner holds them all for that address.
            for (var lane = 0; lane < 4; lane++)
            {
                var (leg, answer) = await HelloAsync(cluster.Nodes[1 + (lane % 2)].Ports[lane], a.Channel, a.SenderUuid, cancellationToken, Second);
                legs.Add(leg);
                Assert.That(answer, Is.EqualTo("ok"));
            }

            var (fifth, fifthAnswer) = await HelloAsync(cluster.Nodes[2].Ports[0], b.Channel, b.SenderUuid, cancellationToken, Second);
            var (other, otherAnswer) = await HelloAsync(cluster.Nodes[1].Ports[0], b.Channel, b.RecipientUuid, cancellationToken, Third);
            legs.Add(fifth);
            legs.Add(other);
            Assert.That((fifthAnswer, otherAnswer), Is.EqualTo(("error capacity", "ok")));
            var owner = cluster.Registry(0);
            Assert.That((owner.WaitingOf(Second), owner.WaitingOf(Third), owner.WaitingOf(IPAddress.Loopback)), Is.EqualTo((4, 1, 0)));
        }
        finally
        {
            legs.ForEach(l => l.Dispose());
        }
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Leg_NodeWithAnotherMeshSecret_RefusedUnavailableLinkClosedAndNoSecretLogged(CancellationToken cancellationToken)
    {
        const string wrong = "not-the-cluster-secret-987";
        using var capture = new CapturingLoggerProvider();
        using var loggers = LoggerFactory.Create(b => b.AddProvider(capture).SetMinimumLevel(LogLevel.Debug));
        await using var cluster = await RelayCluster.StartAsync(
            _redis, cancellationToken, o => o.LoggerFactory = loggers, perNode: (r, node) => r.MeshSecret = node == 2 ? wrong : RelayCluster.MeshSecret);
        var pair = await OpenAsync(cluster.Client(0), cluster.Client(0, Second), cancellationToken);

        var (refused, refusedAnswer) = await HelloAsync(cluster.Nodes[2].Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        var (good, goodAnswer) = await HelloAsync(cluster.Nodes[1].Ports[0], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        using (refused)
        using (good)
        {
            Assert.That((refusedAnswer, goodAnswer), Is.EqualTo(("error unavailable", "ok")));
            Assert.That(await EventuallyAsync(() => cluster.Mesh(0).RefusedLinks == 1, TimeSpan.FromSeconds(5), cancellationToken), "the owner closed the link too");
        }

        Assert.That((cluster.Mesh(2).RefusedLinks, cluster.Mesh(2).ForwardedLegs, cluster.Mesh(0).AcceptedLegs), Is.EqualTo((1L, 0L, 1L)));
        var lines = capture.Text;
        Assert.That(lines, Does.Contain("MeshForwardFailed").And.Contain("proof is wrong"));
        Assert.That(lines, Does.Contain("MeshLinkRefused"));
        Assert.That(lines, Does.Not.Contain(wrong).And.Not.Contain(RelayCluster.MeshSecret));
        Assert.That(lines, Does.Not.Contain(pair.SenderUuid).And.Not.Contain(pair.RecipientUuid));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Leg_OwnerStopped_TwoNodesRaceToTakeOverAndExactlyOneWins(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken);
        var pair = await OpenAsync(cluster.Client(0), cluster.Client(1, Second), cancellationToken);
        await cluster.Nodes[0].DisposeAsync();

        var senderLeg = HelloAsync(cluster.Nodes[1].Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        var recipientLeg = HelloAsync(cluster.Nodes[2].Ports[0], pair.Channel, pair.RecipientUuid, cancellationToken, Second);
        var (sender, senderAnswer) = await senderLeg;
        var (recipient, recipientAnswer) = await recipientLeg;
        using (sender)
        using (recipient)
        {
            Assert.That((senderAnswer, recipientAnswer), Is.EqualTo(("ok", "ok")));
            await SendAsync(sender, "after the takeover", cancellationToken);
            Assert.That(Encoding.ASCII.GetString(await ReadExactlyAsync(recipient, 18, cancellationToken)), Is.EqualTo("after the takeover"));
        }

        var owner = StoredOwner((await cluster.RecordAsync(pair.Channel)).Json!);
        Assert.That(owner, Is.AnyOf("node-b", "node-c"));
        var (winner, loser) = owner == "node-b" ? (1, 2) : (2, 1);
        Assert.That((cluster.Mesh(winner).AcceptedLegs, cluster.Mesh(loser).ForwardedLegs, cluster.Mesh(winner).ForwardedLegs), Is.EqualTo((1L, 1L, 0L)));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Start_SecondNodeWithoutMeshSecret_FailsNamingTheSetting(CancellationToken cancellationToken)
    {
        await using var first = await RelayCluster.StartAsync(_redis, cancellationToken, redisOptions: r => r.MeshSecret = null, nodes: 1);
        var failure = Assert.ThrowsAsync<InvalidOperationException>(() => RelayCluster.StartAsync(_redis, cancellationToken, redisOptions: r =>
        {
            r.KeyPrefix = first.Prefix;
            r.NodeId = "node-z";
            r.MeshSecret = null;
        }, nodes: 1));
        Assert.That(failure!.Message, Does.Contain("MeshSecret"));
    }

    [Test]
    [CancelAfter(30_000)]
    public void Start_ShortMeshSecretOrWildcardWithoutAdvertisedHost_FailsWithoutEchoingTheSecret(CancellationToken cancellationToken)
    {
        var failure = Assert.ThrowsAsync<OptionsValidationException>(() => RelayCluster.StartAsync(_redis, cancellationToken, redisOptions: r =>
        {
            r.MeshSecret = "short-secret";
            r.MeshListenAddress = "0.0.0.0";
        }, nodes: 1));
        Assert.That(failure!.Message, Does.Contain("MeshSecret must be").And.Not.Contain("short-secret"));

        var wildcard = Assert.ThrowsAsync<OptionsValidationException>(() => RelayCluster.StartAsync(_redis, cancellationToken, redisOptions: r => r.MeshListenAddress = "0.0.0.0", nodes: 1));
        Assert.That(wildcard!.Message, Does.Contain("MeshAdvertisedHost"));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Link_SilentPeer_ClosedAfterHelloTimeoutAndCounted(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken, o => o.Relay.HelloTimeout = TimeSpan.FromSeconds(1), nodes: 1);
        using var link = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await link.ConnectAsync(MeshEndPoint(cluster, 0), cancellationToken);
        var clock = System.Diagnostics.Stopwatch.StartNew();

        Assert.That(await ReadToEndAsync(link, cancellationToken), Is.Empty, "nothing is said to a peer that has not proved itself");
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)));
        Assert.That(await EventuallyAsync(() => cluster.Mesh(0).RefusedLinks == 1, TimeSpan.FromSeconds(5), cancellationToken));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Link_GoodHandshakeThenMalformedForwardedHello_AnsweredBadRequestAndNothingAttached(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken, nodes: 1);
        var pair = await OpenAsync(cluster.Client(0), cluster.Client(0, Second), cancellationToken);
        using var link = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await link.ConnectAsync(MeshEndPoint(cluster, 0), cancellationToken);
        Assert.That(await CrocNet.Relay.Mesh.MeshLink.ConnectAsync(link, Encoding.UTF8.GetBytes(RelayCluster.MeshSecret), "node-t", "node-a", cancellationToken), Is.EqualTo("node-a"));
        await SendAsync(link, $"{{\"channel\":\"{pair.Channel}\",\"uuid\":\"{pair.SenderUuid}\",\"lane\":0,\"address\":\"not an address\"}}\n", cancellationToken);

        Assert.That(await ReadLineAsync(link, cancellationToken), Is.EqualTo("error bad_request"));
        Assert.That((cluster.Mesh(0).AcceptedLegs, cluster.Registry(0).WaitingConnections), Is.EqualTo((0L, 0)));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Directory_RunningNode_AnnouncedWithAShortLifeAndRefreshedEveryBeat(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken, nodes: 1);
        await using var connection = await _redis.ConnectAsync();
        var db = connection.GetDatabase();
        var key = cluster.Prefix + "node:node-a";

        Assert.That((string?)await db.StringGetAsync(key), Is.EqualTo(MeshEndPoint(cluster, 0).ToString()), "the entry is the link endpoint");
        var first = await db.KeyTimeToLiveAsync(key);
        Assert.That(first, Is.GreaterThan(TimeSpan.Zero).And.LessThanOrEqualTo(TimeSpan.FromSeconds(3)), "three beats to live");
        // Between beats the time to live only falls; a rise is a renewal.
        var refreshed = false;
        var previous = first;
        for (var deadline = System.Diagnostics.Stopwatch.StartNew(); !refreshed && deadline.Elapsed < TimeSpan.FromSeconds(10);)
        {
            await Task.Delay(100, cancellationToken);
            var now = await db.KeyTimeToLiveAsync(key);
            refreshed = now > previous;
            previous = now;
        }

        Assert.That(refreshed, Is.True, "the heartbeat renews the entry");
        await cluster.Nodes[0].DisposeAsync();
        Assert.That(await db.KeyExistsAsync(key), Is.False, "a clean stop removes it");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Leg_OwnersDirectoryEntryMalformed_RefusedUnavailable(CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken, nodes: 2);
        var pair = await OpenAsync(cluster.Client(0), cluster.Client(0, Second), cancellationToken);
        await using var connection = await _redis.ConnectAsync();

        // Stop node a's heartbeat from repairing the entry; then the entry says something that is not an endpoint.
        await cluster.Nodes[0].Services.GetRequiredService<CrocNet.Relay.Mesh.MeshListenerService>().StopAsync(cancellationToken);
        await connection.GetDatabase().StringSetAsync(cluster.Prefix + "node:node-a", "127.0.0.1:not-a-port", TimeSpan.FromSeconds(30));

        var (leg, answer) = await HelloAsync(cluster.Nodes[1].Ports[0], pair.Channel, pair.SenderUuid, cancellationToken);
        leg.Dispose();
        Assert.That(answer, Is.EqualTo("error unavailable"));
        Assert.That(cluster.Mesh(1).ForwardedLegs, Is.Zero);
    }

    private static IPEndPoint MeshEndPoint(RelayCluster cluster, int node)
        => cluster.Nodes[node].Services.GetRequiredService<CrocNet.Relay.Mesh.MeshListenerService>().EndPoint!;

    private static string StoredOwner(string json) => System.Text.Json.Nodes.JsonNode.Parse(json)!["o"]!.GetValue<string>();
}

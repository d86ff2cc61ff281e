using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using CrocNet.Relay;
using CrocNet.Relay.Mesh;
using CrocNet.Relay.Staple;
using Microsoft.Extensions.DependencyInjection;
using CrocNet.Tests.Diagnostics;
using Microsoft.Extensions.Logging;
using CrocNet.Tests.Relay.Hosting;
using CrocNet.Tests.Relay.Redis;

namespace CrocNet.Tests.Relay.Mesh;

/// <summary>
/// Real transfers with the library's client through three relay nodes on one real Redis, where the sender's legs land
/// on one node, the recipient's on another and the routes go round-robin: the mesh makes the legs meet at the owner,
/// and when the owner stops mid-transfer another node takes the channel over and the transfer completes there.
/// </summary>
[NonParallelizable]
public class MeshTransferTests
{
    private readonly TempFolders _folders = new("croc-mesh-");
    private RedisServer _redis = null!;

    [OneTimeSetUp]
    public async Task StartRedisAsync() => _redis = await RedisServer.StartAsync(CancellationToken.None);

    [OneTimeTearDown]
    public async Task StopRedisAsync() => await _redis.DisposeAsync();

    [TearDown]
    public void DeleteFolders() => _folders.DeleteAll();

    [TestCase(CrocTransport.Tcp)]
    [TestCase(CrocTransport.WebSocket)]
    [CancelAfter(60_000)]
    public async Task Transfer_SenderLegsOnOneNodeRecipientLegsOnAnother_ArrivesByteExactPipedByTheOwner(CrocTransport transport, CancellationToken cancellationToken)
    {
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken);
        var piped = new ConcurrentDictionary<string, long>();
        using var listener = RelayMetricsTests.Listen(cluster.Nodes[0], (name, value, _) => piped.AddOrUpdate(name, value, (_, total) => total + value));
        var bytes = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 17);

        // The sender's join (the first route) lands on node a, which owns the channel; its legs on b, the recipient's on c.
        using var senderHandler = new MeshRoundRobinHandler(cluster.Nodes, legNode: 1, start: 0);
        using var recipientHandler = new MeshRoundRobinHandler(cluster.Nodes, legNode: 2, start: 1);
        var (output, _, _) = await TransferAsync(cluster, bytes, transport, senderHandler, recipientHandler, cancellationToken);

        Assert.That((await File.ReadAllBytesAsync(output, cancellationToken)).AsSpan().SequenceEqual(bytes), Is.True, "byte-exact");
        var webSocketLegs = transport == CrocTransport.WebSocket ? 4 : 0;
        Assert.That((senderHandler.Legs, recipientHandler.Legs), Is.EqualTo((webSocketLegs, webSocketLegs)), "WebSocket legs went through the balancer to their participant's node");
        Assert.That((cluster.Mesh(1).ForwardedLegs, cluster.Mesh(2).ForwardedLegs, cluster.Mesh(0).AcceptedLegs), Is.EqualTo((4L, 4L, 8L)), "every leg forwarded to the owner");
        Assert.That(piped.GetValueOrDefault("croc.relay.connections.stapled"), Is.EqualTo(4), "the owner piped the four lanes");
        Assert.That(piped.GetValueOrDefault("croc.relay.bytes.piped"), Is.GreaterThan(bytes.Length), "the owner piped the file");
        Assert.That(cluster.Mesh(1).ForwardedBytes + cluster.Mesh(2).ForwardedBytes, Is.GreaterThan(2L * bytes.Length), "both forwarding nodes carried it");
        Assert.That(senderHandler.Nodes.Distinct().Count() + recipientHandler.Nodes.Distinct().Count(), Is.EqualTo(6), "routes went to every node");
    }

    [Test]
    [CancelAfter(90_000)]
    public async Task Transfer_OwnerStoppedMidTransfer_AnotherNodeTakesOverAndTheTransferCompletes(CancellationToken cancellationToken)
    {
        using var capture = new CapturingLoggerProvider();
        using var loggers = LoggerFactory.Create(b => b.AddProvider(capture).SetMinimumLevel(LogLevel.Debug));
        await using var cluster = await RelayCluster.StartAsync(_redis, cancellationToken, o => o.LoggerFactory = loggers);
        try
        {
            await OwnerStoppedAsync(cluster, cancellationToken);
        }
        catch
        {
            TestContext.Out.WriteLine(capture.Text);
            throw;
        }
    }

    private async Task OwnerStoppedAsync(RelayCluster cluster, CancellationToken cancellationToken)
    {
        long ownerPiped = 0;
        using var listener = RelayMetricsTests.Listen(cluster.Nodes[0], (name, value, _) =>
        {
            if (name == "croc.relay.bytes.piped")
            {
                Interlocked.Add(ref ownerPiped, value);
            }
        });
        var big = RandomNumberGenerator.GetBytes(48 * 1024 * 1024);
        var other = RandomNumberGenerator.GetBytes(2 * 1024 * 1024);

        using var senderHandler = new MeshRoundRobinHandler(cluster.Nodes, legNode: 1, start: 0);
        using var recipientHandler = new MeshRoundRobinHandler(cluster.Nodes, legNode: 2, start: 1);
        var transfer = TransferAsync(cluster, big, CrocTransport.Tcp, senderHandler, recipientHandler, cancellationToken);

        Assert.That(await RelayTestKit.EventuallyAsync(() => Interlocked.Read(ref ownerPiped) > 1024 * 1024, TimeSpan.FromSeconds(30), cancellationToken), "the owner piped part of the file");
        senderHandler.Dead.Add(0);
        recipientHandler.Dead.Add(0);

        // The owner's data plane goes first, at once (as in a crash, its legs break mid-transfer); then the host, whose
        // graceful stop waits for long-polls it still holds.
        var owner = cluster.Nodes[0].Services;
        await owner.GetRequiredService<MeshListenerService>().StopAsync(cancellationToken);
        await owner.GetRequiredService<StapleListenerService>().StopAsync(cancellationToken);
        var pipedBeforeStop = Interlocked.Read(ref ownerPiped);
        await cluster.Nodes[0].DisposeAsync();

        // Another channel, owned by a node that stays, is not disturbed.
        using var otherSender = new MeshRoundRobinHandler(cluster.Nodes, legNode: 2, start: 1, dead: [0]);
        using var otherRecipient = new MeshRoundRobinHandler(cluster.Nodes, legNode: 1, start: 2, dead: [0]);
        var (otherOutput, otherSent, _) = await TransferAsync(cluster, other, CrocTransport.Tcp, otherSender, otherRecipient, cancellationToken);
        Assert.That((await File.ReadAllBytesAsync(otherOutput, cancellationToken)).AsSpan().SequenceEqual(other), Is.True, "the other channel's file");
        Assert.That(otherSent.Reconnects, Is.Zero, "the other channel never broke");

        var (output, sent, received) = await transfer;
        Assert.That((await File.ReadAllBytesAsync(output, cancellationToken)).AsSpan().SequenceEqual(big), Is.True, "the big file completed, byte-exact, after the takeover");
        Assert.That(cluster.Mesh(1).AcceptedLegs + cluster.Mesh(2).AcceptedLegs, Is.GreaterThanOrEqualTo(4), "the re-dialed legs met at the node that took the channel over");
        Assert.That(sent.Reconnects, Is.GreaterThanOrEqualTo(1), "the sender's legs broke with the owner and were dialed again");
        Assert.That(received.Reconnects, Is.GreaterThanOrEqualTo(1), "so were the recipient's");
        TestContext.Out.WriteLine($"reconnects: sender {sent.Reconnects}, recipient {received.Reconnects}; re-sent {sent.BytesResent:N0} B; owner piped {pipedBeforeStop:N0} B of {big.Length:N0} before it stopped");
        Assert.That(pipedBeforeStop, Is.LessThan(big.Length), "the owner stopped mid-transfer");
    }

    /// <summary>Sends <paramref name="bytes"/> as a file from a sender to a recipient; returns the received file's path.</summary>
    private async Task<(string Path, TransferResult Sent, TransferResult Received)> TransferAsync(RelayCluster cluster, byte[] bytes, CrocTransport transport, HttpMessageHandler senderHandler, HttpMessageHandler recipientHandler, CancellationToken cancellationToken)
    {
        var source = Path.Join(_folders.New(), "payload.bin");
        await File.WriteAllBytesAsync(source, bytes, cancellationToken);
        var output = _folders.New();
        var sender = NewCroc(cluster, transport, senderHandler);
        var recipient = NewCroc(cluster, transport, recipientHandler);
        await using var operation = await sender.StartSendAsync(SendContent.FromPath(source), cancellationToken: cancellationToken);
        var received = recipient.ReceiveAsync(operation.Code, new ReceiveOptions { OutputDirectory = output }, cancellationToken);
        await Task.WhenAll(received, operation.Completion).WaitAsync(cancellationToken);
        return (Path.Join(output, "payload.bin"), await operation.Completion, await received);
    }

    private static Croc NewCroc(RelayCluster cluster, CrocTransport transport, HttpMessageHandler handler) => Croc.New(o => o
        .WithRelay(cluster.Nodes[1].BaseAddress)
        .WithTransport(transport)
        .WithReconnect(8, TimeSpan.FromSeconds(30))
        .WithRetries(3, TimeSpan.FromMilliseconds(20))
        .WithIdleTimeout(TimeSpan.FromSeconds(20))
        .UseHttpMessageHandler(handler));

    /// <summary>
    /// A balancer in front of the nodes: each route goes to the next live node in turn; every data connection of this
    /// participant goes to one node (<c>legNode</c>): TCP legs through the ports of each state reply, WebSocket legs
    /// through their upgrade request.
    /// </summary>
    private sealed class MeshRoundRobinHandler(IReadOnlyList<CrocRelayServer> nodes, int legNode, int start, int[]? dead = null) : DelegatingHandler(RelayTestKit.Handler(null))
    {
        private readonly ConcurrentQueue<int> _nodes = new();
        private readonly int[] _ports = [.. nodes[legNode].Ports];
        private readonly int _legPort = nodes[legNode].BaseAddress.Port;
        private readonly int[] _httpPorts = [.. nodes.Select(n => n.BaseAddress.Port)];
        private int _next = start - 1;
        private int _legs;

        /// <summary>Nodes no route goes to any more.</summary>
        public ConcurrentBag<int> Dead { get; } = [.. dead ?? []];

        /// <summary>The node each route went to, in order.</summary>
        public IReadOnlyList<int> Nodes => [.. _nodes];

        /// <summary>How many WebSocket legs went through.</summary>
        public int Legs => Volatile.Read(ref _legs);

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.RequestUri!.AbsolutePath.EndsWith("/staple", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _legs);
                request.RequestUri = new UriBuilder(request.RequestUri) { Port = _legPort }.Uri;
                return await base.SendAsync(request, cancellationToken);
            }

            int node;
            do
            {
                node = (int)((uint)Interlocked.Increment(ref _next) % (uint)_httpPorts.Length);
            }
            while (Dead.Contains(node));

            _nodes.Enqueue(node);
            request.RequestUri = new UriBuilder(request.RequestUri) { Port = _httpPorts[node] }.Uri;
            var response = await base.SendAsync(request, cancellationToken);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return response;
            }

            var body = JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken))!.AsObject();
            body["ports"] = new JsonArray([.. _ports.Select(p => (JsonNode)p)]);
            var replaced = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
            response.Content.Dispose();
            response.Content = replaced;
            return response;
        }
    }
}

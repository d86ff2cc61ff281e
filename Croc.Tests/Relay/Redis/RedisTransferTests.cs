using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using CrocNet.Relay;

namespace CrocNet.Tests.Relay.Redis;

/// <summary>A real file transfer with the library's client through three relay nodes sharing one real Redis.</summary>
[NonParallelizable]
public class RedisTransferTests
{
    [Test]
    [CancelAfter(60_000)]
    public async Task Transfer_EveryRouteOnTheNextNodeLegsOnOne_FileArrivesByteExact(CancellationToken cancellationToken)
    {
        await using var redis = await RedisServer.StartAsync(cancellationToken);
        // TCP legs only, all on node b: the join (and so the channel's owner) is on node a, so the mesh forwards every leg
        // there (the Mesh tests put each participant's legs on a node of its own, over TCP and WebSockets).
        await using var cluster = await RelayCluster.StartAsync(redis, cancellationToken, o => o.Relay.WebSockets = false);
        var folder = Directory.CreateTempSubdirectory("croc-redis-e2e-").FullName;
        try
        {
            var source = Path.Combine(folder, "send", "payload.bin");
            Directory.CreateDirectory(Path.GetDirectoryName(source)!);
            var bytes = new byte[3 * 1024 * 1024 + 17];
            new Random(15).NextBytes(bytes);
            await File.WriteAllBytesAsync(source, bytes, cancellationToken);
            var output = Directory.CreateDirectory(Path.Combine(folder, "receive")).FullName;

            await using var stats = await redis.ConnectAsync();
            var server = stats.GetServers().Single();
            await server.ConfigResetStatisticsAsync();

            using var senderHandler = new RoundRobinHandler(cluster.Nodes, legNode: 1);
            using var recipientHandler = new RoundRobinHandler(cluster.Nodes, legNode: 1, start: 1);
            var sender = Croc.New(o => o.WithRelay(cluster.Nodes[0].BaseAddress).UseHttpMessageHandler(senderHandler).WithRetries(2, TimeSpan.FromMilliseconds(20)));
            var recipient = Croc.New(o => o.WithRelay(cluster.Nodes[0].BaseAddress).UseHttpMessageHandler(recipientHandler).WithRetries(2, TimeSpan.FromMilliseconds(20)));
            await using var operation = await sender.StartSendAsync(SendContent.FromPath(source), cancellationToken: cancellationToken);
            var received = recipient.ReceiveAsync(operation.Code, new ReceiveOptions { OutputDirectory = output }, cancellationToken);
            await Task.WhenAll(received, operation.Completion).WaitAsync(cancellationToken);

            Assert.That(await File.ReadAllBytesAsync(Path.Combine(output, "payload.bin"), cancellationToken), Is.EqualTo(bytes));
            foreach (var handler in new[] { senderHandler, recipientHandler })
            {
                Assert.That(handler.Nodes.Distinct().Count(), Is.EqualTo(3), "the participant's requests went to all three nodes: " + string.Join(",", handler.Nodes));
            }

            Assert.That(senderHandler.Nodes.Zip(senderHandler.Nodes.Skip(1)).All(p => p.First != p.Second), "no two requests in a row on one node");
            TestContext.Progress.WriteLine($"Redis commands for one transfer ({senderHandler.Nodes.Count + recipientHandler.Nodes.Count} HTTP requests): {await CommandStatsAsync(server)}");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task<string> CommandStatsAsync(StackExchange.Redis.IServer server)
    {
        var info = await server.InfoAsync("commandstats");
        var counts = info.SelectMany(g => g).Where(p => p.Key.StartsWith("cmdstat_", StringComparison.Ordinal))
            .Select(p => (Name: p.Key["cmdstat_".Length..], Calls: int.Parse(p.Value.Split(',')[0].Split('=')[1], System.Globalization.CultureInfo.InvariantCulture)))
            .Where(c => c.Name is not ("info" or "config|resetstat" or "config" or "client|setname" or "client" or "cluster" or "subscribe" or "ping" or "echo"))
            .OrderByDescending(c => c.Calls)
            .ToList();
        return $"{counts.Sum(c => c.Calls)} in all: " + string.Join(", ", counts.Select(c => $"{c.Name} {c.Calls}"));
    }

    /// <summary>
    /// Sends each HTTP request to the next relay node in turn, and points the TCP ports of every state reply at one
    /// node (<c>legNode</c>); the legs meet at the channel's owner, where the mesh forwards them.
    /// </summary>
    private sealed class RoundRobinHandler(IReadOnlyList<CrocRelayServer> nodes, int legNode, int start = 0) : DelegatingHandler(RelayTestKit.Handler(null))
    {
        private readonly ConcurrentQueue<int> _nodes = new();
        private int _next = start - 1;

        /// <summary>The node each request went to, in order.</summary>
        public IReadOnlyList<int> Nodes => [.. _nodes];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var node = (int)((uint)Interlocked.Increment(ref _next) % (uint)nodes.Count);
            _nodes.Enqueue(node);
            request.RequestUri = new UriBuilder(request.RequestUri!) { Port = nodes[node].BaseAddress.Port }.Uri;
            var response = await base.SendAsync(request, cancellationToken);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return response;
            }

            var body = JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken))!.AsObject();
            body["ports"] = new JsonArray([.. nodes[legNode].Ports.Select(p => (JsonNode)p)]);
            var replaced = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
            response.Content.Dispose();
            response.Content = replaced;
            return response;
        }
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using CrocNet.Tests.Relay.Redis;

namespace CrocNet.Tests.Relay.Mesh;

/// <summary>
/// The RelayHost sample as two nodes of one relay, each its own process configured only through its settings (Redis,
/// key prefix, node id, mesh secret and port): a sender on one node and a recipient on the other exchange a text.
/// </summary>
[NonParallelizable]
public sealed class RelayHostNodesTests
{
    private static string RelayHostDll => Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "samples", "RelayHost", "bin",
#if DEBUG
        "Debug",
#else
        "Release",
#endif
        "net10.0", "RelayHost.dll"));

    [Test]
    [CancelAfter(60_000)]
    public async Task RelayHost_TwoNodesFromConfiguration_SenderOnOneRecipientOnTheOther_TextArrives(CancellationToken cancellationToken)
    {
        if (!File.Exists(RelayHostDll))
        {
            // Built by `dotnet test` (the BuildSamplesAndBenchmarks target), not by `dotnet build Croc.Tests`.
            Assert.Ignore($"{RelayHostDll} is not built; run dotnet test Croc.sln.");
        }

        await using var redis = await RedisServer.StartAsync(cancellationToken);
        var prefix = "h" + Guid.NewGuid().ToString("N")[..8] + ":";
        var nodes = new List<(Process Process, Uri Relay, Task<string> Output)>();
        try
        {
            foreach (var id in new[] { "host-a", "host-b" })
            {
                nodes.Add(Start(id, redis, prefix));
            }

            foreach (var node in nodes)
            {
                Assert.That(await ReadyAsync(node.Relay, cancellationToken), Is.True, "the node answers its health check");
            }

            var sender = Croc.New(o => o.WithRelay(nodes[0].Relay).WithTransport(CrocTransport.Tcp).WithRetries(2, TimeSpan.FromMilliseconds(50)));
            var recipient = Croc.New(o => o.WithRelay(nodes[1].Relay).WithTransport(CrocTransport.Tcp).WithRetries(2, TimeSpan.FromMilliseconds(50)));
            await using var operation = await sender.StartSendAsync(SendContent.FromText("across two RelayHost nodes"), cancellationToken: cancellationToken);
            var received = await recipient.ReceiveAsync(operation.Code, cancellationToken);
            await operation.Completion.WaitAsync(cancellationToken);

            Assert.That(received.Text, Is.EqualTo("across two RelayHost nodes"));
        }
        finally
        {
            foreach (var node in nodes)
            {
                await ChildProcesses.KillAsync(node.Process);
            }
        }

        var second = await nodes[1].Output;
        Assert.That(second, Does.Contain("mesh link listener").And.Contain("forwarded to owner host-a, which answered ok"), "the recipient's legs went through the mesh");
        Assert.That(second + await nodes[0].Output, Does.Not.Contain(RelayCluster.MeshSecret));
    }

    private static (Process Process, Uri Relay, Task<string> Output) Start(string id, RedisServer redis, string prefix)
    {
        var port = FreePort();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(RelayHostDll);
        start.WorkingDirectory = Path.GetDirectoryName(RelayHostDll)!;
        start.Environment["Urls"] = $"http://127.0.0.1:{port}";
        start.Environment["Logging__LogLevel__CrocNet.Relay"] = "Debug";
        start.Environment["CrocRelay__ListenAddress"] = "127.0.0.1";
        for (var lane = 0; lane < 4; lane++)
        {
            start.Environment[$"CrocRelay__Ports__{lane}"] = "0";
        }

        start.Environment["CrocRelayRedis__Configuration"] = redis.Configuration;
        start.Environment["CrocRelayRedis__KeyPrefix"] = prefix;
        start.Environment["CrocRelayRedis__NodeId"] = id;
        start.Environment["CrocRelayRedis__MeshSecret"] = RelayCluster.MeshSecret;
        start.Environment["CrocRelayRedis__MeshPort"] = "0";
        var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        var output = Task.WhenAll(stdout, stderr).ContinueWith(t => string.Join(Environment.NewLine, t.Result), TaskScheduler.Default);
        return (process, new Uri($"http://127.0.0.1:{port}/croc/"), output);
    }

    private static async Task<bool> ReadyAsync(Uri relay, CancellationToken cancellationToken)
    {
        using var client = new HttpClient { BaseAddress = relay, Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            try
            {
                using var response = await client.GetAsync(new Uri(relay, "/health"), cancellationToken);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return true;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Slow to answer while it starts.
            }

            await Task.Delay(100, cancellationToken);
        }

        return false;
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using CrocNet.Tests.Relay;

namespace CrocNet.Tests.Faults;

/// <summary>
/// The fault proxy on its own, in front of plain loopback listeners standing in for a relay's HTTP port and one data
/// port: each fault does exactly what it says at exactly its byte offset, and the proxy keeps the participants' addresses.
/// </summary>
public sealed class FaultProxyTests
{
    private TcpListener _http = null!;
    private TcpListener _data = null!;

    [SetUp]
    public void StartListeners()
    {
        _http = new TcpListener(IPAddress.Loopback, 0);
        _data = new TcpListener(IPAddress.Loopback, 0);
        _http.Start();
        _data.Start();
        HttpPort = ((IPEndPoint)_http.LocalEndpoint).Port;
        DataPort = ((IPEndPoint)_data.LocalEndpoint).Port;
    }

    [TearDown]
    public void StopListeners()
    {
        _http.Stop();
        _data.Stop();
        _http.Dispose();
        _data.Dispose();
    }

    private int HttpPort { get; set; }

    private int DataPort { get; set; }

    private FaultProxy Start(Fault? fault = null, Func<Task>? drop = null) =>
        FaultProxy.Start(new Uri($"http://127.0.0.1:{HttpPort}/"), [DataPort], fault, drop);

    /// <summary>A client connected through the proxy to <paramref name="port"/> on <paramref name="side"/>'s front address, and the server's end.</summary>
    private async Task<(Socket Client, Socket Server)> ConnectAsync(FaultProxy proxy, ProxySide side, bool data, CancellationToken cancellationToken)
    {
        var front = side == ProxySide.Sender ? proxy.SenderRelay : proxy.RecipientRelay;
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await client.ConnectAsync(new IPEndPoint(IPAddress.Parse(front.Host), data ? DataPort : HttpPort), cancellationToken);
        var server = await (data ? _data : _http).AcceptSocketAsync(cancellationToken);
        return (client, server);
    }

    private static byte[] Bytes(int count, int seed = 1)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Reads until the end: the bytes, and whether it ended with a reset rather than a FIN.</summary>
    private static async Task<(byte[] Bytes, bool Reset)> ReadToEndAsync(Socket socket, CancellationToken cancellationToken)
    {
        var all = new MemoryStream();
        var buffer = new byte[64 * 1024];
        try
        {
            int read;
            while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken)) > 0)
            {
                all.Write(buffer, 0, read);
            }

            return (all.ToArray(), false);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
        {
            return (all.ToArray(), true);
        }
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task Start_Forwarding_ComesFromEachParticipantsOwnAddressAndCountsBothDirections(CancellationToken cancellationToken)
    {
        await using var proxy = Start();
        foreach (var (side, source) in new[] { (ProxySide.Sender, FaultProxy.SenderSource), (ProxySide.Recipient, FaultProxy.RecipientSource) })
        {
            var (client, server) = await ConnectAsync(proxy, side, data: true, cancellationToken);
            using (client)
            using (server)
            {
                Assert.That(((IPEndPoint)server.RemoteEndPoint!).Address, Is.EqualTo(source));
                var up = Bytes(100_000, 1);
                var down = Bytes(7_000, 2);
                await RelayTestKit.SendAsync(client, up, cancellationToken);
                Assert.That(await RelayTestKit.ReadExactlyAsync(server, up.Length, cancellationToken), Is.EqualTo(up));
                await RelayTestKit.SendAsync(server, down, cancellationToken);
                Assert.That(await RelayTestKit.ReadExactlyAsync(client, down.Length, cancellationToken), Is.EqualTo(down));
            }
        }

        var connections = proxy.Connections;
        Assert.That(connections.Select(c => (c.Side, c.Kind, c.PortIndex, c.Up, c.Down)), Is.EqualTo(new[]
        {
            (ProxySide.Sender, (LegKind?)LegKind.TcpLane, 0, 100_000L, 7_000L),
            (ProxySide.Recipient, (LegKind?)LegKind.TcpLane, 0, 100_000L, 7_000L),
        }));
        Assert.That(proxy.Bytes(ProxySide.Sender, Flow.Up, LegKind.TcpLane), Is.EqualTo(100_000));
        Assert.That(proxy.HasFired, Is.False);
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task Reset_AtOffset_ForwardsExactlyTheOffsetThenResetsBothSides(CancellationToken cancellationToken)
    {
        await using var proxy = Start(new Fault(FaultKind.Reset, new FaultTarget(ProxySide.Sender, LegKind.TcpLane, 0, Flow.Up), 30_001));
        var (client, server) = await ConnectAsync(proxy, ProxySide.Sender, data: true, cancellationToken);
        using var _ = client;
        using var __ = server;
        var up = Bytes(100_000);
        await RelayTestKit.SendAsync(client, up, cancellationToken);

        var (got, reset) = await ReadToEndAsync(server, cancellationToken);
        Assert.That(got, Is.EqualTo(up[..30_001]));
        Assert.That(reset, Is.True, "the relay side must see a reset, not an orderly end");
        Assert.That(await ReadToEndAsync(client, cancellationToken), Is.EqualTo((Array.Empty<byte>(), true)), "the client side must be reset too");
        var hit = await proxy.Fired;
        Assert.That((hit.Faulted, hit.Up), Is.EqualTo((true, 30_001L)));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task CutHalfway_AtOffset_EndsThatDirectionAndKeepsTheOther(CancellationToken cancellationToken)
    {
        await using var proxy = Start(new Fault(FaultKind.CutHalfway, new FaultTarget(ProxySide.Recipient, LegKind.TcpLane, 0, Flow.Up), 5_000));
        var (client, server) = await ConnectAsync(proxy, ProxySide.Recipient, data: true, cancellationToken);
        using var _ = client;
        using var __ = server;
        var up = Bytes(20_000);
        await RelayTestKit.SendAsync(client, up, cancellationToken);

        var (got, reset) = await ReadToEndAsync(server, cancellationToken);
        Assert.That(got, Is.EqualTo(up[..5_000]));
        Assert.That(reset, Is.False, "a cut ends the direction with a FIN");
        var down = Bytes(3_000, 2);
        await RelayTestKit.SendAsync(server, down, cancellationToken);
        Assert.That(await RelayTestKit.ReadExactlyAsync(client, down.Length, cancellationToken), Is.EqualTo(down), "the other direction carries on");
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task Stall_AtOffset_ForwardsNothingMoreEitherWayAndKeepsBothSocketsOpen(CancellationToken cancellationToken)
    {
        var proxy = Start(new Fault(FaultKind.Stall, new FaultTarget(ProxySide.Sender, LegKind.TcpLane, 0, Flow.Up), 1_000));
        var (client, server) = await ConnectAsync(proxy, ProxySide.Sender, data: true, cancellationToken);
        using var _ = client;
        using var __ = server;
        await RelayTestKit.SendAsync(client, Bytes(4_000), cancellationToken);
        Assert.That((await RelayTestKit.ReadExactlyAsync(server, 1_000, cancellationToken)).Length, Is.EqualTo(1_000));
        await proxy.Fired.WaitAsync(cancellationToken);

        // Nothing more arrives either way, and neither end is closed: reads stay pending.
        await RelayTestKit.SendAsync(server, Bytes(10, 3), cancellationToken);
        var serverRead = server.ReceiveAsync(new byte[1], SocketFlags.None, cancellationToken).AsTask();
        var clientRead = client.ReceiveAsync(new byte[1], SocketFlags.None, cancellationToken).AsTask();
        var quiet = Task.Delay(TimeSpan.FromMilliseconds(400), cancellationToken);
        Assert.That(await Task.WhenAny(serverRead, clientRead, quiet), Is.SameAs(quiet), "a stalled connection neither forwards nor closes");
        Assert.That(proxy.Connections.Single().Down, Is.Zero);

        // Stopping the proxy ends the held connection.
        await proxy.DisposeAsync();
        await Task.WhenAny(serverRead).WaitAsync(TimeSpan.FromSeconds(5), cancellationToken);
        Assert.That(serverRead.IsFaulted || serverRead.Result == 0, Is.True);
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task Delay_FromOffset_HoldsEverySegmentInBothDirections(CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(60);
        await using var proxy = Start(new Fault(FaultKind.Delay, new FaultTarget(ProxySide.Sender, LegKind.TcpLane, 0, Flow.Up), 10, delay));
        var (client, server) = await ConnectAsync(proxy, ProxySide.Sender, data: true, cancellationToken);
        using var _ = client;
        using var __ = server;
        await RelayTestKit.SendAsync(client, Bytes(10), cancellationToken);
        await RelayTestKit.ReadExactlyAsync(server, 10, cancellationToken);

        // Three round trips after the offset, each a segment up and one down: at least six delays.
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < 3; i++)
        {
            await RelayTestKit.SendAsync(client, Bytes(100, i), cancellationToken);
            await RelayTestKit.ReadExactlyAsync(server, 100, cancellationToken);
            await RelayTestKit.SendAsync(server, Bytes(100, i), cancellationToken);
            await RelayTestKit.ReadExactlyAsync(client, 100, cancellationToken);
        }

        // Timers may fire up to a tick early against the stopwatch: allow a millisecond per delay.
        Assert.That(clock.Elapsed, Is.GreaterThanOrEqualTo((delay * 6) - TimeSpan.FromMilliseconds(6)));
        Assert.That(proxy.Connections.Single().Up, Is.EqualTo(310));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task DropRelay_AtOffset_StopsTheRelayOnceAfterForwardingTheOffset(CancellationToken cancellationToken)
    {
        var drops = 0;
        await using var proxy = Start(
            new Fault(FaultKind.DropRelay, new FaultTarget(ProxySide.Recipient, LegKind.TcpLane, 0, Flow.Up), 700),
            () =>
            {
                Interlocked.Increment(ref drops);
                _data.Stop();
                return Task.CompletedTask;
            });
        var (client, server) = await ConnectAsync(proxy, ProxySide.Recipient, data: true, cancellationToken);
        using var _ = client;
        using var __ = server;
        await RelayTestKit.SendAsync(client, Bytes(2_000), cancellationToken);
        Assert.That((await RelayTestKit.ReadExactlyAsync(server, 700, cancellationToken)).Length, Is.EqualTo(700));
        await proxy.Fired.WaitAsync(cancellationToken);
        // The proxy reports the fault as it fires and then drops the relay: wait (bounded) for the drop itself.
        var clock = Stopwatch.StartNew();
        while (Volatile.Read(ref drops) == 0 && clock.Elapsed < TimeSpan.FromSeconds(5))
        {
            await Task.Delay(5, cancellationToken);
        }

        Assert.That(drops, Is.EqualTo(1));

        // With the relay gone, a new connection through the proxy is reset, as a dead host behind a live address would be.
        using var late = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await late.ConnectAsync(new IPEndPoint(IPAddress.Parse(proxy.RecipientRelay.Host), DataPort), cancellationToken);
        var (bytes, reset) = await ReadToEndAsync(late, cancellationToken);
        Assert.That((bytes.Length, reset), Is.EqualTo((0, true)));
        Assert.That(drops, Is.EqualTo(1));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task Target_ByHelloChannel_HitsOnlyTheLegThatNamesIt(CancellationToken cancellationToken)
    {
        await using var proxy = Start(new Fault(FaultKind.Reset, new FaultTarget(ProxySide.Sender, LegKind.TcpLane, 0, Flow.Up, Channel: "bbbbbbbb"), 0));
        var (first, firstServer) = await ConnectAsync(proxy, ProxySide.Sender, data: true, cancellationToken);
        var (second, secondServer) = await ConnectAsync(proxy, ProxySide.Sender, data: true, cancellationToken);
        using var _ = first;
        using var __ = firstServer;
        using var ___ = second;
        using var ____ = secondServer;

        var hello = Encoding.ASCII.GetBytes(RelayTestKit.HelloLine("aaaaaaaa", "u-1"));
        await RelayTestKit.SendAsync(first, hello, cancellationToken);
        Assert.That(await RelayTestKit.ReadExactlyAsync(firstServer, hello.Length, cancellationToken), Is.EqualTo(hello));
        await RelayTestKit.SendAsync(second, Encoding.ASCII.GetBytes(RelayTestKit.HelloLine("bbbbbbbb", "u-2")), cancellationToken);
        var (got, reset) = await ReadToEndAsync(secondServer, cancellationToken);

        Assert.That((got.Length, reset), Is.EqualTo((0, true)));
        Assert.That(proxy.Connections.Select(c => (c.HelloChannel, c.Faulted)), Is.EqualTo(new[] { ("aaaaaaaa", false), ("bbbbbbbb", true) }));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task Target_OnTheHttpPort_TellsWebSocketLegsFromHttpAndCountsArrivals(CancellationToken cancellationToken)
    {
        await using var proxy = Start(new Fault(FaultKind.Reset, new FaultTarget(ProxySide.Sender, LegKind.Http, 1, Flow.Up), 0));
        var requests = new[] { "POST /join HTTP/1.1\r\nHost: x\r\n\r\n", "GET /staple HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", "POST /channel HTTP/1.1\r\nHost: x\r\n\r\n" };
        var results = new List<(byte[] Bytes, bool Reset)>();
        foreach (var request in requests)
        {
            var (client, server) = await ConnectAsync(proxy, ProxySide.Sender, data: false, cancellationToken);
            using var _ = client;
            using var __ = server;
            await RelayTestKit.SendAsync(client, Encoding.ASCII.GetBytes(request), cancellationToken);
            client.Shutdown(SocketShutdown.Send);
            results.Add(await ReadToEndAsync(server, cancellationToken));
        }

        Assert.That(proxy.Connections.Select(c => (c.Kind, c.Arrival)), Is.EqualTo(new[] { ((LegKind?)LegKind.Http, 0), (LegKind.WebSocketLeg, 0), (LegKind.Http, 1) }));
        Assert.That(results.Select(r => (r.Bytes.Length, r.Reset)), Is.EqualTo(new[] { (requests[0].Length, false), (requests[1].Length, false), (0, true) }));
    }
}

using System.Net;
using System.Net.Sockets;
using System.Text;
using CrocNet.Transport;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace CrocNet.Tests.Transport;

/// <summary>Which transport a lane takes: Auto's TCP-then-WebSocket rule, the forced modes, and what never causes a fallback.</summary>
public class ChoosingStapleTransportTests
{
    private static readonly StapleTicket Ticket = new("chan1234", "uuid-1", "pw");

    [Test]
    [CancelAfter(20_000)]
    public async Task Auto_TcpAccepts_TcpLegWithTheHelloAndNoWebSocket(CancellationToken cancellationToken)
    {
        await using var host = await WebSocketLegHost.StartAsync(cancellationToken);
        using var tcp = new HelloListener("ok");
        using var http = new HttpMessageInvoker(new SocketsHttpHandler());
        var transport = Choosing(CrocTransport.Auto, http, TimeProvider.System);

        await using var leg = await transport.ConnectAsync(Target(host, tcp.Port), 0, Ticket, cancellationToken);

        Assert.That(leg, Is.InstanceOf<NetworkStream>());
        // The password itself never goes over a TCP leg: the hello carries a proof bound to the channel and uuid.
        var proof = CrocNet.Relay.Net.RelayAccess.LegProof("pw"u8, "chan1234", "uuid-1");
        Assert.That(await tcp.HelloAsync(cancellationToken), Is.EqualTo($$"""{"channel":"chan1234","uuid":"uuid-1","auth":"{{proof.Replace("+", "\u002B", StringComparison.Ordinal)}}"}"""));
        Assert.That(host.Upgrades, Is.Zero);
    }

    [Test]
    [CancelAfter(20_000)]
    public async Task Auto_TcpPortRefusesConnections_WebSocketLeg(CancellationToken cancellationToken)
    {
        await using var host = await WebSocketLegHost.StartAsync(cancellationToken);
        using var http = new HttpMessageInvoker(new SocketsHttpHandler());
        var transport = Choosing(CrocTransport.Auto, http, TimeProvider.System);

        await using var leg = await transport.ConnectAsync(Target(host, WebSocketStapleTransportTests.ClosedPort()), 1, Ticket, cancellationToken);

        Assert.That(leg, Is.InstanceOf<WebSocketLegStream>());
        Assert.That(host.Hellos.Single(), Does.Contain("\"lane\":1"));
    }

    [Test]
    [CancelAfter(20_000)]
    public async Task Auto_TcpConnectHangs_WebSocketLegOnceTheBoundPasses(CancellationToken cancellationToken)
    {
        await using var host = await WebSocketLegHost.StartAsync(cancellationToken);
        // A listener whose accept queue is full: further connects get no answer, as behind a firewall that drops them.
        using var blackHole = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        blackHole.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        blackHole.Listen(0);
        using var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await filler.ConnectAsync(blackHole.LocalEndPoint!, cancellationToken);
        var time = new FakeTimeProvider();
        using var http = new HttpMessageInvoker(new SocketsHttpHandler());
        var transport = Choosing(CrocTransport.Auto, http, time);

        var connecting = transport.ConnectAsync(Target(host, ((IPEndPoint)blackHole.LocalEndPoint!).Port), 0, Ticket, cancellationToken).AsTask();
        time.Advance(ChoosingStapleTransport.AutoTcpBound - TimeSpan.FromMilliseconds(100));
        var early = connecting.IsCompleted;
        while (!connecting.IsCompleted)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            await Task.WhenAny(connecting, Task.Delay(20, cancellationToken));
        }

        await using var leg = await connecting;
        Assert.That(early, Is.False, "TCP gets its whole bound");
        Assert.That(leg, Is.InstanceOf<WebSocketLegStream>());
    }

    [TestCase(CrocTransport.Auto)]
    [TestCase(CrocTransport.Tcp)]
    [CancelAfter(20_000)]
    public async Task ConnectAsync_TcpHelloRefused_RefusalStandsNoWebSocket(CrocTransport mode, CancellationToken cancellationToken)
    {
        await using var host = await WebSocketLegHost.StartAsync(cancellationToken);
        using var tcp = new HelloListener("error ip_limit");
        using var http = new HttpMessageInvoker(new SocketsHttpHandler());
        var transport = Choosing(mode, http, TimeProvider.System);

        var ex = Assert.ThrowsAsync<CrocRelayException>(async () => await transport.ConnectAsync(Target(host, tcp.Port), 0, Ticket, cancellationToken));

        Assert.That((ex!.Code, ex.RelayCode), Is.EqualTo((CrocErrorCode.RelayRefused, "ip_limit")));
        Assert.That(host.Upgrades, Is.Zero, "a refusal is never a reason to try the other transport");
    }

    [Test]
    [CancelAfter(20_000)]
    public async Task Auto_RelayWithoutWebSockets_TcpFaultIsNotHidden(CancellationToken cancellationToken)
    {
        await using var host = await WebSocketLegHost.StartAsync(cancellationToken);
        using var http = new HttpMessageInvoker(new SocketsHttpHandler());
        var transport = Choosing(CrocTransport.Auto, http, TimeProvider.System);
        var target = Target(host, WebSocketStapleTransportTests.ClosedPort()) with { WebSockets = false };

        var ex = Assert.CatchAsync<SocketException>(async () => await transport.ConnectAsync(target, 0, Ticket, cancellationToken));

        Assert.That(ex!.SocketErrorCode, Is.EqualTo(SocketError.ConnectionRefused));
        Assert.That(host.Upgrades, Is.Zero);
    }

    [TestCase(CrocTransport.Auto)]
    [TestCase(CrocTransport.WebSocket)]
    [CancelAfter(20_000)]
    public async Task ConnectAsync_RelayWithoutPorts_WebSocketLeg(CrocTransport mode, CancellationToken cancellationToken)
    {
        await using var host = await WebSocketLegHost.StartAsync(cancellationToken);
        using var tcp = new HelloListener("ok");
        using var http = new HttpMessageInvoker(new SocketsHttpHandler());
        var transport = Choosing(mode, http, TimeProvider.System);
        var target = mode == CrocTransport.Auto ? Target(host, null) : Target(host, tcp.Port);

        await using var leg = await transport.ConnectAsync(target, 0, Ticket, cancellationToken);

        Assert.That(leg, Is.InstanceOf<WebSocketLegStream>());
        Assert.That(tcp.Accepted, Is.Zero, "forced WebSocket never touches the TCP port");
    }

    [Test]
    public void Check_ForcedTcpButNoPorts_RelayRefusedNamingTheSetting()
    {
        var target = new StapleTarget(new Uri("http://relay.test/"), "relay.test", []) { Lanes = 2, WebSockets = true };

        var ex = Assert.Throws<CrocRelayException>(() => ChoosingStapleTransport.Check(CrocTransport.Tcp, target, "http://relay.test/"));

        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.RelayRefused));
        Assert.That(ex.Message, Does.Contain("no TCP data ports").And.Contain("Transport"));
        Assert.DoesNotThrow(() => ChoosingStapleTransport.Check(CrocTransport.Auto, target, "x"));
        Assert.DoesNotThrow(() => ChoosingStapleTransport.Check(CrocTransport.WebSocket, target, "x"));
    }

    [Test]
    public void Check_ForcedWebSocketButRelayHasNone_RelayRefusedNamingTheSetting()
    {
        var target = new StapleTarget(new Uri("http://relay.test/"), "relay.test", [9010]);

        var ex = Assert.Throws<CrocRelayException>(() => ChoosingStapleTransport.Check(CrocTransport.WebSocket, target, "http://relay.test/"));

        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.RelayRefused));
        Assert.That(ex.Message, Does.Contain("does not take WebSocket legs").And.Contain("Transport"));
        Assert.DoesNotThrow(() => ChoosingStapleTransport.Check(CrocTransport.Auto, target, "x"));
        Assert.DoesNotThrow(() => ChoosingStapleTransport.Check(CrocTransport.Tcp, target, "x"));
    }

    private static ChoosingStapleTransport Choosing(CrocTransport mode, HttpMessageInvoker http, TimeProvider time) =>
        new(mode, new WebSocketStapleTransport(http, TimeProvider.System), time, NullLogger.Instance);

    private static StapleTarget Target(WebSocketLegHost host, int? port) =>
        new(host.BaseAddress, "127.0.0.1", port is { } p ? [p, p] : []) { Lanes = 2, WebSockets = true };

    /// <summary>A TCP data port that reads one hello line and answers it.</summary>
    private sealed class HelloListener : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly string _reply;
        private readonly Task<string> _hello;
        private int _accepted;

        public HelloListener(string reply)
        {
            _reply = reply;
            _listener.Start();
            _hello = AnswerAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public int Accepted => Volatile.Read(ref _accepted);

        public Task<string> HelloAsync(CancellationToken cancellationToken) => _hello.WaitAsync(cancellationToken);

        public void Dispose() => _listener.Dispose();

        private async Task<string> AnswerAsync()
        {
            using var client = await _listener.AcceptTcpClientAsync();
            Interlocked.Increment(ref _accepted);
            var stream = client.GetStream();
            var line = new List<byte>();
            var one = new byte[1];
            while (await stream.ReadAsync(one) == 1 && one[0] != '\n')
            {
                line.Add(one[0]);
            }

            await stream.WriteAsync(Encoding.ASCII.GetBytes(_reply + "\n"));
            return Encoding.UTF8.GetString([.. line]);
        }
    }
}

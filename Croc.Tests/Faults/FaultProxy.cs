using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace CrocNet.Tests.Faults;

/// <summary>What the proxy does to a connection once its byte offset is reached.</summary>
internal enum FaultKind
{
    /// <summary>Nothing: the proxy only forwards and counts.</summary>
    None,

    /// <summary>Forward up to the offset, then reset both sockets (RST: linger 0 and close).</summary>
    Reset,

    /// <summary>Forward up to the offset, then forward nothing more in either direction, keeping both sockets open.</summary>
    Stall,

    /// <summary>From the offset on, wait before each forwarded segment (latency and a throttle), in both directions.</summary>
    Delay,

    /// <summary>Forward up to the offset, then end that direction (FIN) and read no more of it; the other direction carries on.</summary>
    CutHalfway,

    /// <summary>Forward up to the offset, then stop the relay host itself.</summary>
    DropRelay,
}

/// <summary>Which participant's connections: the proxy has one front address per participant.</summary>
internal enum ProxySide
{
    Sender,
    Recipient,
}

/// <summary>A direction through the proxy: <see cref="Up"/> is client → relay.</summary>
internal enum Flow
{
    Up,
    Down,
}

/// <summary>What a proxied connection turned out to be.</summary>
internal enum LegKind
{
    /// <summary>An HTTP connection to the relay's routes (it may carry several requests).</summary>
    Http,

    /// <summary>A TCP leg on one of the relay's data ports.</summary>
    TcpLane,

    /// <summary>A WebSocket leg: an HTTP connection whose first request is the upgrade on <c>/staple</c>.</summary>
    WebSocketLeg,
}

/// <summary>
/// The connection a fault hits: a participant, a kind, an index and a direction. For <see cref="LegKind.TcpLane"/> the
/// index is the lane (the data port's position); for the others it is the order of arrival among that participant's
/// connections of that kind; −1 is any of them (the first to reach the offset). With <see cref="Channel"/>, a TCP lane matches only if its hello names that channel.
/// </summary>
internal sealed record FaultTarget(ProxySide Side, LegKind Kind, int Index, Flow Direction, string? Channel = null)
{
    public bool Matches(ProxiedConnection connection, Flow flow) =>
        flow == Direction
        && connection.Side == Side
        && connection.Kind == Kind
        && (Index < 0 || (Kind == LegKind.TcpLane ? connection.PortIndex == Index : connection.Arrival == Index))
        && (Channel is null || connection.HelloChannel == Channel);

    public override string ToString() => $"{Side} {Kind} {(Index < 0 ? "any" : "#" + Index)} {Direction}" + (Channel is null ? string.Empty : " (by hello)");
}

/// <summary>One fault: what, where, at which byte of that direction, and for <see cref="FaultKind.Delay"/> how long per segment.</summary>
internal sealed record Fault(FaultKind Kind, FaultTarget Target, long Offset, TimeSpan Delay = default)
{
    public override string ToString() => Kind == FaultKind.Delay
        ? $"{Kind} {Delay.TotalMilliseconds:0} ms/segment on {Target} from byte {Offset}"
        : $"{Kind} on {Target} at byte {Offset}";
}

/// <summary>One connection through the proxy, with its byte counts per direction (bytes forwarded).</summary>
internal sealed class ProxiedConnection
{
    private long _up;
    private long _down;

    public ProxiedConnection(ProxySide side, int portIndex, int port)
    {
        Side = side;
        PortIndex = portIndex;
        Port = port;
        Kind = portIndex < 0 ? null : LegKind.TcpLane;
    }

    public ProxySide Side { get; }

    /// <summary>The data port's position (the lane), or −1 for the relay's HTTP port.</summary>
    public int PortIndex { get; }

    public int Port { get; }

    /// <summary>Known at once for a data port; for the HTTP port after its first bytes.</summary>
    public LegKind? Kind { get; internal set; }

    /// <summary>Order of arrival among this participant's connections of the same kind (0 first).</summary>
    public int Arrival { get; internal set; } = -1;

    /// <summary>The channel a TCP leg's hello named (never its uuid).</summary>
    public string? HelloChannel { get; internal set; }

    /// <summary>Whether a TCP leg's hello said it replaces a leg that broke (<c>"again": true</c>).</summary>
    public bool HelloAgain { get; internal set; }

    public long Up => Interlocked.Read(ref _up);

    public long Down => Interlocked.Read(ref _down);

    public long Count(Flow flow) => flow == Flow.Up ? Up : Down;

    /// <summary>Whether the fault hit this connection.</summary>
    public bool Faulted { get; internal set; }

    internal Socket? Client { get; set; }

    internal Socket? Relay { get; set; }

    internal volatile bool Stalled;

    internal TimeSpan Delay;

    internal void Add(Flow flow, int count)
    {
        if (flow == Flow.Up)
        {
            Interlocked.Add(ref _up, count);
        }
        else
        {
            Interlocked.Add(ref _down, count);
        }
    }

    /// <summary>Resets both sockets: RST, not FIN.</summary>
    internal void Reset()
    {
        Abort(Client);
        Abort(Relay);
    }

    private static void Abort(Socket? socket)
    {
        if (socket is null)
        {
            return;
        }

        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }

        socket.Dispose();
    }

    public override string ToString() => $"{Side} {Kind}{(PortIndex >= 0 ? " lane " + PortIndex : string.Empty)} #{Arrival}: up {Up}, down {Down}{(Faulted ? " (faulted)" : string.Empty)}";
}

/// <summary>
/// A byte-level TCP proxy between clients and a real relay, on loopback. The relay binds 127.0.0.1; the proxy listens
/// on two other loopback addresses, one per participant, on the relay's own port numbers (HTTP and every data port),
/// so the channel state's <c>ports</c> stay valid and a client told the relay URL <c>http://&lt;front&gt;:&lt;port&gt;</c>
/// dials the proxy for its legs too. Each outbound connection binds the participant's own source address
/// (<see cref="SenderSource"/>, <see cref="RecipientSource"/>), so the relay's two-address rule sees two real clients.
/// One <see cref="Fault"/> at most, fired once, on the first connection that matches its target when its byte offset
/// is reached; every connection's bytes are counted per direction.
/// </summary>
internal sealed class FaultProxy : IAsyncDisposable
{
    public static readonly IPAddress SenderSource = IPAddress.Parse("127.0.0.2");
    public static readonly IPAddress RecipientSource = IPAddress.Parse("127.0.0.3");

    private static int s_nextFront;

    private readonly List<TcpListener> _listeners = [];
    private readonly List<Task> _tasks = [];
    private readonly List<ProxiedConnection> _connections = [];
    private readonly Dictionary<(ProxySide, LegKind), int> _arrivals = [];
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource<ProxiedConnection> _fired = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Fault? _fault;
    private readonly Func<Task>? _dropRelay;
    private readonly IPEndPoint _relayHttp;
    private int _firing;

    private FaultProxy(Uri relay, Fault? fault, Func<Task>? dropRelay)
    {
        _relayHttp = new IPEndPoint(IPAddress.Parse(relay.Host), relay.Port);
        _fault = fault;
        _dropRelay = dropRelay;
    }

    /// <summary>The relay URL the sender is given (its front address).</summary>
    public Uri SenderRelay { get; private set; } = null!;

    /// <summary>The relay URL the recipient is given.</summary>
    public Uri RecipientRelay { get; private set; } = null!;

    public Fault? Fault => _fault;

    /// <summary>Completes with the connection the fault hit, when it fires.</summary>
    public Task<ProxiedConnection> Fired => _fired.Task;

    public bool HasFired => _fired.Task.IsCompleted;

    /// <summary>Every connection so far, in order of acceptance.</summary>
    public IReadOnlyList<ProxiedConnection> Connections
    {
        get
        {
            lock (_lock)
            {
                return [.. _connections];
            }
        }
    }

    /// <summary>Bytes forwarded for <paramref name="side"/> in <paramref name="flow"/> over connections of <paramref name="kinds"/> (all if none given).</summary>
    public long Bytes(ProxySide side, Flow flow, params LegKind[] kinds) =>
        Connections.Where(c => c.Side == side && (kinds.Length == 0 || (c.Kind is { } k && kinds.Contains(k)))).Sum(c => c.Count(flow));

    /// <summary>
    /// Starts a proxy for the relay at <paramref name="relay"/> (a 127.0.0.1 URL) and its data <paramref name="ports"/>.
    /// Each proxy takes fresh front addresses (127.1.x.y for the sender, 127.2.x.y for the recipient), so proxies
    /// and their HTTP connection pools never mix.
    /// </summary>
    public static FaultProxy Start(Uri relay, IReadOnlyList<int> ports, Fault? fault = null, Func<Task>? dropRelay = null)
    {
        for (var attempt = 0; ; attempt++)
        {
            var n = Interlocked.Increment(ref s_nextFront);
            var (hi, lo) = (1 + (n / 250 % 250), 1 + (n % 250));
            var proxy = new FaultProxy(relay, fault, dropRelay);
            try
            {
                proxy.Listen(IPAddress.Parse($"127.1.{hi}.{lo}"), IPAddress.Parse($"127.2.{hi}.{lo}"), relay.Port, ports);
                return proxy;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse && attempt < 5)
            {
                proxy.StopListening();
            }
        }
    }

    private void Listen(IPAddress senderFront, IPAddress recipientFront, int httpPort, IReadOnlyList<int> ports)
    {
        foreach (var (side, front) in new[] { (ProxySide.Sender, senderFront), (ProxySide.Recipient, recipientFront) })
        {
            for (var i = -1; i < ports.Count; i++)
            {
                var port = i < 0 ? httpPort : ports[i];
                var listener = new TcpListener(front, port);
                listener.Start(256);
                _listeners.Add(listener);
                var portIndex = i;
                lock (_lock)
                {
                    _tasks.Add(AcceptAsync(listener, side, portIndex, port));
                }
            }
        }

        SenderRelay = new Uri($"http://{senderFront}:{httpPort}/");
        RecipientRelay = new Uri($"http://{recipientFront}:{httpPort}/");
    }

    private void StopListening()
    {
        foreach (var listener in _listeners)
        {
            listener.Stop();
        }
    }

    private async Task AcceptAsync(TcpListener listener, ProxySide side, int portIndex, int port)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            var connection = new ProxiedConnection(side, portIndex, port) { Client = client };
            lock (_lock)
            {
                if (connection.Kind is { } kind)
                {
                    connection.Arrival = NextArrival(side, kind);
                }

                _connections.Add(connection);
                _tasks.Add(ServeAsync(connection));
            }
        }
    }

    private int NextArrival(ProxySide side, LegKind kind)
    {
        _arrivals.TryGetValue((side, kind), out var n);
        _arrivals[(side, kind)] = n + 1;
        return n;
    }

    private async Task ServeAsync(ProxiedConnection connection)
    {
        var client = connection.Client!;
        client.NoDelay = true;
        var relay = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        connection.Relay = relay;
        try
        {
            relay.Bind(new IPEndPoint(connection.Side == ProxySide.Sender ? SenderSource : RecipientSource, 0));
            await relay.ConnectAsync(new IPEndPoint(_relayHttp.Address, connection.Port), _stop.Token);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The relay is gone (dropped) or the proxy stops: the client sees what a dead host behind a live address does.
            connection.Reset();
            return;
        }

        await Task.WhenAll(PumpAsync(connection, client, relay, Flow.Up), PumpAsync(connection, relay, client, Flow.Down));
        client.Dispose();
        relay.Dispose();
    }

    private async Task PumpAsync(ProxiedConnection connection, Socket from, Socket to, Flow flow)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (connection.Stalled)
                {
                    await HoldAsync();
                    return;
                }

                if (read == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }

                if (flow == Flow.Up)
                {
                    Classify(connection, buffer.AsSpan(0, read));
                }

                var data = buffer.AsMemory(0, read);
                if (TryFire(connection, flow, read, out var before))
                {
                    await ForwardAsync(connection, to, flow, data[..before]);
                    data = data[before..];
                    connection.Faulted = true;
                    _fired.TrySetResult(connection);
                    switch (_fault!.Kind)
                    {
                        case FaultKind.Reset:
                            connection.Reset();
                            return;
                        case FaultKind.Stall:
                            connection.Stalled = true;
                            await HoldAsync();
                            return;
                        case FaultKind.CutHalfway:
                            to.Shutdown(SocketShutdown.Send);
                            return;
                        case FaultKind.DropRelay:
                            await _dropRelay!();
                            break;
                        case FaultKind.Delay:
                            connection.Delay = _fault.Delay;
                            break;
                    }
                }

                if (connection.Delay > TimeSpan.Zero)
                {
                    await Task.Delay(connection.Delay, _stop.Token);
                }

                await ForwardAsync(connection, to, flow, data);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException or IOException)
        {
            // One side reset or the proxy stops: the other side sees a reset too, as it would through a real network.
            connection.Reset();
        }
    }

    private static async Task ForwardAsync(ProxiedConnection connection, Socket to, Flow flow, ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            var sent = await to.SendAsync(data, SocketFlags.None);
            connection.Add(flow, sent);
            data = data[sent..];
        }
    }

    /// <summary>Keeps a stalled connection open, forwarding nothing, until the proxy stops.</summary>
    private async Task HoldAsync()
    {
        try
        {
            await Task.Delay(Timeout.Infinite, _stop.Token);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private bool TryFire(ProxiedConnection connection, Flow flow, int read, out int before)
    {
        before = 0;
        if (_fault is not { Kind: not FaultKind.None } fault || Volatile.Read(ref _firing) != 0 || !fault.Target.Matches(connection, flow))
        {
            return false;
        }

        var remaining = fault.Offset - connection.Count(flow);
        if (remaining >= read || Interlocked.CompareExchange(ref _firing, 1, 0) != 0)
        {
            return false;
        }

        before = (int)Math.Max(0, remaining);
        return true;
    }

    /// <summary>Names an HTTP-port connection by its first request line, and notes a TCP leg's channel from its hello.</summary>
    private void Classify(ProxiedConnection connection, ReadOnlySpan<byte> first)
    {
        if (connection.Kind is null)
        {
            var line = first[..Math.Max(0, first.IndexOf((byte)'\n') is var nl and >= 0 ? nl : first.Length)];
            var text = Encoding.ASCII.GetString(line);
            var kind = text.StartsWith("GET ", StringComparison.Ordinal) && text.Contains("/staple", StringComparison.Ordinal) ? LegKind.WebSocketLeg : LegKind.Http;
            lock (_lock)
            {
                connection.Arrival = NextArrival(connection.Side, kind);
                connection.Kind = kind;
            }
        }
        else if (connection.Kind == LegKind.TcpLane && connection.HelloChannel is null && connection.Up == 0)
        {
            var end = first.IndexOf((byte)'\n');
            if (end > 0)
            {
                try
                {
                    using var hello = JsonDocument.Parse(first[..end].ToArray());
                    connection.HelloChannel = hello.RootElement.TryGetProperty("channel", out var channel) ? channel.GetString() : null;
                    connection.HelloAgain = hello.RootElement.TryGetProperty("again", out var again) && again.ValueKind == JsonValueKind.True;
                }
                catch (JsonException)
                {
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        StopListening();
        foreach (var connection in Connections)
        {
            connection.Reset();
        }

        Task[] tasks;
        lock (_lock)
        {
            tasks = [.. _tasks];
        }

        await Task.WhenAll(tasks);
        _stop.Dispose();
    }
}

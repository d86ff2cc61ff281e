using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CrocNet.Tests.Relay.Proxy;

/// <summary>
/// A layer-4 round-robin balancer written for the tests (loopback only), as an L4 load balancer in front of several
/// relay nodes' TCP ports: it listens on one address and the given ports, and hands each new connection on a port to
/// the next backend address on the same port, in turn, starting with a PROXY protocol v1 header that names the
/// client (as HAProxy's <c>send-proxy</c> does). Bytes are copied both ways until either side ends.
/// </summary>
internal sealed class TcpRoundRobin : IAsyncDisposable
{
    private readonly List<Socket> _listeners = [];
    private readonly IReadOnlyList<IPAddress> _backends;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private int _next;
    private readonly int[] _perBackend;

    private TcpRoundRobin(IPAddress address, IReadOnlyList<int> ports, IReadOnlyList<IPAddress> backends)
    {
        _backends = backends;
        _perBackend = new int[backends.Count];
        foreach (var port in ports)
        {
            var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(address, port));
            listener.Listen(64);
            _listeners.Add(listener);
        }
    }

    /// <summary>Connections handed to each backend so far, in the order of the backends.</summary>
    public IReadOnlyList<int> PerBackend => [.. _perBackend];

    public static TcpRoundRobin Start(IPAddress address, IReadOnlyList<int> ports, IReadOnlyList<IPAddress> backends)
    {
        var front = new TcpRoundRobin(address, ports, backends);
        foreach (var listener in front._listeners)
        {
            front._loops.Add(front.AcceptAsync(listener));
        }

        return front;
    }

    /// <summary>
    /// Ports free on every one of <paramref name="addresses"/> (so a front and its backends can use the same numbers on
    /// their own loopback addresses); checked by binding, so another process could still take one meanwhile.
    /// </summary>
    public static int[] FreePorts(int count, params IPAddress[] addresses)
    {
        var found = new List<int>();
        var random = new Random();
        while (found.Count < count)
        {
            var port = random.Next(20_000, 60_000);
            if (found.Contains(port))
            {
                continue;
            }

            var held = new List<Socket>();
            try
            {
                foreach (var address in addresses)
                {
                    var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                    held.Add(socket);
                    socket.Bind(new IPEndPoint(address, port));
                }

                found.Add(port);
            }
            catch (SocketException)
            {
                // Taken somewhere: try another.
            }
            finally
            {
                foreach (var socket in held)
                {
                    socket.Dispose();
                }
            }
        }

        return [.. found];
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        foreach (var listener in _listeners)
        {
            listener.Dispose();
        }

        await Task.WhenAll(_loops).ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        _stop.Dispose();
    }

    private async Task AcceptAsync(Socket listener)
    {
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        try
        {
            while (true)
            {
                var client = await listener.AcceptAsync(_stop.Token);
                var index = (Interlocked.Increment(ref _next) - 1) % _backends.Count;
                Interlocked.Increment(ref _perBackend[index]);
                _ = ForwardAsync(client, new IPEndPoint(_backends[index], port));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // The front stops.
        }
    }

    private async Task ForwardAsync(Socket client, IPEndPoint backend)
    {
        using (client)
        using (var server = new Socket(backend.AddressFamily, SocketType.Stream, ProtocolType.Tcp))
        {
            try
            {
                await server.ConnectAsync(backend, _stop.Token);
                var source = (IPEndPoint)client.RemoteEndPoint!;
                var local = (IPEndPoint)client.LocalEndPoint!;
                var header = $"PROXY TCP4 {source.Address} {local.Address} {source.Port} {local.Port}\r\n";
                await server.SendAsync(Encoding.ASCII.GetBytes(header), SocketFlags.None, _stop.Token);
                await Task.WhenAll(CopyAsync(client, server), CopyAsync(server, client));
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                // One side went away or the front stops: the other side's socket closes with this one.
            }
        }
    }

    private async Task CopyAsync(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (read == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }

                for (var sent = 0; sent < read;)
                {
                    sent += await to.SendAsync(buffer.AsMemory(sent, read - sent), SocketFlags.None, _stop.Token);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // A reset on one side: reset the other too, as a balancer would.
            from.Close(0);
            to.Close(0);
        }
    }
}

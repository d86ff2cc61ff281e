using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace CrocNet.Cli.Discovery;

/// <summary>The receiver's side of LAN discovery: asks for a channel's sender and takes the first valid answer.</summary>
internal static class DiscoveryClient
{
    /// <summary>How long <c>croc receive</c> waits for an answer.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(1.5);

    // UDP may drop a datagram: the query is repeated a few times within the wait.
    private static readonly TimeSpan[] Resend = [TimeSpan.FromMilliseconds(300), TimeSpan.FromMilliseconds(500)];

    /// <summary>
    /// Sends the query for <paramref name="channel"/> to every target and returns the relay of the first valid
    /// answer for that channel, its host replaced by the address the answer came from; null when none came in time.
    /// </summary>
    public static async Task<Uri?> FindAsync(string channel, IReadOnlyList<IPEndPoint> targets, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(targets);
        var query = DiscoveryDatagram.Query(channel);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { EnableBroadcast = true };
        socket.Bind(new IPEndPoint(IPAddress.Any, 0));
        using var window = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        window.CancelAfter(timeout);
        var sending = SendAsync(socket, query, targets, window.Token);
        try
        {
            var buffer = new byte[DiscoveryDatagram.MaxLength + 1];
            EndPoint any = new IPEndPoint(IPAddress.Any, 0);
            while (true)
            {
                SocketReceiveFromResult received;
                try
                {
                    received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, window.Token);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    return null;
                }
                catch (SocketException ex) when (DiscoveryResponder.IsTransient(ex))
                {
                    // E.g. Windows reporting that a target had nobody listening: others may still answer.
                    continue;
                }

                if (received.RemoteEndPoint is IPEndPoint from
                    && DiscoveryDatagram.TryParseReply(buffer.AsSpan(0, received.ReceivedBytes), out var answered, out var relay)
                    && string.Equals(answered, channel, StringComparison.Ordinal))
                {
                    return WithHost(relay, from.Address);
                }
            }
        }
        finally
        {
            await window.CancelAsync();
            await sending;
        }
    }

    /// <summary>The limited broadcast address and each IPv4 interface's directed broadcast address, at <paramref name="port"/>.</summary>
    public static IReadOnlyList<IPEndPoint> BroadcastTargets(int port)
    {
        var addresses = new List<IPAddress> { IPAddress.Broadcast };
        try
        {
            foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
            {
                if (nic.OperationalStatus != OperationalStatus.Up || nic.NetworkInterfaceType == NetworkInterfaceType.Loopback)
                {
                    continue;
                }

                foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
                {
                    if (unicast.Address.AddressFamily == AddressFamily.InterNetwork
                        && DirectedBroadcast(unicast.Address, unicast.IPv4Mask) is { } broadcast
                        && !addresses.Contains(broadcast))
                    {
                        addresses.Add(broadcast);
                    }
                }
            }
        }
        catch (Exception ex) when (ex is NetworkInformationException or PlatformNotSupportedException)
        {
            // Without interface information the limited broadcast still goes out.
        }

        return addresses.Select(a => new IPEndPoint(a, port)).ToList();
    }

    /// <summary>The directed broadcast address of <paramref name="address"/>'s subnet; null for a /31, /32 or missing mask.</summary>
    public static IPAddress? DirectedBroadcast(IPAddress address, IPAddress? mask)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (mask is null || address.AddressFamily != AddressFamily.InterNetwork || mask.AddressFamily != AddressFamily.InterNetwork)
        {
            return null;
        }

        var a = address.GetAddressBytes();
        var m = mask.GetAddressBytes();
        var hostBits = m.Sum(b => 8 - System.Numerics.BitOperations.PopCount(b));
        if (hostBits is < 2 or 32)
        {
            return null;
        }

        var b = new byte[4];
        for (var i = 0; i < 4; i++)
        {
            b[i] = (byte)(a[i] | ~m[i]);
        }

        return new IPAddress(b);
    }

    /// <summary>The announced relay, reached at the address its answer came from (the announced host may be unreachable from here).</summary>
    public static Uri WithHost(Uri relay, IPAddress from)
    {
        ArgumentNullException.ThrowIfNull(relay);
        ArgumentNullException.ThrowIfNull(from);
        var address = from.IsIPv4MappedToIPv6 ? from.MapToIPv4() : from;
        return new UriBuilder(relay) { Host = address.ToString() }.Uri;
    }

    private static async Task SendAsync(Socket socket, byte[] query, IReadOnlyList<IPEndPoint> targets, CancellationToken cancellationToken)
    {
        for (var round = 0; ; round++)
        {
            foreach (var target in targets)
            {
                try
                {
                    await socket.SendToAsync(query, SocketFlags.None, target, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                catch (SocketException)
                {
                    // A broadcast the network refuses (no route, not permitted): the other targets still count.
                }
            }

            if (round >= Resend.Length)
            {
                return;
            }

            try
            {
                await Task.Delay(Resend[round], cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}

using System.Net;
using System.Net.Sockets;
using CrocNet.Relay;
using CrocNet.Relay.Channels;
using Microsoft.Extensions.DependencyInjection;
using static CrocNet.Tests.Relay.RelayTestKit;

namespace CrocNet.Tests.Relay.Hosting;

/// <summary><c>[::]</c> is dual-stack: HTTP and the TCP stapling listeners take IPv4 and IPv6 alike.</summary>
[CancelAfter(20_000)]
public class DualStackTests
{
    private static Task<CrocRelayServer> StartDualStackAsync(CancellationToken cancellationToken)
        => StartRelayAsync(cancellationToken, o =>
        {
            o.Url = "http://[::]:0";
            o.Relay.ListenAddress = "::";
            o.Relay.Ports = [0, 0];
        });

    /// <summary>An HTTP client over IPv6 loopback.</summary>
    private static HttpClient V6Client(int port)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, token) =>
            {
                var socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(new IPEndPoint(IPAddress.IPv6Loopback, context.DnsEndPoint.Port), token);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return new HttpClient(handler) { BaseAddress = new Uri($"http://[::1]:{port}/") };
    }

    private static async Task<(Socket Socket, string? Answer)> V6HelloAsync(int port, string channel, string uuid, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.IPv6Loopback, port), cancellationToken);
        await SendAsync(socket, HelloLine(channel, uuid), cancellationToken);
        return (socket, await ReadLineAsync(socket, cancellationToken));
    }

    [Test]
    public async Task StartAsync_WildcardIPv6_BaseAddressIsAUsableLoopback(CancellationToken cancellationToken)
    {
        await using var relay = await StartDualStackAsync(cancellationToken);
        Assert.That(relay.BaseAddress.Host, Is.EqualTo("127.0.0.1"));
        using var client = Client(relay.BaseAddress);
        await OkAsync(PostAsync(client, "join", new { role = "sender" }, cancellationToken));
    }

    [Test]
    public async Task Staple_OneSideOverIPv4OneOverIPv6_PipesAndNormalisesMappedAddresses(CancellationToken cancellationToken)
    {
        await using var relay = await StartDualStackAsync(cancellationToken);
        using var v4 = Client(relay.BaseAddress);
        using var v6 = V6Client(relay.BaseAddress.Port);
        var pair = await OpenAsync(v4, v6, cancellationToken);

        // The IPv4 sender reached the dual-stack socket as ::ffff:127.0.0.1, and is counted as 127.0.0.1.
        var registry = relay.Services.GetRequiredService<ChannelRegistry>();
        Assert.That(registry.ChannelsOf(IPAddress.Loopback), Is.EqualTo(1));

        foreach (var port in relay.Ports)
        {
            var (s, sAnswer) = await HelloAsync(port, pair.Channel, pair.SenderUuid, cancellationToken);
            var (r, rAnswer) = await V6HelloAsync(port, pair.Channel, pair.RecipientUuid, cancellationToken);
            using (s)
            using (r)
            {
                Assert.That((sAnswer, rAnswer), Is.EqualTo(("ok", "ok")));
                await SendAsync(s, "over both families\n", cancellationToken);
                Assert.That(await ReadLineAsync(r, cancellationToken), Is.EqualTo("over both families"));
                await SendAsync(r, "and back\n", cancellationToken);
                Assert.That(await ReadLineAsync(s, cancellationToken), Is.EqualTo("and back"));
            }
        }

        // A third address (IPv4, mapped on the wire) is the third: the IP rule sees through the mapping.
        var (third, answer) = await HelloAsync(relay.Ports[0], pair.Channel, pair.SenderUuid, cancellationToken, Second);
        using (third)
        {
            Assert.That(answer, Is.EqualTo("error ip_limit"));
        }
    }

    [Test]
    public async Task Transfer_RecipientOverIPv6_Completes(CancellationToken cancellationToken)
    {
        await using var relay = await StartDualStackAsync(cancellationToken);
        var text = await TransferTextAsync(new Uri($"http://[::1]:{relay.BaseAddress.Port}/"), "over IPv6", cancellationToken);
        Assert.That(text, Is.EqualTo("over IPv6"));
    }
}

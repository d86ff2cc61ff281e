using System.Net;
using System.Net.Sockets;
using System.Text;
using CrocNet.Cli.Discovery;

namespace CrocNet.Tests.Cli.Discovery;

/// <summary>The sender's responder on 127.0.0.1 port 0, asked over real UDP on loopback.</summary>
[TestFixture]
public sealed class DiscoveryResponderTests
{
    private const string Channel = "k7f2q9xm";
    private static readonly Uri Relay = new("http://192.168.1.20:9009/");

    [Test]
    [CancelAfter(10_000)]
    public async Task Query_ForItsChannel_AnswersWithTheRelay(CancellationToken cancellationToken)
    {
        await using var responder = DiscoveryResponder.Start(new IPEndPoint(IPAddress.Loopback, 0), Channel, Relay);
        using var asker = Asker();

        await asker.SendToAsync(DiscoveryDatagram.Query(Channel), SocketFlags.None, responder.LocalEndPoint, cancellationToken);
        var reply = await ReceiveAsync(asker, cancellationToken);

        Assert.That(Encoding.ASCII.GetString(reply.Data), Is.EqualTo($"croc-relay/1 {Channel} {Relay}\n"));
        Assert.That(reply.From, Is.EqualTo(responder.LocalEndPoint));
    }

    // Each case is sent from one socket, then a valid query from a second socket; once the second is answered,
    // an answer to the first would already be there (the responder answers in order). "valid" is the control
    // that shows the check can fail.
    [TestCase("valid", 1)]
    [TestCase("wrong-channel", 0)]
    [TestCase("garbage", 0)]
    [TestCase("oversize", 0)]
    [TestCase("no-newline", 0)]
    [TestCase("reply-shaped", 0)]
    [TestCase("empty", 0)]
    [CancelAfter(10_000)]
    public async Task Datagram_OnlyAValidQueryForItsChannelIsAnswered(string kind, int expectedAnswers, CancellationToken cancellationToken)
    {
        await using var responder = DiscoveryResponder.Start(new IPEndPoint(IPAddress.Loopback, 0), Channel, Relay);
        using var stranger = Asker();
        using var marker = Asker();
        var datagram = kind switch
        {
            "valid" => DiscoveryDatagram.Query(Channel),
            "wrong-channel" => DiscoveryDatagram.Query("zzzzzzzz"),
            "garbage" => [0xFF, 0x00, 0x13, 0x37, (byte)'\n'],
            "oversize" => Encoding.ASCII.GetBytes($"croc-discover/1 {Channel}{new string(' ', 600)}\n"),
            "no-newline" => Encoding.ASCII.GetBytes($"croc-discover/1 {Channel}"),
            "reply-shaped" => DiscoveryDatagram.Reply(Channel, Relay),
            "empty" => Array.Empty<byte>(),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };

        await stranger.SendToAsync(datagram, SocketFlags.None, responder.LocalEndPoint, cancellationToken);
        await marker.SendToAsync(DiscoveryDatagram.Query(Channel), SocketFlags.None, responder.LocalEndPoint, cancellationToken);
        await ReceiveAsync(marker, cancellationToken);

        // A short grace for absence: loopback delivery is ordered in practice but not promised across CPUs.
        var answered = stranger.Poll(TimeSpan.FromMilliseconds(200), SelectMode.SelectRead) ? 1 : 0;
        Assert.That(answered, Is.EqualTo(expectedAnswers));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task Burst_FromOneSource_IsRateLimited(CancellationToken cancellationToken)
    {
        await using var responder = DiscoveryResponder.Start(
            new IPEndPoint(IPAddress.Loopback, 0), Channel, Relay, new DiscoveryRateLimiter(new Microsoft.Extensions.Time.Testing.FakeTimeProvider(), perSourcePerSecond: 2));
        using var asker = Asker();

        for (var i = 0; i < 10; i++)
        {
            await asker.SendToAsync(DiscoveryDatagram.Query(Channel), SocketFlags.None, responder.LocalEndPoint, cancellationToken);
        }

        await ReceiveAsync(asker, cancellationToken);
        await ReceiveAsync(asker, cancellationToken);
        // The clock never moves, so no third answer may come.
        Assert.That(asker.Poll(TimeSpan.FromMilliseconds(300), SelectMode.SelectRead), Is.False);
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task DisposeAsync_ReleasesThePort(CancellationToken cancellationToken)
    {
        var responder = DiscoveryResponder.Start(new IPEndPoint(IPAddress.Loopback, 0), Channel, Relay);
        var port = responder.LocalEndPoint.Port;
        Assert.Throws<SocketException>(() => DiscoveryResponder.Start(new IPEndPoint(IPAddress.Loopback, port), Channel, Relay).DisposeAsync().AsTask().GetAwaiter().GetResult());

        await responder.DisposeAsync().AsTask().WaitAsync(cancellationToken);

        await using var again = DiscoveryResponder.Start(new IPEndPoint(IPAddress.Loopback, port), Channel, Relay);
        Assert.That(again.LocalEndPoint.Port, Is.EqualTo(port));
    }

    internal static Socket Asker()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return socket;
    }

    internal static async Task<(byte[] Data, IPEndPoint From)> ReceiveAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[1024];
        var result = await socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), cancellationToken);
        return (buffer[..result.ReceivedBytes], (IPEndPoint)result.RemoteEndPoint);
    }
}

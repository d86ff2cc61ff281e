using System.Net;
using System.Net.Sockets;
using System.Text;
using CrocNet.Cli.Discovery;

namespace CrocNet.Tests.Cli.Discovery;

/// <summary>The receiver's query, aimed at loopback instead of broadcast.</summary>
[TestFixture]
public sealed class DiscoveryClientTests
{
    [Test]
    [CancelAfter(10_000)]
    public async Task FindAsync_ResponderForTheChannel_ReturnsRelayAtTheAnswersSourceAddress(CancellationToken cancellationToken)
    {
        await using var responder = DiscoveryResponder.Start(new IPEndPoint(IPAddress.Loopback, 0), "abc123", new Uri("http://192.168.1.20:9009/"));

        var found = await DiscoveryClient.FindAsync("abc123", [responder.LocalEndPoint], TimeSpan.FromSeconds(5), cancellationToken);

        // The announced host is replaced by where the answer came from; scheme and port are kept.
        Assert.That(found, Is.EqualTo(new Uri("http://127.0.0.1:9009/")));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task FindAsync_OnlyAnotherChannelsSender_NullAfterTheWait(CancellationToken cancellationToken)
    {
        await using var responder = DiscoveryResponder.Start(new IPEndPoint(IPAddress.Loopback, 0), "abc123", new Uri("http://192.168.1.20:9009/"));

        var found = await DiscoveryClient.FindAsync("zzz999", [responder.LocalEndPoint], TimeSpan.FromMilliseconds(400), cancellationToken);

        Assert.That(found, Is.Null);
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task FindAsync_SkipsAnswersForOtherChannelsAndMalformedOnes(CancellationToken cancellationToken)
    {
        // A scripted "responder" that answers each query with junk, another channel, then the right answer.
        using var fake = DiscoveryResponderTests.Asker();
        var target = (IPEndPoint)fake.LocalEndPoint!;
        var finding = DiscoveryClient.FindAsync("abc123", [target], TimeSpan.FromSeconds(5), cancellationToken);
        var (query, from) = await DiscoveryResponderTests.ReceiveAsync(fake, cancellationToken);
        Assert.That(Encoding.ASCII.GetString(query), Is.EqualTo("croc-discover/1 abc123\n"));

        await fake.SendToAsync(Encoding.ASCII.GetBytes("croc-relay/1 abc123 ftp://10.0.0.1/\n"), SocketFlags.None, from, cancellationToken);
        await fake.SendToAsync(DiscoveryDatagram.Reply("other1", new Uri("http://10.0.0.1:1111/")), SocketFlags.None, from, cancellationToken);
        await fake.SendToAsync(DiscoveryDatagram.Reply("abc123", new Uri("http://10.0.0.1:2222/")), SocketFlags.None, from, cancellationToken);

        Assert.That(await finding, Is.EqualTo(new Uri("http://127.0.0.1:2222/")));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task FindAsync_NobodyListening_NullAfterTheWait(CancellationToken cancellationToken)
    {
        using var closed = DiscoveryResponderTests.Asker();
        var nobody = (IPEndPoint)closed.LocalEndPoint!;
        closed.Dispose();

        var found = await DiscoveryClient.FindAsync("abc123", [nobody], TimeSpan.FromMilliseconds(300), cancellationToken);

        Assert.That(found, Is.Null);
    }

    [TestCase("192.168.1.20", "255.255.255.0", "192.168.1.255")]
    [TestCase("10.1.2.3", "255.255.0.0", "10.1.255.255")]
    [TestCase("172.16.5.9", "255.255.255.252", "172.16.5.11")]
    [TestCase("10.0.0.1", "255.255.255.254", null)]
    [TestCase("10.0.0.1", "255.255.255.255", null)]
    [TestCase("10.0.0.1", "0.0.0.0", null)]
    public void DirectedBroadcast_FromAddressAndMask(string address, string mask, string? expected) =>
        Assert.That(DiscoveryClient.DirectedBroadcast(IPAddress.Parse(address), IPAddress.Parse(mask)), Is.EqualTo(expected is null ? null : IPAddress.Parse(expected)));

    [Test]
    public void BroadcastTargets_AlwaysIncludeTheLimitedBroadcast_AtThePort()
    {
        var targets = DiscoveryClient.BroadcastTargets(9009);

        Assert.That(targets, Does.Contain(new IPEndPoint(IPAddress.Broadcast, 9009)));
        Assert.That(targets.Select(t => t.Port), Is.All.EqualTo(9009));
        Assert.That(targets.Select(t => t.Address).Where(IPAddress.IsLoopback), Is.Empty);
    }
}

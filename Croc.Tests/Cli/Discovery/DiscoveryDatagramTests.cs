using System.Text;
using CrocNet.Cli.Discovery;

namespace CrocNet.Tests.Cli.Discovery;

[TestFixture]
public sealed class DiscoveryDatagramTests
{
    [Test]
    public void Query_IsOneAsciiLine_AndParsesBack()
    {
        var query = DiscoveryDatagram.Query("k7f2q9xm");

        Assert.That(Encoding.ASCII.GetString(query), Is.EqualTo("croc-discover/1 k7f2q9xm\n"));
        Assert.That(DiscoveryDatagram.TryParseQuery(query, out var channel), Is.True);
        Assert.That(channel, Is.EqualTo("k7f2q9xm"));
    }

    [Test]
    public void Reply_CarriesChannelAndUrl_AndParsesBack()
    {
        var reply = DiscoveryDatagram.Reply("k7f2q9xm", new Uri("http://192.168.1.20:9009/"));

        Assert.That(Encoding.ASCII.GetString(reply), Is.EqualTo("croc-relay/1 k7f2q9xm http://192.168.1.20:9009/\n"));
        Assert.That(DiscoveryDatagram.TryParseReply(reply, out var channel, out var relay), Is.True);
        Assert.That(channel, Is.EqualTo("k7f2q9xm"));
        Assert.That(relay, Is.EqualTo(new Uri("http://192.168.1.20:9009/")));
    }

    [TestCase("")]
    [TestCase("\n")]
    [TestCase("croc-discover/1 k7f2q9xm")]
    [TestCase("croc-discover/1 \n")]
    [TestCase("croc-discover/1 K7F2Q9XM\n")]
    [TestCase("croc-discover/1 k7f2-q9xm\n")]
    [TestCase("croc-discover/1 k7f2q9xm \n")]
    [TestCase("croc-discover/1  k7f2q9xm\n")]
    [TestCase("croc-discover/1 k7f2q9xm\r\n")]
    [TestCase("croc-discover/1 k7f2q9xm\n\n")]
    [TestCase("croc-discover/2 k7f2q9xm\n")]
    [TestCase("CROC-DISCOVER/1 k7f2q9xm\n")]
    [TestCase("croc-relay/1 k7f2q9xm http://192.168.1.20:9009/\n")]
    [TestCase("croc-discover/1 k7f2q9xm\0\n")]
    [TestCase("croc-discover/1 kätze\n")]
    public void TryParseQuery_Malformed_False(string text) =>
        Assert.That(DiscoveryDatagram.TryParseQuery(Encoding.UTF8.GetBytes(text), out _), Is.False);

    [Test]
    public void TryParseQuery_ChannelLengthLimits()
    {
        Assert.That(DiscoveryDatagram.TryParseQuery(Encoding.ASCII.GetBytes($"croc-discover/1 {new string('a', 64)}\n"), out _), Is.True);
        Assert.That(DiscoveryDatagram.TryParseQuery(Encoding.ASCII.GetBytes($"croc-discover/1 {new string('a', 65)}\n"), out _), Is.False);
    }

    [Test]
    public void TryParse_Oversize_False()
    {
        // A valid reply padded past 512 bytes with a long path: well formed but too big.
        var path = new string('p', DiscoveryDatagram.MaxLength);
        var oversize = Encoding.ASCII.GetBytes($"croc-relay/1 abc http://10.0.0.1:9009/{path}\n");

        Assert.That(DiscoveryDatagram.TryParseReply(oversize, out _, out _), Is.False);
        Assert.Throws<ArgumentException>(() => DiscoveryDatagram.Reply("abc", new Uri($"http://10.0.0.1:9009/{path}")));
    }

    [TestCase("croc-relay/1 k7f2q9xm ftp://192.168.1.20/\n")]
    [TestCase("croc-relay/1 k7f2q9xm /relative\n")]
    [TestCase("croc-relay/1 http://192.168.1.20:9009/\n")]
    [TestCase("croc-relay/1 k7f2q9xm http://192.168.1.20:9009/ extra\n")]
    [TestCase("croc-relay/1 k7f2q9xm http://user:pw@192.168.1.20:9009/\n")]
    [TestCase("croc-relay/1 k7f2q9xm http://192.168.1.20:9009/?x=1\n")]
    [TestCase("croc-relay/1 K7F2Q9XM http://192.168.1.20:9009/\n")]
    [TestCase("croc-relay/1 k7f2q9xm http://192.168.1.20:9009/")]
    [TestCase("croc-discover/1 k7f2q9xm\n")]
    public void TryParseReply_Malformed_False(string text) =>
        Assert.That(DiscoveryDatagram.TryParseReply(Encoding.UTF8.GetBytes(text), out _, out _), Is.False);

    [TestCase("")]
    [TestCase("K7")]
    [TestCase("a-b")]
    public void Query_BadChannel_Throws(string channel) =>
        Assert.Throws<ArgumentException>(() => DiscoveryDatagram.Query(channel));
}

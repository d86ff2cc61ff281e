using System.Net;
using CrocNet.Relay;
using CrocNet.Relay.Diagnostics;
using CrocNet.Relay.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;

namespace CrocNet.Tests.Relay.Net;

/// <summary>Forwarded client addresses: only from trusted proxies, read from the right, never an attacker's choice.</summary>
public class ClientAddressesTests
{
    private static readonly ClientAddresses Trusting = new(new CrocRelayOptions { TrustedProxies = ["10.0.0.1", "10.1.0.0/16", "2001:db8:ffff::/48"] });

    // Proxies that write RFC 7239 Forwarded instead (ForwardedHeader = "Forwarded").
    private static readonly ClientAddresses TrustingRfc7239 = new(new CrocRelayOptions { TrustedProxies = ["10.0.0.1", "10.1.0.0/16", "2001:db8:ffff::/48"], ForwardedHeader = "Forwarded" });

    private static DefaultHttpContext Request(string peer, params (string Name, string[] Values)[] headers)
    {
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = IPAddress.Parse(peer);
        foreach (var (name, values) in headers)
        {
            context.Request.Headers[name] = new StringValues(values);
        }

        return context;
    }

    /// <summary>Resolves with the relay configured for the header the test sends (X-Forwarded-For unless only Forwarded).</summary>
    private static string Resolve(string peer, params (string Name, string[] Values)[] headers)
        => (headers.All(h => h.Name == "Forwarded") && headers.Length > 0 ? TrustingRfc7239 : Trusting).FromHttp(Request(peer, headers)).ToString();

    [Test]
    public void FromHttp_UntrustedPeer_IgnoresForwardedHeaders()
    {
        Assert.That(Resolve("192.0.2.9", ("X-Forwarded-For", ["203.0.113.5"])), Is.EqualTo("192.0.2.9"));
        Assert.That(Resolve("192.0.2.9", ("Forwarded", ["for=203.0.113.5"])), Is.EqualTo("192.0.2.9"));
    }

    [Test]
    public void FromHttp_NoTrustedProxies_IgnoresForwardedHeaders()
    {
        var open = new ClientAddresses(new CrocRelayOptions());
        Assert.That(open.FromHttp(Request("10.0.0.1", ("X-Forwarded-For", ["203.0.113.5"]))).ToString(), Is.EqualTo("10.0.0.1"));
    }

    [Test]
    public void FromHttp_TrustedPeerWithoutHeaders_IsThePeer()
        => Assert.That(Resolve("10.0.0.1"), Is.EqualTo("10.0.0.1"));

    [Test]
    public void FromHttp_TrustedPeer_TakesTheForwardedClient()
        => Assert.That(Resolve("10.0.0.1", ("X-Forwarded-For", ["203.0.113.5"])), Is.EqualTo("203.0.113.5"));

    [Test]
    public void FromHttp_ChainOfProxies_ReadsFromTheRightSkippingTrustedOnes()
    {
        // The client forged "198.51.100.1" at the left; the first untrusted address from the right is the real client.
        Assert.That(Resolve("10.0.0.1", ("X-Forwarded-For", ["198.51.100.1, 203.0.113.5, 10.1.2.3"])), Is.EqualTo("203.0.113.5"));
    }

    [Test]
    public void FromHttp_SeveralHeaderLines_AreOneListInOrder()
        => Assert.That(Resolve("10.0.0.1", ("X-Forwarded-For", ["198.51.100.1", "203.0.113.5, 10.1.9.9", "10.1.2.3"])), Is.EqualTo("203.0.113.5"));

    [Test]
    public void FromHttp_EveryHopTrusted_IsTheLeftmost()
        => Assert.That(Resolve("10.0.0.1", ("X-Forwarded-For", ["10.1.0.7, 10.1.2.3"])), Is.EqualTo("10.1.0.7"));

    [TestCase("203.0.113.5:4711", "203.0.113.5")]
    [TestCase("[2001:db8::1]:4711", "2001:db8::1")]
    [TestCase("[2001:db8::1]", "2001:db8::1")]
    [TestCase("2001:db8::1", "2001:db8::1")]
    [TestCase("::ffff:203.0.113.5", "203.0.113.5")]
    public void FromHttp_XForwardedForForms_AreRead(string entry, string expected)
        => Assert.That(Resolve("10.0.0.1", ("X-Forwarded-For", [entry])), Is.EqualTo(expected));

    [TestCase("garbage")]
    [TestCase("203.0.113")]
    [TestCase("127.1")]
    [TestCase("0x7f.0.0.1")]
    [TestCase("203.0.113.5:99999")]
    [TestCase("203.0.113.5:")]
    [TestCase("[2001:db8::1")]
    [TestCase("[203.0.113.5]")]
    [TestCase("unknown")]
    [TestCase("1.2.3.4.5")]
    public void FromHttp_MalformedEntry_FallsBackToTheLastTrustworthyAddress(string entry)
    {
        Assert.That(Resolve("10.0.0.1", ("X-Forwarded-For", [entry])), Is.EqualTo("10.0.0.1"));

        // Behind the trusted 10.1.2.3, the malformed entry stops the walk at 10.1.2.3: what lies left of it is never taken.
        Assert.That(Resolve("10.0.0.1", ("X-Forwarded-For", ["198.51.100.1, " + entry + ", 10.1.2.3"])), Is.EqualTo("10.1.2.3"));
    }

    [Test]
    public void FromHttp_EmptyElements_AreSkipped()
        => Assert.That(Resolve("10.0.0.1", ("X-Forwarded-For", ["203.0.113.5, , 10.1.2.3,"])), Is.EqualTo("203.0.113.5"));

    [Test]
    public void FromHttp_LongChainOfTrustedHops_StopsAtTheBound()
    {
        var chain = string.Join(", ", Enumerable.Range(0, ClientAddresses.MaxHops + 5).Select(i => $"10.1.{i / 250}.{(i % 250) + 1}"));
        var resolved = Resolve("10.0.0.1", ("X-Forwarded-For", ["203.0.113.5, " + chain]));
        Assert.That(resolved, Does.StartWith("10.1."), "the walk stops at the last trusted hop it read, never beyond the bound");
    }

    [TestCase("for=203.0.113.5", "203.0.113.5")]
    [TestCase("For=\"203.0.113.5:4711\"", "203.0.113.5")]
    [TestCase("for=\"[2001:db8::1]:4711\"", "2001:db8::1")]
    [TestCase("for=\"[2001:db8::1]\";proto=https;by=10.0.0.1", "2001:db8::1")]
    [TestCase("proto=https; for=203.0.113.5 ;host=relay.example", "203.0.113.5")]
    [TestCase("for=203.0.113.5:_port", "203.0.113.5")]
    public void FromHttp_ForwardedForms_AreRead(string element, string expected)
        => Assert.That(Resolve("10.0.0.1", ("Forwarded", [element])), Is.EqualTo(expected));

    [Test]
    public void FromHttp_ForwardedChain_ReadsFromTheRight()
        => Assert.That(Resolve("10.0.0.1", ("Forwarded", ["for=198.51.100.1, for=203.0.113.5;proto=http", "for=10.1.2.3"])), Is.EqualTo("203.0.113.5"));

    [TestCase("for=unknown")]
    [TestCase("for=_hidden")]
    [TestCase("for=\"_hidden\"")]
    [TestCase("proto=https")]
    [TestCase("for=1.2.3.4;for=5.6.7.8")]
    [TestCase("for=\"2001:db8::\\1\"")]
    [TestCase("for=")]
    public void FromHttp_ForwardedUnknownObfuscatedOrMalformed_StopsAtTheLastTrustworthyAddress(string element)
    {
        Assert.That(Resolve("10.0.0.1", ("Forwarded", [element])), Is.EqualTo("10.0.0.1"));
        Assert.That(Resolve("10.0.0.1", ("Forwarded", ["for=198.51.100.1, " + element + ", for=10.1.2.3"])), Is.EqualTo("10.1.2.3"));
    }

    [Test]
    public void FromHttp_ForwardedUnbalancedQuote_FallsBackToThePeer()
    {
        // The open quote runs to the end of the line, so the nearest element already cannot be read.
        Assert.That(Resolve("10.0.0.1", ("Forwarded", ["for=198.51.100.1, for=\"[2001:db8::1]:4711, for=10.1.2.3"])), Is.EqualTo("10.0.0.1"));
    }

    [Test]
    public void FromHttp_ForwardedQuotedComma_DoesNotSplitTheElement()
        => Assert.That(Resolve("10.0.0.1", ("Forwarded", ["for=203.0.113.5;host=\"a,b\""])), Is.EqualTo("203.0.113.5"));

    [Test]
    public void FromHttp_BothHeaders_OnlyTheConfiguredOneIsRead()
    {
        // A proxy that writes X-Forwarded-For passes on a Forwarded its client made up, and the other way round.
        var context = Request("10.0.0.1", ("Forwarded", ["for=203.0.113.5"]), ("X-Forwarded-For", ["198.51.100.1"]));

        Assert.That(Trusting.FromHttp(context).ToString(), Is.EqualTo("198.51.100.1"));
        Assert.That(TrustingRfc7239.FromHttp(context).ToString(), Is.EqualTo("203.0.113.5"));
    }

    [Test]
    public void FromHttp_OnlyTheOtherHeader_ThePeerItself()
    {
        Assert.That(Trusting.FromHttp(Request("10.0.0.1", ("Forwarded", ["for=203.0.113.5"]))).ToString(), Is.EqualTo("10.0.0.1"));
        Assert.That(TrustingRfc7239.FromHttp(Request("10.0.0.1", ("X-Forwarded-For", ["203.0.113.5"]))).ToString(), Is.EqualTo("10.0.0.1"));
    }

    [Test]
    public void FromHttp_IPv4MappedPeer_MatchesTheTrustedIPv4Proxy()
        => Assert.That(Resolve("::ffff:10.0.0.1", ("X-Forwarded-For", ["203.0.113.5"])), Is.EqualTo("203.0.113.5"));

    [Test]
    public void FromHttp_TrustedIPv6Network_IsTrusted()
        => Assert.That(Resolve("2001:db8:ffff::9", ("X-Forwarded-For", ["2001:db8:1::5, 2001:db8:ffff::7"])), Is.EqualTo("2001:db8:1::5"));

    [Test]
    public void FromHttp_UnknownPeer_IsNone()
        => Assert.That(Trusting.FromHttp(new DefaultHttpContext()), Is.EqualTo(IPAddress.None));

    [Test]
    public void HintUntrustedForwarding_OncePerPeer_Bounded()
    {
        var lines = new List<(EventId Id, LogLevel Level, string Text)>();
        var log = new RelayLog(new ListLogger(lines));
        var addresses = new ClientAddresses(new CrocRelayOptions());
        for (var i = 0; i < 3; i++)
        {
            addresses.HintUntrustedForwarding(Request("192.0.2.9", ("X-Forwarded-For", ["203.0.113.5"])), log);
        }

        addresses.HintUntrustedForwarding(Request("192.0.2.10"), log);
        Assert.That(lines, Has.Count.EqualTo(1));
        Assert.That(lines[0].Id.Id, Is.EqualTo(40));
        Assert.That(lines[0].Level, Is.EqualTo(LogLevel.Warning));
        Assert.That(lines[0].Text, Does.Contain("X-Forwarded-For").And.Contain("192.0.2.9").And.Contain("TrustedProxies"));

        for (var i = 0; i < ClientAddresses.MaxHintedPeers + 50; i++)
        {
            addresses.HintUntrustedForwarding(Request($"198.51.{i / 250}.{(i % 250) + 1}", ("Forwarded", ["for=203.0.113.5"])), log);
        }

        Assert.That(lines, Has.Count.EqualTo(ClientAddresses.MaxHintedPeers), "one line per peer, and no more peers than the bound");
    }

    [Test]
    public void HintUntrustedForwarding_TrustedPeer_SaysNothing()
    {
        var lines = new List<(EventId Id, LogLevel Level, string Text)>();
        Trusting.HintUntrustedForwarding(Request("10.0.0.1", ("X-Forwarded-For", ["203.0.113.5"])), new RelayLog(new ListLogger(lines)));
        Assert.That(lines, Is.Empty);
    }

    private sealed class ListLogger(List<(EventId Id, LogLevel Level, string Text)> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => lines.Add((eventId, logLevel, formatter(state, exception)));
    }
}

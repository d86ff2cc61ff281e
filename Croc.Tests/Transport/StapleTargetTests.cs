using CrocNet.Rendezvous;
using CrocNet.Transport;

namespace CrocNet.Tests.Transport;

/// <summary>What a relay state makes of a channel's legs: lanes, WebSockets, hosts, and what a relay may not ask for.</summary>
public class StapleTargetTests
{
    private static readonly Uri Relay = new("http://relay.test:9009/");

    [Test]
    public void From_Version1State_LanesArePortsAndNoWebSockets()
    {
        var target = StapleTarget.From(Relay, new RelayState { Ports = [9010, 9011, 9012] });

        Assert.That((target.Lanes, target.WebSockets, target.Host), Is.EqualTo((3, false, "relay.test")));
        Assert.DoesNotThrow(target.Validate);
    }

    [Test]
    public void From_WebSocketOnlyRelay_LanesWithoutPorts()
    {
        var target = StapleTarget.From(Relay, new RelayState { Ports = [], Lanes = 4, Ws = true });

        Assert.That((target.Lanes, target.WebSockets, target.Ports.Count), Is.EqualTo((4, true, 0)));
        Assert.DoesNotThrow(target.Validate);
    }

    [TestCase("http://[::1]:9009/", null, "::1")]
    [TestCase("http://[2001:db8::7]/croc/", null, "2001:db8::7")]
    [TestCase("http://relay.test/", "[::1]", "::1")]
    [TestCase("http://relay.test/", "10.0.0.7", "10.0.0.7")]
    [TestCase("http://bücher.example/", null, "xn--bcher-kva.example")]
    public void From_Hosts_ReadyForASocketConnect(string relay, string? advertised, string expected) =>
        Assert.That(StapleTarget.From(new Uri(relay), new RelayState { Ports = [1], Host = advertised }).Host, Is.EqualTo(expected));

    [TestCase(0, new int[0], true)]
    [TestCase(17, new int[0], true)]
    [TestCase(2, new[] { 9010, 9011, 9012 }, true)]
    [TestCase(3, new[] { 9010 }, true)]
    [TestCase(1, new[] { 0 }, true)]
    [TestCase(2, new int[0], false)]
    public void Validate_WhatARelayMayNotAskFor_ProtocolError(int lanes, int[] ports, bool ws)
    {
        var target = StapleTarget.From(Relay, new RelayState { Ports = ports, Lanes = lanes, Ws = ws });

        Assert.Throws<CrocProtocolException>(target.Validate);
    }
}

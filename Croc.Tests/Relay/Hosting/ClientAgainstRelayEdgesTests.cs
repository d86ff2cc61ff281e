using CrocNet.Relay;
using static CrocNet.Tests.Relay.RelayTestKit;

namespace CrocNet.Tests.Relay.Hosting;

/// <summary>
/// Today's client against relays configured at the edges of their settings: every relay the options allow must serve
/// a plain transfer (two participants on one address, four ports).
/// </summary>
public class ClientAgainstRelayEdgesTests
{
    private static IEnumerable<TestCaseData> Edges()
    {
        static TestCaseData Case(string name, Action<CrocRelayServerOptions> configure) => new TestCaseData(configure).SetArgDisplayNames(name);

        yield return Case("MaxWait=0", o => o.Relay.MaxWait = TimeSpan.Zero);
        yield return Case("MaxWait=1s", o => o.Relay.MaxWait = TimeSpan.FromSeconds(1));
        yield return Case("MaxWait=5min", o => o.Relay.MaxWait = TimeSpan.FromMinutes(5));
        yield return Case("HandshakeExpiry=10s", o => o.Relay.HandshakeExpiry = TimeSpan.FromSeconds(10));
        yield return Case("ChannelExpiry=10s", o => { o.Relay.ChannelExpiry = TimeSpan.FromSeconds(10); o.Relay.ReconnectWindow = TimeSpan.FromSeconds(10); });
        yield return Case("ReconnectWindow=1ms", o => o.Relay.ReconnectWindow = TimeSpan.FromMilliseconds(1));
        yield return Case("MaxReattachments=0", o => o.Relay.MaxReattachments = 0);
        yield return Case("PipeIdleTimeout=1s", o => o.Relay.PipeIdleTimeout = TimeSpan.FromSeconds(1));
        yield return Case("ClosedRetention=0", o => o.Relay.ClosedRetention = TimeSpan.Zero);
        yield return Case("MaxChannels=1", o => o.Relay.MaxChannels = 1);
        yield return Case("MaxChannelsPerAddress=1", o => o.Relay.MaxChannelsPerAddress = 1);
        yield return Case("MaxBodySize=256", o => o.Relay.MaxBodySize = 256);
        yield return Case("PipeBufferSize=64KiB", o => o.Relay.PipeBufferSize = 64 * 1024);
        yield return Case("PipeBufferSize=16MiB", o => o.Relay.PipeBufferSize = 16 * 1024 * 1024);
        yield return Case("MaxWaitingConnections=ports", o => { o.Relay.MaxWaitingConnections = 4; o.Relay.MaxWaitingConnectionsPerAddress = 4; });
        yield return Case("MaxPendingHellos=2xports", o => { o.Relay.MaxPendingHellos = 8; o.Relay.MaxPendingHellosPerAddress = 8; });
        yield return Case("MaxConnections=2xports", o => { o.Relay.MaxConnections = 8; o.Relay.MaxConnectionsPerAddress = 8; });
        yield return Case("MaxJoinsPerMinute=2", o => o.Relay.MaxJoinsPerMinute = 2);
        yield return Case("MaxFailedLookupsPerMinute=1", o => o.Relay.MaxFailedLookupsPerMinute = 1);
        yield return Case("IPv6PrefixLength=1", o => o.Relay.IPv6PrefixLength = 1);
        yield return Case("HttpMaxConnectionsPerAddress=4", o => o.MaxConnectionsPerAddress = 4);
        yield return Case("HttpMaxConnections=8", o => o.MaxConnections = 8);
        yield return Case("KeepAliveTimeout=1s", o => o.KeepAliveTimeout = TimeSpan.FromSeconds(1));
    }

    [TestCaseSource(nameof(Edges))]
    [CancelAfter(30_000)]
    public async Task Transfer_RelayAtTheEdgeOfASetting_Succeeds(Action<CrocRelayServerOptions> configure, CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, configure);
        Assert.That(await TransferTextAsync(relay.BaseAddress, "edge", cancellationToken), Is.EqualTo("edge"));
    }
}

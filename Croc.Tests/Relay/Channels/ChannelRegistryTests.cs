using System.Net;
using CrocNet.Relay;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Diagnostics;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace CrocNet.Tests.Relay.Channels;

public class ChannelRegistryTests
{
    private static readonly IPAddress A = IPAddress.Parse("10.0.0.1");
    private static readonly IPAddress B = IPAddress.Parse("10.0.0.2");
    private static readonly IPAddress C = IPAddress.Parse("10.0.0.3");

    private FakeTimeProvider _time = null!;
    private RelayMetrics _metrics = null!;
    private ChannelRegistry _registry = null!;

    [SetUp]
    public void SetUp()
    {
        _time = new FakeTimeProvider();
        _metrics = new RelayMetrics();
        _registry = NewRegistry(new CrocRelayOptions());
    }

    [TearDown]
    public void TearDown()
    {
        _registry.Dispose();
        _metrics.Dispose();
    }

    private ChannelRegistry NewRegistry(CrocRelayOptions options)
    {
        var registry = new ChannelRegistry(Options.Create(options), new RelayClock(_time), _metrics);
        registry.SetPorts([7001, 7002]);
        return registry;
    }

    private (string Channel, string Sender, string Recipient) Open(bool confirm = false)
    {
        var sender = _registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), A).Value!;
        var channel = sender.State.Channel;
        var recipient = _registry.Join(new JoinCommand(channel, null, ParticipantRole.Recipient), B).Value!;
        if (confirm)
        {
            Assert.That(_registry.Execute(new ChannelCommand(channel, sender.Uuid, ChannelAction.SetX, null, "eA=="), A, out _).IsSuccess);
            Assert.That(_registry.Execute(new ChannelCommand(channel, recipient.Uuid, ChannelAction.SetY, null, "eQ==", "aA=="), B, out _).IsSuccess);
            Assert.That(_registry.Execute(new ChannelCommand(channel, sender.Uuid, ChannelAction.SetHK, null, "aw=="), A, out _).IsSuccess);
        }

        return (channel, sender.Uuid, recipient.Uuid);
    }

    private long Rev(string channel) => _registry.Find(channel)!.Snapshot().Rev;

    private RelayErrorCode Refusal(ChannelCommand command, IPAddress address)
    {
        var before = Rev(command.Channel);
        var outcome = _registry.Execute(command, address, out _);
        Assert.That(outcome.IsSuccess, Is.False);
        Assert.That(Rev(command.Channel), Is.EqualTo(before), "a refused request must change nothing");
        return outcome.Error.Code;
    }

    [Test]
    public void Join_SenderWithoutChannel_GetsTenCharCrockfordNameAndHexUuid()
    {
        var joined = _registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), A).Value!;

        Assert.That(joined.State.Channel, Does.Match("^[0-9abcdefghjkmnpqrstvwxyz]{10}$"));
        Assert.That(joined.Uuid, Does.Match("^[0-9a-f]{32}$"));
        Assert.That(joined.State.Curve, Is.EqualTo("p256"));
        Assert.That(joined.State.Rev, Is.EqualTo(1));
        Assert.That(joined.Role, Is.EqualTo(ParticipantRole.Sender));
    }

    [Test]
    public void Join_SenderNamesTakenChannel_OccupiedAndRevUnchanged()
    {
        var (channel, _, _) = Open();
        var rev = Rev(channel);

        var outcome = _registry.Join(new JoinCommand(channel, null, ParticipantRole.Sender), A);

        Assert.That(outcome.Error.Code, Is.EqualTo(RelayErrorCode.Occupied));
        Assert.That(Rev(channel), Is.EqualTo(rev));
    }

    [Test]
    public void Join_SecondRecipient_Occupied()
    {
        var (channel, _, _) = Open();

        Assert.That(_registry.Join(new JoinCommand(channel, null, ParticipantRole.Recipient), B).Error.Code, Is.EqualTo(RelayErrorCode.Occupied));
    }

    [Test]
    public void Join_RecipientUnknownChannel_NoChannel()
        => Assert.That(_registry.Join(new JoinCommand("nosuch", null, ParticipantRole.Recipient), B).Error.Code, Is.EqualTo(RelayErrorCode.NoChannel));

    [Test]
    public void Join_BeyondMaxChannels_Capacity()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxChannels = 2 });
        Assert.That(registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), A).IsSuccess);
        Assert.That(registry.Join(new JoinCommand("named", "p384", ParticipantRole.Sender), A).IsSuccess);

        Assert.That(registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), A).Error.Code, Is.EqualTo(RelayErrorCode.Capacity));
        Assert.That(registry.Count, Is.EqualTo(2));
    }

    [Test]
    public void Execute_OrderRules_EnforcedAndRefusalsChangeNothing()
    {
        var (channel, sender, recipient) = Open();

        Assert.That(Refusal(new ChannelCommand(channel, recipient, ChannelAction.SetY, null, "eQ==", "aA=="), B), Is.EqualTo(RelayErrorCode.NotReady));
        Assert.That(Refusal(new ChannelCommand(channel, sender, ChannelAction.SetHK, null, "aw=="), A), Is.EqualTo(RelayErrorCode.NotReady));
        Assert.That(Refusal(new ChannelCommand(channel, recipient, ChannelAction.SetX, null, "eA=="), B), Is.EqualTo(RelayErrorCode.BadRequest));

        var x = _registry.Execute(new ChannelCommand(channel, sender, ChannelAction.SetX, "p521", "eA=="), A, out _).Value!;
        Assert.That(x.X, Is.EqualTo("eA=="));
        Assert.That(x.Curve, Is.EqualTo("p521"));
        Assert.That(Refusal(new ChannelCommand(channel, sender, ChannelAction.SetX, null, "eB=="), A), Is.EqualTo(RelayErrorCode.AlreadySet));
        Assert.That(Refusal(new ChannelCommand(channel, sender, ChannelAction.SetHK, null, "aw=="), A), Is.EqualTo(RelayErrorCode.NotReady));

        var y = _registry.Execute(new ChannelCommand(channel, recipient, ChannelAction.SetY, null, "eQ==", "aA=="), B, out _).Value!;
        Assert.That((y.Y, y.HhK), Is.EqualTo(("eQ==", "aA==")));
        Assert.That(Refusal(new ChannelCommand(channel, recipient, ChannelAction.SetY, null, "eQ==", "aA=="), B), Is.EqualTo(RelayErrorCode.AlreadySet));

        var hk = _registry.Execute(new ChannelCommand(channel, sender, ChannelAction.SetHK, null, "aw=="), A, out _).Value!;
        Assert.That(hk.HK, Is.EqualTo("aw=="));
        Assert.That(hk.Rev, Is.EqualTo(5), "sender join, recipient join, x, y, h_k");
        Assert.That(Refusal(new ChannelCommand(channel, sender, ChannelAction.SetHK, null, "aw=="), A), Is.EqualTo(RelayErrorCode.AlreadySet));
    }

    [Test]
    public void Execute_WrongUuid_BadUuid()
    {
        var (channel, _, _) = Open();

        Assert.That(Refusal(new ChannelCommand(channel, new string('0', 32), ChannelAction.Read), A), Is.EqualTo(RelayErrorCode.BadUuid));
    }

    [Test]
    public void Execute_UnknownChannel_AnsweredLikeABadUuid()
        => Assert.That(_registry.Execute(new ChannelCommand("nosuch", "u", ChannelAction.Read), A, out _).Error.Code, Is.EqualTo(RelayErrorCode.BadUuid));

    [Test]
    public void Execute_CloseThenAnything_Closed()
    {
        var (channel, sender, recipient) = Open();

        var closed = _registry.Execute(new ChannelCommand(channel, recipient, ChannelAction.Close), B, out _).Value!;
        Assert.That(closed.Closed, Is.True);

        Assert.That(Refusal(new ChannelCommand(channel, sender, ChannelAction.Read), A), Is.EqualTo(RelayErrorCode.Closed));
        Assert.That(_registry.Join(new JoinCommand(channel, null, ParticipantRole.Sender), A).Error.Code, Is.EqualTo(RelayErrorCode.Closed));
        Assert.That(Refusal(new ChannelCommand(channel, sender, ChannelAction.SetX, null, "eA=="), A), Is.EqualTo(RelayErrorCode.Closed));
    }

    [Test]
    public void Execute_SecondParticipantClosesAClosedChannel_SucceedsAndChangesNothing()
    {
        var (channel, sender, recipient) = Open();
        var closed = _registry.Execute(new ChannelCommand(channel, recipient, ChannelAction.Close), B, out _).Value!;

        var again = _registry.Execute(new ChannelCommand(channel, sender, ChannelAction.Close), A, out _);

        Assert.That(again.IsSuccess, Is.True, "both participants close when done: the second close is not a refusal");
        Assert.That(again.Value!, Is.EqualTo(closed));
        Assert.That(Refusal(new ChannelCommand(channel, "0123", ChannelAction.Close), A), Is.EqualTo(RelayErrorCode.BadUuid));
    }

    [Test]
    public void Join_JoinAndCloseChurnFromOneAddress_CannotFillMaxChannels()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxChannels = 64, MaxChannelsPerAddress = 16, MaxJoinsPerMinute = 100_000 });
        var refusals = 0;
        for (var i = 0; i < 200; i++)
        {
            var joined = registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), A);
            if (joined.Value is not { } result)
            {
                Assert.That(joined.Error.Code, Is.EqualTo(RelayErrorCode.Capacity));
                refusals++;
                continue;
            }

            Assert.That(registry.Execute(new ChannelCommand(result.State.Channel, result.Uuid, ChannelAction.Close), A, out _).IsSuccess);
        }

        Assert.That(refusals, Is.EqualTo(200 - 16));
        Assert.That(registry.Count, Is.EqualTo(16));
        Assert.That(registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), B).IsSuccess, "another sender is served");
    }

    [TestCase(64, 16)]
    [TestCase(128, 40)]
    public void Join_ManyAddressesOfOneIPv6Prefix_ShareOnePerAddressLimit(int prefixLength, int expectedOpened)
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxChannelsPerAddress = 16, IPv6PrefixLength = prefixLength });
        var opened = 0;
        for (var i = 1; i <= 40; i++)
        {
            opened += registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), IPAddress.Parse($"2001:db8:0:1::{i:x}")).IsSuccess ? 1 : 0;
        }

        Assert.That(opened, Is.EqualTo(expectedOpened));
        Assert.That(registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), IPAddress.Parse("2001:db8:0:2::1")).IsSuccess, "another /64 is another client");
    }

    [Test]
    public void Join_BeyondMaxJoinsPerMinute_CapacityUntilTheBucketRefills()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxJoinsPerMinute = 6 });
        for (var i = 0; i < 6; i++)
        {
            Assert.That(registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), A).IsSuccess, $"join {i}");
        }

        var count = registry.Count;
        Assert.That(registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), A).Error.Code, Is.EqualTo(RelayErrorCode.Capacity));
        Assert.That(registry.Count, Is.EqualTo(count), "a refused join stores nothing");
        Assert.That(registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), B).IsSuccess, "other addresses are not affected");

        _time.Advance(TimeSpan.FromSeconds(10)); // 6 per minute: one token every 10 s
        Assert.That(registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), A).IsSuccess);
        Assert.That(registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), A).IsSuccess, Is.False);
    }

    [Test]
    public void Execute_UnknownChannelOrWrongUuid_SameAnswerWhateverTheChannelsState()
    {
        var (channel, sender, _) = Open();
        var unknown = _registry.Execute(new ChannelCommand("nosuch", "0123", ChannelAction.Read), C, out _).Error;

        // Existing, a third address (the IP rule would refuse), then closed: a caller without a valid uuid sees the same.
        Assert.That(Refusal(new ChannelCommand(channel, "0123", ChannelAction.Read), C), Is.EqualTo(RelayErrorCode.BadUuid));
        Assert.That(_registry.Execute(new ChannelCommand(channel, "0123", ChannelAction.Read), C, out _).Error, Is.EqualTo(unknown));
        Assert.That(_registry.Execute(new ChannelCommand(channel, sender, ChannelAction.Close), A, out _).IsSuccess);
        Assert.That(_registry.Execute(new ChannelCommand(channel, "0123", ChannelAction.Read), C, out _).Error, Is.EqualTo(unknown));
        Assert.That(_registry.Attach(channel, "0123", C, 7001, new FakeLink()).Error, Is.EqualTo(unknown));
        Assert.That(_registry.Attach("nosuch", "0123", C, 7001, new FakeLink()).Error, Is.EqualTo(unknown));
    }

    [Test]
    public void Lookups_BeyondMaxFailedLookupsPerMinute_AnsweredAsFailuresWithoutLookingUntilTheBucketRefills()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxFailedLookupsPerMinute = 3 });
        var sender = registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), B).Value!;
        var channel = sender.State.Channel;
        for (var i = 0; i < 3; i++)
        {
            Assert.That(registry.Join(new JoinCommand($"probe{i}", null, ParticipantRole.Recipient), A).Error.Code, Is.EqualTo(RelayErrorCode.NoChannel));
        }

        // Out of budget: even the live channel is "no channel", and /channel and hellos answer bad_uuid unseen.
        Assert.That(registry.Join(new JoinCommand(channel, null, ParticipantRole.Recipient), A).Error.Code, Is.EqualTo(RelayErrorCode.NoChannel));
        Assert.That(registry.Execute(new ChannelCommand(channel, sender.Uuid, ChannelAction.Read), A, out _).Error.Code, Is.EqualTo(RelayErrorCode.BadUuid));
        Assert.That(registry.Join(new JoinCommand(channel, null, ParticipantRole.Sender), A).Error.Code, Is.EqualTo(RelayErrorCode.Occupied));
        Assert.That(registry.Find(channel)!.Snapshot().Rev, Is.EqualTo(1), "nothing changed");
        Assert.That(registry.Execute(new ChannelCommand(channel, sender.Uuid, ChannelAction.Read), B, out _).IsSuccess, "other addresses are not affected");

        _time.Advance(TimeSpan.FromSeconds(20)); // 3 per minute: one token every 20 s
        Assert.That(registry.Join(new JoinCommand(channel, null, ParticipantRole.Recipient), A).IsSuccess);
    }

    [Test]
    public void Attach_BeyondMaxWaitingConnectionsPerAddress_CapacityForThatAddressOnly()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxWaitingConnectionsPerAddress = 2 });
        registry.SetPorts([7001, 7002, 7003]);
        var first = Confirmed(registry, A, B);
        var second = Confirmed(registry, C, B);

        Assert.That(registry.Attach(first.Channel, first.Sender, A, 7001, new FakeLink()).IsSuccess);
        Assert.That(registry.Attach(first.Channel, first.Sender, A, 7002, new FakeLink()).IsSuccess);
        Assert.That(registry.Attach(first.Channel, first.Sender, A, 7003, new FakeLink()).Error.Code, Is.EqualTo(RelayErrorCode.Capacity));
        Assert.That(registry.WaitingOf(A), Is.EqualTo(2));
        Assert.That(registry.Attach(second.Channel, second.Sender, C, 7003, new FakeLink()).IsSuccess, "another address may still wait");
        Assert.That(registry.Attach(first.Channel, first.Recipient, B, 7001, new FakeLink()).Value!.Peer, Is.Not.Null, "pairing frees A's waiting slot");
        Assert.That(registry.WaitingOf(A), Is.EqualTo(1));
        Assert.That(registry.Attach(first.Channel, first.Sender, A, 7003, new FakeLink()).IsSuccess);
    }

    private static (string Channel, string Sender, string Recipient) Confirmed(ChannelRegistry registry, IPAddress sender, IPAddress recipient)
    {
        var s = registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), sender).Value!;
        var channel = s.State.Channel;
        var r = registry.Join(new JoinCommand(channel, null, ParticipantRole.Recipient), recipient).Value!;
        Assert.That(registry.Execute(new ChannelCommand(channel, s.Uuid, ChannelAction.SetX, null, "eA=="), sender, out _).IsSuccess);
        Assert.That(registry.Execute(new ChannelCommand(channel, r.Uuid, ChannelAction.SetY, null, "eQ==", "aA=="), recipient, out _).IsSuccess);
        Assert.That(registry.Execute(new ChannelCommand(channel, s.Uuid, ChannelAction.SetHK, null, "aw=="), sender, out _).IsSuccess);
        return (channel, s.Uuid, r.Uuid);
    }

    [Test]
    public void Execute_ThirdAddress_IpLimitAndRefusalsRecordNoAddress()
    {
        var sender = _registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), A).Value!;
        var channel = sender.State.Channel;

        // A refused request from B must not take B's place in the address list ...
        Assert.That(Refusal(new ChannelCommand(channel, "wrong", ChannelAction.Read), B), Is.EqualTo(RelayErrorCode.BadUuid));

        // ... so C can still join as the second address, and then B is the third.
        var recipient = _registry.Join(new JoinCommand(channel, null, ParticipantRole.Recipient), C).Value!;
        Assert.That(Refusal(new ChannelCommand(channel, recipient.Uuid, ChannelAction.Read), B), Is.EqualTo(RelayErrorCode.IpLimit));
        Assert.That(_registry.Execute(new ChannelCommand(channel, recipient.Uuid, ChannelAction.Read), A, out _).IsSuccess, Is.True, "either known address may act");
    }

    [Test]
    public async Task WaitAsync_ChangeArrives_ReturnsNewState()
    {
        var (channel, sender, _) = Open();
        var since = Rev(channel);
        var wait = _registry.Find(channel)!.WaitAsync(since, TimeSpan.FromSeconds(30), _time, CancellationToken.None).AsTask();
        Assert.That(wait.IsCompleted, Is.False);

        _registry.Execute(new ChannelCommand(channel, sender, ChannelAction.SetX, null, "eA=="), A, out _);

        var state = await wait;
        Assert.That(state.Rev, Is.EqualTo(since + 1));
        Assert.That(state.X, Is.EqualTo("eA=="));
    }

    [Test]
    public async Task WaitAsync_NoChange_ReturnsCurrentStateWhenTimeRunsOut()
    {
        var (channel, _, _) = Open();
        var since = Rev(channel);
        var wait = _registry.Find(channel)!.WaitAsync(since, TimeSpan.FromSeconds(30), _time, CancellationToken.None).AsTask();

        _time.Advance(TimeSpan.FromSeconds(29));
        Assert.That(wait.IsCompleted, Is.False);
        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.That((await wait).Rev, Is.EqualTo(since));
    }

    [Test]
    public async Task WaitAsync_AlreadyNewer_ReturnsAtOnce()
    {
        var (channel, _, _) = Open();

        var state = await _registry.Find(channel)!.WaitAsync(0, TimeSpan.FromSeconds(30), _time, CancellationToken.None);

        Assert.That(state.Rev, Is.EqualTo(2));
    }

    [Test]
    public void Expiry_ChannelNotClosedInTime_ClosedThenForgotten()
    {
        var (channel, sender, _) = Open(confirm: true);
        var link = new FakeLink();
        Assert.That(_registry.Attach(channel, sender, A, 7001, link).IsSuccess);
        Assert.That(_registry.WaitingConnections, Is.EqualTo(1));

        _time.Advance(TimeSpan.FromHours(3) - TimeSpan.FromSeconds(1));
        Assert.That(_registry.Find(channel)!.IsClosed, Is.False);
        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.That(link.Aborted, Is.True);
        Assert.That(_registry.WaitingConnections, Is.Zero);
        Assert.That(_registry.Execute(new ChannelCommand(channel, sender, ChannelAction.Read), A, out _).Error.Code, Is.EqualTo(RelayErrorCode.Closed));

        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.That(_registry.Execute(new ChannelCommand(channel, sender, ChannelAction.Read), A, out _).Error.Code, Is.EqualTo(RelayErrorCode.BadUuid), "forgotten: like any unknown channel");
        Assert.That(_registry.Count, Is.Zero);
    }

    [Test]
    public void Attach_BeforeKeyConfirmation_NotReady()
    {
        var (channel, sender, _) = Open(confirm: false);

        Assert.That(_registry.Attach(channel, sender, A, 7001, new FakeLink()).Error.Code, Is.EqualTo(RelayErrorCode.NotReady));
        Assert.That(_registry.WaitingConnections, Is.Zero);
    }

    [Test]
    public void Attach_BothOnEveryPort_PairsAndStaples()
    {
        var (channel, sender, recipient) = Open(confirm: true);
        var rev = Rev(channel);
        var s1 = new FakeLink();

        var first = _registry.Attach(channel, sender, A, 7001, s1).Value!;
        Assert.That(first.Peer, Is.Null);
        Assert.That(_registry.Attach(channel, sender, A, 7001, new FakeLink()).Error.Code, Is.EqualTo(RelayErrorCode.Duplicate));
        Assert.That(_registry.Attach(channel, "nope", A, 7001, new FakeLink()).Error.Code, Is.EqualTo(RelayErrorCode.BadUuid));
        Assert.That(_registry.Attach(channel, recipient, C, 7001, new FakeLink()).Error.Code, Is.EqualTo(RelayErrorCode.IpLimit));
        Assert.That(_registry.Attach(channel, recipient, B, 9999, new FakeLink()).Error.Code, Is.EqualTo(RelayErrorCode.BadRequest));

        var second = _registry.Attach(channel, recipient, B, 7001, new FakeLink()).Value!;
        Assert.That(second.Peer, Is.SameAs(s1));
        Assert.That(second.Role, Is.EqualTo(ParticipantRole.Recipient));
        Assert.That(_registry.Find(channel)!.Snapshot().Stapled, Is.False, "one of two ports");

        _registry.Attach(channel, recipient, B, 7002, new FakeLink());
        _registry.Attach(channel, sender, A, 7002, new FakeLink());
        var state = _registry.Find(channel)!.Snapshot();
        Assert.That(state.Stapled, Is.True);
        Assert.That(state.Rev, Is.EqualTo(rev + 1));
        Assert.That(_registry.WaitingConnections, Is.Zero);
    }

    [Test]
    public void EndConnections_AbortsAllAndRefusesLaterHellos()
    {
        var (channel, sender, recipient) = Open(confirm: true);
        var links = new[] { new FakeLink(), new FakeLink(), new FakeLink() };
        _registry.Attach(channel, sender, A, 7001, links[0]);
        _registry.Attach(channel, recipient, B, 7001, links[1]);
        _registry.Attach(channel, sender, A, 7002, links[2]);

        _registry.Find(channel)!.EndConnections("test");

        Assert.That(links.All(l => l.Aborted), Is.True);
        Assert.That(_registry.WaitingConnections, Is.Zero);
        Assert.That(_registry.Attach(channel, recipient, B, 7002, new FakeLink()).Error.Code, Is.EqualTo(RelayErrorCode.Closed));
        Assert.That(_registry.Find(channel)!.IsClosed, Is.False, "ending the connections does not close the channel");
    }

    [Test]
    public void PairFinished_OnePairOfStapledChannel_OthersKeptUntilEveryPairFinished()
    {
        var (channel, sender, recipient) = Open(confirm: true);
        var links = new[] { new FakeLink(), new FakeLink(), new FakeLink(), new FakeLink() };
        _registry.Attach(channel, sender, A, 7001, links[0]);
        _registry.Attach(channel, recipient, B, 7001, links[1]);
        _registry.Attach(channel, sender, A, 7002, links[2]);
        var found = _registry.Find(channel)!;

        found.PairFinished(7001);
        Assert.That(links[2].Aborted, Is.False, "not stapled yet: a finished pair cuts nothing");

        _registry.Attach(channel, recipient, B, 7002, links[3]);
        Assert.That(found.Snapshot().Stapled, Is.True);
        found.PairFinished(7002);

        Assert.That(links.All(l => l.Aborted), Is.True, "every pair finished: the TCP session ends");
        Assert.That(_registry.Attach(channel, recipient, B, 7001, new FakeLink()).Error.Code, Is.EqualTo(RelayErrorCode.Closed));
    }

    [Test]
    public void Attach_BeyondMaxWaitingConnections_Capacity()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxWaitingConnections = 1 });
        var sender = registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), A).Value!;
        var channel = sender.State.Channel;
        var recipient = registry.Join(new JoinCommand(channel, null, ParticipantRole.Recipient), B).Value!;
        registry.Execute(new ChannelCommand(channel, sender.Uuid, ChannelAction.SetX, null, "eA=="), A, out _);
        registry.Execute(new ChannelCommand(channel, recipient.Uuid, ChannelAction.SetY, null, "eQ==", "aA=="), B, out _);
        registry.Execute(new ChannelCommand(channel, sender.Uuid, ChannelAction.SetHK, null, "aw=="), A, out _);

        Assert.That(registry.Attach(channel, sender.Uuid, A, 7001, new FakeLink()).IsSuccess);
        Assert.That(registry.Attach(channel, sender.Uuid, A, 7002, new FakeLink()).Error.Code, Is.EqualTo(RelayErrorCode.Capacity));
        Assert.That(registry.Attach(channel, recipient.Uuid, B, 7001, new FakeLink()).IsSuccess, Is.True, "completing a pair needs no waiting slot");
    }

    [Test]
    public void Join_BeyondMaxChannelsPerAddress_CapacityUntilAClosedOneIsForgotten()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxChannelsPerAddress = 2 });
        var first = registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), A).Value!;
        Assert.That(registry.Join(new JoinCommand("named", null, ParticipantRole.Sender), A).IsSuccess);

        var refused = registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), A).Error;
        Assert.That(refused.Code, Is.EqualTo(RelayErrorCode.Capacity));
        Assert.That(registry.Count, Is.EqualTo(2), "a refused join stores nothing");
        Assert.That(registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), B).IsSuccess, "other addresses are not affected");

        Assert.That(registry.Execute(new ChannelCommand(first.State.Channel, first.Uuid, ChannelAction.Close), A, out _).IsSuccess);
        Assert.That(registry.ChannelsOf(A), Is.EqualTo(2), "a closed channel counts while it is remembered");
        Assert.That(registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), A).Error.Code, Is.EqualTo(RelayErrorCode.Capacity), "join + close churn cannot fill MaxChannels");

        _time.Advance(new CrocRelayOptions().ClosedRetention);
        Assert.That(registry.ChannelsOf(A), Is.EqualTo(1), "forgotten: it no longer counts");
        Assert.That(registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), A).IsSuccess);
    }

    [Test]
    public void Join_TakenName_CountsNothingForTheAddress()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxChannelsPerAddress = 1 });
        Assert.That(registry.Join(new JoinCommand("taken", null, ParticipantRole.Sender), B).IsSuccess);
        Assert.That(registry.Join(new JoinCommand("taken", null, ParticipantRole.Sender), A).Error.Code, Is.EqualTo(RelayErrorCode.Occupied));

        Assert.That(registry.ChannelsOf(A), Is.Zero);
        Assert.That(registry.Join(new JoinCommand(null, null, ParticipantRole.Sender), A).IsSuccess);
    }

    [Test]
    public void Expiry_KeyConfirmationIncomplete_ExpiresAfterHandshakeExpiryAndFreesTheAddressOnceForgotten()
    {
        var (channel, sender, _) = Open();
        Assert.That(_registry.ChannelsOf(A), Is.EqualTo(1));

        _time.Advance(TimeSpan.FromMinutes(10) - TimeSpan.FromSeconds(1));
        Assert.That(_registry.Find(channel)!.IsClosed, Is.False);
        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.That(_registry.Find(channel)!.IsClosed, Is.True);
        Assert.That(_registry.Execute(new ChannelCommand(channel, sender, ChannelAction.Read), A, out _).Error.Code, Is.EqualTo(RelayErrorCode.Closed));
        Assert.That(_registry.ChannelsOf(A), Is.EqualTo(1), "expired but remembered: still counts");
        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.That(_registry.ChannelsOf(A), Is.Zero);
    }

    [Test]
    public void Expiry_KeyConfirmedLate_ChannelExpiryCountedFromCreation()
    {
        var (channel, sender, recipient) = Open();
        _time.Advance(TimeSpan.FromMinutes(9));
        Assert.That(_registry.Execute(new ChannelCommand(channel, sender, ChannelAction.SetX, null, "eA=="), A, out _).IsSuccess);
        Assert.That(_registry.Execute(new ChannelCommand(channel, recipient, ChannelAction.SetY, null, "eQ==", "aA=="), B, out _).IsSuccess);
        Assert.That(_registry.Execute(new ChannelCommand(channel, sender, ChannelAction.SetHK, null, "aw=="), A, out _).IsSuccess);

        _time.Advance(TimeSpan.FromHours(3) - TimeSpan.FromMinutes(9) - TimeSpan.FromSeconds(1));
        Assert.That(_registry.Find(channel)!.IsClosed, Is.False, "h_k lifts the handshake expiry");
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(_registry.Find(channel)!.IsClosed, Is.True);
    }

    [Test]
    public void Detach_WaitingConnection_FreesSlotAndReservationSoTheParticipantCanReconnect()
    {
        var (channel, sender, recipient) = Open(confirm: true);
        var gone = new FakeLink();
        Assert.That(_registry.Attach(channel, sender, A, 7001, gone).IsSuccess);
        Assert.That(_registry.Attach(channel, sender, A, 7001, new FakeLink()).Error.Code, Is.EqualTo(RelayErrorCode.Duplicate));

        Assert.That(_registry.Find(channel)!.Detach(7001, gone), Is.True);
        Assert.That(_registry.WaitingConnections, Is.Zero);
        Assert.That(_registry.Find(channel)!.Detach(7001, gone), Is.False, "only once");

        var again = new FakeLink();
        Assert.That(_registry.Attach(channel, sender, A, 7001, again).IsSuccess);
        Assert.That(_registry.WaitingConnections, Is.EqualTo(1));
        Assert.That(_registry.Attach(channel, recipient, B, 7001, new FakeLink()).Value!.Peer, Is.SameAs(again));
        Assert.That(_registry.Find(channel)!.Detach(7001, again), Is.False, "a piped connection is not detached");
        Assert.That(_registry.WaitingConnections, Is.Zero);
    }

    private sealed class FakeLink : IStapleLink
    {
        public bool Aborted { get; private set; }

        public void Abort() => Aborted = true;
    }
}

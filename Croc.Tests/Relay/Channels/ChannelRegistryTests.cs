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

    private ChannelRegistry NewRegistry(CrocRelayOptions options, IChannelStore? store = null)
    {
        var registry = new ChannelRegistry(Options.Create(options), new RelayClock(_time), _metrics, store);
        registry.SetPorts([7001, 7002]);
        return registry;
    }

    private async Task<(string Channel, string Sender, string Recipient)> OpenAsync(bool confirm = false)
    {
        var sender = (await _registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), A)).Value!;
        var channel = sender.State.Channel;
        var recipient = (await _registry.JoinAsync(new JoinCommand(channel, null, ParticipantRole.Recipient), B)).Value!;
        if (confirm)
        {
            Assert.That((await _registry.ExecuteAsync(new ChannelCommand(channel, sender.Uuid, ChannelAction.SetX, null, "eA=="), A)).IsSuccess);
            Assert.That((await _registry.ExecuteAsync(new ChannelCommand(channel, recipient.Uuid, ChannelAction.SetY, null, "eQ==", "aA=="), B)).IsSuccess);
            Assert.That((await _registry.ExecuteAsync(new ChannelCommand(channel, sender.Uuid, ChannelAction.SetHK, null, "aw=="), A)).IsSuccess);
        }

        return (channel, sender.Uuid, recipient.Uuid);
    }

    private async Task<long> RevAsync(string channel) => (await _registry.GetAsync(channel))!.Rev;

    private async Task<RelayErrorCode> RefusalAsync(ChannelCommand command, IPAddress address)
    {
        var before = await RevAsync(command.Channel);
        var outcome = (await _registry.ExecuteAsync(command, address));
        Assert.That(outcome.IsSuccess, Is.False);
        Assert.That(await RevAsync(command.Channel), Is.EqualTo(before), "a refused request must change nothing");
        return outcome.Error.Code;
    }

    [Test]
    public async Task Join_SenderWithoutChannel_GetsTenCharCrockfordNameAndHexUuid()
    {
        var joined = (await _registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), A)).Value!;

        Assert.That(joined.State.Channel, Does.Match("^[0-9abcdefghjkmnpqrstvwxyz]{10}$"));
        Assert.That(joined.Uuid, Does.Match("^[0-9a-f]{32}$"));
        Assert.That(joined.State.Curve, Is.EqualTo("p256"));
        Assert.That(joined.State.Rev, Is.EqualTo(1));
        Assert.That(joined.Role, Is.EqualTo(ParticipantRole.Sender));
    }

    [Test]
    public async Task Join_SenderNamesTakenChannel_OccupiedAndRevUnchanged()
    {
        var (channel, _, _) = await OpenAsync();
        var rev = await RevAsync(channel);

        var outcome = (await _registry.JoinAsync(new JoinCommand(channel, null, ParticipantRole.Sender), A));

        Assert.That(outcome.Error.Code, Is.EqualTo(RelayErrorCode.Occupied));
        Assert.That(await RevAsync(channel), Is.EqualTo(rev));
    }

    [Test]
    public async Task Join_SenderRetriesWithItsOwnUuid_SameAnswerNothingChanges()
    {
        // The first answer was lost on the way; the client sends the same join (its uuid included) again.
        var uuid = ChannelNames.NewUuid();
        var first = (await _registry.JoinAsync(new JoinCommand("retried", null, ParticipantRole.Sender, uuid), A)).Value!;

        var again = await _registry.JoinAsync(new JoinCommand("retried", null, ParticipantRole.Sender, uuid), A);
        var other = await _registry.JoinAsync(new JoinCommand("retried", null, ParticipantRole.Sender, ChannelNames.NewUuid()), A);
        var elsewhere = await _registry.JoinAsync(new JoinCommand("retried", null, ParticipantRole.Sender, uuid), B);

        Assert.That((again.Value!.Uuid, again.Value.Role, again.Value.State.Id, again.Value.State.Rev), Is.EqualTo((uuid, ParticipantRole.Sender, first.State.Id, first.State.Rev)));
        Assert.That(first.Uuid, Is.EqualTo(uuid), "the relay keeps the uuid its client chose");
        Assert.That(other.Error.Code, Is.EqualTo(RelayErrorCode.Occupied), "another uuid is another sender");
        Assert.That(elsewhere.Value!.Uuid, Is.EqualTo(uuid), "a second address is allowed (the two-address rule), and the uuid proves who it is");
        Assert.That((await _registry.GetAsync("retried"))!.Id, Is.EqualTo(first.State.Id), "the same channel, not a second one");
        Assert.That(await RevAsync("retried"), Is.EqualTo(first.State.Rev));
    }

    [Test]
    public async Task Join_RecipientRetriesWithItsOwnUuid_SameAnswerAnotherUuidOccupied()
    {
        var sender = (await _registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), A)).Value!;
        var channel = sender.State.Channel;
        var uuid = ChannelNames.NewUuid();
        var first = (await _registry.JoinAsync(new JoinCommand(channel, null, ParticipantRole.Recipient, uuid), B)).Value!;

        var again = await _registry.JoinAsync(new JoinCommand(channel, null, ParticipantRole.Recipient, uuid), B);
        var other = await _registry.JoinAsync(new JoinCommand(channel, null, ParticipantRole.Recipient, ChannelNames.NewUuid()), B);
        var third = await _registry.JoinAsync(new JoinCommand(channel, null, ParticipantRole.Recipient, uuid), C);

        Assert.That((again.Value!.Uuid, again.Value.Role, again.Value.State.Rev), Is.EqualTo((uuid, ParticipantRole.Recipient, first.State.Rev)));
        Assert.That(other.Error.Code, Is.EqualTo(RelayErrorCode.Occupied));
        Assert.That(third.Error.Code, Is.EqualTo(RelayErrorCode.IpLimit), "a third address is refused even with the uuid");
        Assert.That(await RevAsync(channel), Is.EqualTo(first.State.Rev));
    }

    [Test]
    public async Task Execute_SameValuePostedAgain_AnsweredRevUnchangedAnotherValueAlreadySet()
    {
        var (channel, sender, recipient) = await OpenAsync();
        Assert.That((await _registry.ExecuteAsync(new ChannelCommand(channel, sender, ChannelAction.SetX, null, "eA=="), A)).IsSuccess);
        Assert.That((await _registry.ExecuteAsync(new ChannelCommand(channel, recipient, ChannelAction.SetY, null, "eQ==", "aA=="), B)).IsSuccess);
        Assert.That((await _registry.ExecuteAsync(new ChannelCommand(channel, sender, ChannelAction.SetHK, null, "aw=="), A)).IsSuccess);
        var rev = await RevAsync(channel);

        // Retries of posts whose answers were lost: the same values, answered as before.
        foreach (var retry in new[]
        {
            (new ChannelCommand(channel, sender, ChannelAction.SetX, null, "eA=="), A),
            (new ChannelCommand(channel, recipient, ChannelAction.SetY, null, "eQ==", "aA=="), B),
            (new ChannelCommand(channel, sender, ChannelAction.SetHK, null, "aw=="), A),
        })
        {
            Assert.That((await _registry.ExecuteAsync(retry.Item1, retry.Item2)).IsSuccess, Is.True, retry.Item1.Action.ToString());
        }

        foreach (var change in new[]
        {
            (new ChannelCommand(channel, sender, ChannelAction.SetX, null, "eg=="), A),
            (new ChannelCommand(channel, sender, ChannelAction.SetX, "p384", "eA=="), A),
            (new ChannelCommand(channel, recipient, ChannelAction.SetY, null, "eQ==", "aQ=="), B),
            (new ChannelCommand(channel, sender, ChannelAction.SetHK, null, "bA=="), A),
        })
        {
            Assert.That((await _registry.ExecuteAsync(change.Item1, change.Item2)).Error.Code, Is.EqualTo(RelayErrorCode.AlreadySet), change.Item1.Action.ToString());
        }

        Assert.That(await RevAsync(channel), Is.EqualTo(rev), "neither a retry nor a refusal changes anything");
    }

    [Test]
    public async Task Join_SecondRecipient_Occupied()
    {
        var (channel, _, _) = await OpenAsync();

        Assert.That((await _registry.JoinAsync(new JoinCommand(channel, null, ParticipantRole.Recipient), B)).Error.Code, Is.EqualTo(RelayErrorCode.Occupied));
    }

    [Test]
    public async Task Join_RecipientUnknownChannel_NoChannel()
        => Assert.That((await _registry.JoinAsync(new JoinCommand("nosuch", null, ParticipantRole.Recipient), B)).Error.Code, Is.EqualTo(RelayErrorCode.NoChannel));

    [Test]
    public async Task Join_BeyondMaxChannels_Capacity()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxChannels = 2 });
        Assert.That((await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), A)).IsSuccess);
        Assert.That((await registry.JoinAsync(new JoinCommand("named", "p384", ParticipantRole.Sender), A)).IsSuccess);

        Assert.That((await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), A)).Error.Code, Is.EqualTo(RelayErrorCode.Capacity));
        Assert.That(registry.Count, Is.EqualTo(2));
    }

    [Test]
    public async Task Execute_OrderRules_EnforcedAndRefusalsChangeNothing()
    {
        var (channel, sender, recipient) = await OpenAsync();

        Assert.That(await RefusalAsync(new ChannelCommand(channel, recipient, ChannelAction.SetY, null, "eQ==", "aA=="), B), Is.EqualTo(RelayErrorCode.NotReady));
        Assert.That(await RefusalAsync(new ChannelCommand(channel, sender, ChannelAction.SetHK, null, "aw=="), A), Is.EqualTo(RelayErrorCode.NotReady));
        Assert.That(await RefusalAsync(new ChannelCommand(channel, recipient, ChannelAction.SetX, null, "eA=="), B), Is.EqualTo(RelayErrorCode.BadRequest));

        var x = (await _registry.ExecuteAsync(new ChannelCommand(channel, sender, ChannelAction.SetX, "p521", "eA=="), A)).Value!;
        Assert.That(x.X, Is.EqualTo("eA=="));
        Assert.That(x.Curve, Is.EqualTo("p521"));
        Assert.That(await RefusalAsync(new ChannelCommand(channel, sender, ChannelAction.SetX, null, "eB=="), A), Is.EqualTo(RelayErrorCode.AlreadySet));
        Assert.That(await RefusalAsync(new ChannelCommand(channel, sender, ChannelAction.SetHK, null, "aw=="), A), Is.EqualTo(RelayErrorCode.NotReady));

        var y = (await _registry.ExecuteAsync(new ChannelCommand(channel, recipient, ChannelAction.SetY, null, "eQ==", "aA=="), B)).Value!;
        Assert.That((y.Y, y.HhK), Is.EqualTo(("eQ==", "aA==")));
        Assert.That(await RefusalAsync(new ChannelCommand(channel, recipient, ChannelAction.SetY, null, "eR==", "aA=="), B), Is.EqualTo(RelayErrorCode.AlreadySet));

        var hk = (await _registry.ExecuteAsync(new ChannelCommand(channel, sender, ChannelAction.SetHK, null, "aw=="), A)).Value!;
        Assert.That(hk.HK, Is.EqualTo("aw=="));
        Assert.That(hk.Rev, Is.EqualTo(5), "sender join, recipient join, x, y, h_k");
        Assert.That(await RefusalAsync(new ChannelCommand(channel, sender, ChannelAction.SetHK, null, "ax=="), A), Is.EqualTo(RelayErrorCode.AlreadySet));
    }

    [Test]
    public async Task Execute_WrongUuid_BadUuid()
    {
        var (channel, _, _) = await OpenAsync();

        Assert.That(await RefusalAsync(new ChannelCommand(channel, new string('0', 32), ChannelAction.Read), A), Is.EqualTo(RelayErrorCode.BadUuid));
    }

    [Test]
    public async Task Execute_UnknownChannel_AnsweredLikeABadUuid()
        => Assert.That((await _registry.ExecuteAsync(new ChannelCommand("nosuch", "u", ChannelAction.Read), A)).Error.Code, Is.EqualTo(RelayErrorCode.BadUuid));

    [Test]
    public async Task Execute_CloseThenAnything_Closed()
    {
        var (channel, sender, recipient) = await OpenAsync();

        var closed = (await _registry.ExecuteAsync(new ChannelCommand(channel, recipient, ChannelAction.Close), B)).Value!;
        Assert.That(closed.Closed, Is.True);

        Assert.That(await RefusalAsync(new ChannelCommand(channel, sender, ChannelAction.Read), A), Is.EqualTo(RelayErrorCode.Closed));
        Assert.That((await _registry.JoinAsync(new JoinCommand(channel, null, ParticipantRole.Sender), A)).Error.Code, Is.EqualTo(RelayErrorCode.Closed));
        Assert.That(await RefusalAsync(new ChannelCommand(channel, sender, ChannelAction.SetX, null, "eA=="), A), Is.EqualTo(RelayErrorCode.Closed));
    }

    [Test]
    public async Task Execute_SecondParticipantClosesAClosedChannel_SucceedsAndChangesNothing()
    {
        var (channel, sender, recipient) = await OpenAsync();
        var closed = (await _registry.ExecuteAsync(new ChannelCommand(channel, recipient, ChannelAction.Close), B)).Value!;

        var again = (await _registry.ExecuteAsync(new ChannelCommand(channel, sender, ChannelAction.Close), A));

        Assert.That(again.IsSuccess, Is.True, "both participants close when done: the second close is not a refusal");
        Assert.That(again.Value!, Is.EqualTo(closed));
        Assert.That(await RefusalAsync(new ChannelCommand(channel, "0123", ChannelAction.Close), A), Is.EqualTo(RelayErrorCode.BadUuid));
    }

    [Test]
    public async Task Join_JoinAndCloseChurnFromOneAddress_CannotFillMaxChannelsAndNeverStalls()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxChannels = 64, MaxChannelsPerAddress = 16, MaxJoinsPerMinute = 100_000 });
        for (var i = 0; i < 200; i++)
        {
            var joined = (await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), A)).Value;
            Assert.That(joined, Is.Not.Null, $"join {i}: one transfer after another recycles the address's own closed channels");
            Assert.That((await registry.ExecuteAsync(new ChannelCommand(joined!.State.Channel, joined.Uuid, ChannelAction.Close), A)).IsSuccess);
            Assert.That(registry.Count, Is.LessThanOrEqualTo(16), "closed channels count against their creator");
        }

        Assert.That(registry.ChannelsOf(A), Is.EqualTo(16));
        Assert.That((await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), B)).IsSuccess, "another sender is served");
    }

    [TestCase(64, 16)]
    [TestCase(128, 40)]
    public async Task Join_ManyAddressesOfOneIPv6Prefix_ShareOnePerAddressLimit(int prefixLength, int expectedOpened)
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxChannelsPerAddress = 16, IPv6PrefixLength = prefixLength });
        var opened = 0;
        for (var i = 1; i <= 40; i++)
        {
            opened += (await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), IPAddress.Parse($"2001:db8:0:1::{i:x}"))).IsSuccess ? 1 : 0;
        }

        Assert.That(opened, Is.EqualTo(expectedOpened));
        Assert.That((await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), IPAddress.Parse("2001:db8:0:2::1"))).IsSuccess, "another /64 is another client");
    }

    [Test]
    public async Task Join_BeyondMaxJoinsPerMinute_CapacityUntilTheBucketRefills()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxJoinsPerMinute = 6 });
        for (var i = 0; i < 6; i++)
        {
            Assert.That((await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), A)).IsSuccess, $"join {i}");
        }

        var count = registry.Count;
        Assert.That((await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), A)).Error.Code, Is.EqualTo(RelayErrorCode.Capacity));
        Assert.That(registry.Count, Is.EqualTo(count), "a refused join stores nothing");
        Assert.That((await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), B)).IsSuccess, "other addresses are not affected");

        _time.Advance(TimeSpan.FromSeconds(10)); // 6 per minute: one token every 10 s
        Assert.That((await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), A)).IsSuccess);
        Assert.That((await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), A)).IsSuccess, Is.False);
    }

    [Test]
    public async Task Execute_UnknownChannelOrWrongUuid_SameAnswerWhateverTheChannelsState()
    {
        var (channel, sender, _) = await OpenAsync();
        var unknown = (await _registry.ExecuteAsync(new ChannelCommand("nosuch", "0123", ChannelAction.Read), C)).Error;

        // Existing, a third address (the IP rule would refuse), then closed: a caller without a valid uuid sees the same.
        Assert.That(await RefusalAsync(new ChannelCommand(channel, "0123", ChannelAction.Read), C), Is.EqualTo(RelayErrorCode.BadUuid));
        Assert.That((await _registry.ExecuteAsync(new ChannelCommand(channel, "0123", ChannelAction.Read), C)).Error, Is.EqualTo(unknown));
        Assert.That((await _registry.ExecuteAsync(new ChannelCommand(channel, sender, ChannelAction.Close), A)).IsSuccess);
        Assert.That((await _registry.ExecuteAsync(new ChannelCommand(channel, "0123", ChannelAction.Read), C)).Error, Is.EqualTo(unknown));
        Assert.That((await _registry.AttachAsync(channel, "0123", C, 0, new FakeLink())).Error, Is.EqualTo(unknown));
        Assert.That((await _registry.AttachAsync("nosuch", "0123", C, 0, new FakeLink())).Error, Is.EqualTo(unknown));
    }

    [Test]
    public async Task Lookups_BeyondMaxFailedLookupsPerMinute_AnsweredAsFailuresWithoutLookingUntilTheBucketRefills()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxFailedLookupsPerMinute = 3 });
        var sender = (await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), B)).Value!;
        var channel = sender.State.Channel;
        for (var i = 0; i < 3; i++)
        {
            Assert.That((await registry.JoinAsync(new JoinCommand($"probe{i}", null, ParticipantRole.Recipient), A)).Error.Code, Is.EqualTo(RelayErrorCode.NoChannel));
        }

        // Out of budget: even the live channel is "no channel", and /channel and hellos answer bad_uuid unseen.
        Assert.That((await registry.JoinAsync(new JoinCommand(channel, null, ParticipantRole.Recipient), A)).Error.Code, Is.EqualTo(RelayErrorCode.NoChannel));
        Assert.That((await registry.ExecuteAsync(new ChannelCommand(channel, sender.Uuid, ChannelAction.Read), A)).Error.Code, Is.EqualTo(RelayErrorCode.BadUuid));
        Assert.That((await registry.JoinAsync(new JoinCommand(channel, null, ParticipantRole.Sender), A)).Error.Code, Is.EqualTo(RelayErrorCode.Occupied));
        Assert.That((await registry.GetAsync(channel))!.Rev, Is.EqualTo(1), "nothing changed");
        Assert.That((await registry.ExecuteAsync(new ChannelCommand(channel, sender.Uuid, ChannelAction.Read), B)).IsSuccess, "other addresses are not affected");

        _time.Advance(TimeSpan.FromSeconds(20)); // 3 per minute: one token every 20 s
        Assert.That((await registry.JoinAsync(new JoinCommand(channel, null, ParticipantRole.Recipient), A)).IsSuccess);
    }

    [Test]
    public async Task Attach_BeyondMaxWaitingConnectionsPerAddress_CapacityForThatAddressOnly()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxWaitingConnectionsPerAddress = 2 });
        registry.SetPorts([7001, 7002, 7003]);
        var first = await ConfirmedAsync(registry, A, B);
        var second = await ConfirmedAsync(registry, C, B);

        Assert.That((await registry.AttachAsync(first.Channel, first.Sender, A, 0, new FakeLink())).IsSuccess);
        Assert.That((await registry.AttachAsync(first.Channel, first.Sender, A, 1, new FakeLink())).IsSuccess);
        Assert.That((await registry.AttachAsync(first.Channel, first.Sender, A, 2, new FakeLink())).Error.Code, Is.EqualTo(RelayErrorCode.Capacity));
        Assert.That(registry.WaitingOf(A), Is.EqualTo(2));
        Assert.That((await registry.AttachAsync(second.Channel, second.Sender, C, 2, new FakeLink())).IsSuccess, "another address may still wait");
        Assert.That((await registry.AttachAsync(first.Channel, first.Recipient, B, 0, new FakeLink())).Value!.Peer, Is.Not.Null, "pairing frees A's waiting slot");
        Assert.That(registry.WaitingOf(A), Is.EqualTo(1));
        Assert.That((await registry.AttachAsync(first.Channel, first.Sender, A, 2, new FakeLink())).IsSuccess);
    }

    private static async Task<(string Channel, string Sender, string Recipient)> ConfirmedAsync(ChannelRegistry registry, IPAddress sender, IPAddress recipient)
    {
        var s = (await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), sender)).Value!;
        var channel = s.State.Channel;
        var r = (await registry.JoinAsync(new JoinCommand(channel, null, ParticipantRole.Recipient), recipient)).Value!;
        Assert.That((await registry.ExecuteAsync(new ChannelCommand(channel, s.Uuid, ChannelAction.SetX, null, "eA=="), sender)).IsSuccess);
        Assert.That((await registry.ExecuteAsync(new ChannelCommand(channel, r.Uuid, ChannelAction.SetY, null, "eQ==", "aA=="), recipient)).IsSuccess);
        Assert.That((await registry.ExecuteAsync(new ChannelCommand(channel, s.Uuid, ChannelAction.SetHK, null, "aw=="), sender)).IsSuccess);
        return (channel, s.Uuid, r.Uuid);
    }

    [Test]
    public async Task Execute_ThirdAddress_IpLimitAndRefusalsRecordNoAddress()
    {
        var sender = (await _registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), A)).Value!;
        var channel = sender.State.Channel;

        // A refused request from B must not take B's place in the address list ...
        Assert.That(await RefusalAsync(new ChannelCommand(channel, "wrong", ChannelAction.Read), B), Is.EqualTo(RelayErrorCode.BadUuid));

        // ... so C can still join as the second address, and then B is the third.
        var recipient = (await _registry.JoinAsync(new JoinCommand(channel, null, ParticipantRole.Recipient), C)).Value!;
        Assert.That(await RefusalAsync(new ChannelCommand(channel, recipient.Uuid, ChannelAction.Read), B), Is.EqualTo(RelayErrorCode.IpLimit));
        Assert.That((await _registry.ExecuteAsync(new ChannelCommand(channel, recipient.Uuid, ChannelAction.Read), A)).IsSuccess, Is.True, "either known address may act");
    }

    [Test]
    public async Task WaitAsync_ChangeArrives_ReturnsNewState()
    {
        var (channel, sender, _) = await OpenAsync();
        var since = await RevAsync(channel);
        var wait = _registry.WaitAsync((await _registry.GetAsync(channel))!, since, TimeSpan.FromSeconds(30), CancellationToken.None).AsTask();
        Assert.That(wait.IsCompleted, Is.False);

        await _registry.ExecuteAsync(new ChannelCommand(channel, sender, ChannelAction.SetX, null, "eA=="), A);

        var state = await wait;
        Assert.That(state.Rev, Is.EqualTo(since + 1));
        Assert.That(state.X, Is.EqualTo("eA=="));
    }

    [Test]
    public async Task WaitAsync_NoChange_ReturnsCurrentStateWhenTimeRunsOut()
    {
        var (channel, _, _) = await OpenAsync();
        var since = await RevAsync(channel);
        var wait = _registry.WaitAsync((await _registry.GetAsync(channel))!, since, TimeSpan.FromSeconds(30), CancellationToken.None).AsTask();

        _time.Advance(TimeSpan.FromSeconds(29));
        Assert.That(wait.IsCompleted, Is.False);
        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.That((await wait).Rev, Is.EqualTo(since));
    }

    [Test]
    public async Task WaitAsync_AlreadyNewer_ReturnsAtOnce()
    {
        var (channel, _, _) = await OpenAsync();

        var state = await _registry.WaitAsync((await _registry.GetAsync(channel))!, 0, TimeSpan.FromSeconds(30), CancellationToken.None);

        Assert.That(state.Rev, Is.EqualTo(2));
    }

    [Test]
    public async Task Expiry_ChannelNotClosedInTime_ClosedThenForgotten()
    {
        var (channel, sender, _) = await OpenAsync(confirm: true);
        var link = new FakeLink();
        Assert.That((await _registry.AttachAsync(channel, sender, A, 0, link)).IsSuccess);
        Assert.That(_registry.WaitingConnections, Is.EqualTo(1));

        _time.Advance(TimeSpan.FromHours(3) - TimeSpan.FromSeconds(1));
        Assert.That((await _registry.GetAsync(channel))!.Closed, Is.False);
        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.That(link.Aborted, Is.True);
        Assert.That(_registry.WaitingConnections, Is.Zero);
        Assert.That((await _registry.ExecuteAsync(new ChannelCommand(channel, sender, ChannelAction.Read), A)).Error.Code, Is.EqualTo(RelayErrorCode.Closed));

        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.That((await _registry.ExecuteAsync(new ChannelCommand(channel, sender, ChannelAction.Read), A)).Error.Code, Is.EqualTo(RelayErrorCode.BadUuid), "forgotten: like any unknown channel");
        Assert.That(_registry.Count, Is.Zero);
    }

    [Test]
    public async Task Attach_BeforeKeyConfirmation_NotReady()
    {
        var (channel, sender, _) = await OpenAsync(confirm: false);

        Assert.That((await _registry.AttachAsync(channel, sender, A, 0, new FakeLink())).Error.Code, Is.EqualTo(RelayErrorCode.NotReady));
        Assert.That(_registry.WaitingConnections, Is.Zero);
    }

    [Test]
    public async Task Attach_BothOnEveryPort_PairsAndStaples()
    {
        var (channel, sender, recipient) = await OpenAsync(confirm: true);
        var rev = await RevAsync(channel);
        var s1 = new FakeLink();

        var first = (await _registry.AttachAsync(channel, sender, A, 0, s1)).Value!;
        Assert.That(first.Peer, Is.Null);
        Assert.That((await _registry.AttachAsync(channel, sender, A, 0, new FakeLink())).Error.Code, Is.EqualTo(RelayErrorCode.Duplicate));
        Assert.That((await _registry.AttachAsync(channel, "nope", A, 0, new FakeLink())).Error.Code, Is.EqualTo(RelayErrorCode.BadUuid));
        Assert.That((await _registry.AttachAsync(channel, recipient, C, 0, new FakeLink())).Error.Code, Is.EqualTo(RelayErrorCode.IpLimit));
        Assert.That((await _registry.AttachAsync(channel, recipient, B, 5, new FakeLink())).Error.Code, Is.EqualTo(RelayErrorCode.BadRequest));

        var second = (await _registry.AttachAsync(channel, recipient, B, 0, new FakeLink())).Value!;
        Assert.That(second.Peer, Is.SameAs(s1));
        Assert.That(second.Role, Is.EqualTo(ParticipantRole.Recipient));
        Assert.That((await _registry.GetAsync(channel))!.Stapled, Is.False, "one of two ports");

        await _registry.AttachAsync(channel, recipient, B, 1, new FakeLink());
        await _registry.AttachAsync(channel, sender, A, 1, new FakeLink());
        var state = (await _registry.GetAsync(channel))!;
        Assert.That(state.Stapled, Is.True);
        Assert.That(state.Rev, Is.EqualTo(rev + 1));
        Assert.That(_registry.WaitingConnections, Is.Zero);
    }

    [Test]
    public async Task EndConnections_AbortsAllAndRefusesLaterHellos()
    {
        var (channel, sender, recipient) = await OpenAsync(confirm: true);
        var links = new[] { new FakeLink(), new FakeLink(), new FakeLink() };
        var attached = (await _registry.AttachAsync(channel, sender, A, 0, links[0])).Value!;
        await _registry.AttachAsync(channel, recipient, B, 0, links[1]);
        await _registry.AttachAsync(channel, sender, A, 1, links[2]);

        await _registry.EndConnectionsAsync(attached.Channel, "test");

        Assert.That(links.All(l => l.Aborted), Is.True);
        Assert.That(_registry.WaitingConnections, Is.Zero);
        Assert.That((await _registry.AttachAsync(channel, recipient, B, 1, new FakeLink())).Error.Code, Is.EqualTo(RelayErrorCode.Closed));
        Assert.That((await _registry.GetAsync(channel))!.Closed, Is.False, "ending the connections does not close the channel");
    }

    [Test]
    public async Task PairFinished_ReconnectionOff_OthersKeptUntilEveryPairFinishedThenEndsAtOnce()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxReattachments = 0 });
        var (channel, sender, recipient) = await ConfirmedAsync(registry, A, B);
        var links = new[] { new FakeLink(), new FakeLink(), new FakeLink(), new FakeLink() };
        await registry.AttachAsync(channel, sender, A, 0, links[0]);
        var lane0 = (await registry.AttachAsync(channel, recipient, B, 0, links[1])).Value!;
        await registry.AttachAsync(channel, sender, A, 1, links[2]);

        await registry.PairFinishedAsync(lane0);
        Assert.That(links[2].Aborted, Is.False, "not stapled yet: a finished pair cuts nothing");
        Assert.That((await registry.AttachAsync(channel, sender, A, 0, new FakeLink())).Error.Code, Is.EqualTo(RelayErrorCode.Duplicate), "a lane pairs once");

        var lane1 = (await registry.AttachAsync(channel, recipient, B, 1, links[3])).Value!;
        Assert.That((await registry.GetAsync(channel))!.Stapled, Is.True);
        await registry.PairFinishedAsync(lane1);

        Assert.That(links.All(l => l.Aborted), Is.True, "every pair finished: the TCP session ends");
        Assert.That((await registry.AttachAsync(channel, recipient, B, 0, new FakeLink())).Error.Code, Is.EqualTo(RelayErrorCode.Closed));
    }

    [Test]
    public async Task PairFinished_EveryPairFinished_StapledStaysTrueAndLegsEndOnlyOnceTheReconnectWindowPassed()
    {
        var (channel, sender, recipient) = await OpenAsync(confirm: true);
        var lanes = await PipeEveryLaneAsync(_registry, channel, sender, recipient);
        var rev = await RevAsync(channel);
        var id = lanes[0].Channel.Id;

        await _registry.PairFinishedAsync(lanes[0]);
        _time.Advance(TimeSpan.FromSeconds(30));
        await _registry.PairFinishedAsync(lanes[1]);

        Assert.That(_registry.InspectLegs(id), Is.EqualTo((false, 2)), "each finished lane may pair again for a while");
        Assert.That((await _registry.GetAsync(channel))!.Stapled, Is.True, "a clean end is not a break");
        Assert.That(await RevAsync(channel), Is.EqualTo(rev));

        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.That(_registry.InspectLegs(id), Is.EqualTo((false, 1)), "lane 0's window passed: sealed; lane 1's runs on");
        Assert.That((await _registry.AttachAsync(channel, sender, A, 0, new FakeLink())).Error.Code, Is.EqualTo(RelayErrorCode.Closed));

        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.That(_registry.InspectLegs(id).Ended, Is.True, "every pair finished and none came back: the session ends");
        Assert.That((await _registry.AttachAsync(channel, recipient, B, 1, new FakeLink())).Error.Code, Is.EqualTo(RelayErrorCode.Closed));
        var state = (await _registry.GetAsync(channel))!;
        Assert.That((state.Closed, state.Stapled, state.Rev), Is.EqualTo((false, true, rev)), "the channel itself stays as it was");
    }

    [Test]
    public async Task Attach_AgainOnALaneNeverPairedHere_AReattachmentBothLegsToldToGreetAndItsWindowRuns()
    {
        // The lane's first pair was piped by a node that stopped: this one never saw it. The re-dialed leg says so.
        var (channel, sender, recipient) = await OpenAsync(confirm: true);
        var rev = await RevAsync(channel);

        var redialedLink = new FakeLink();
        var redialed = (await _registry.AttachAsync(channel, recipient, B, 0, redialedLink, again: true)).Value!;

        Assert.That((redialed.Peer, redialed.Generation), Is.EqualTo(((IStapleLink?)null, 2)), "past its first pair: answered 'ok again'");
        var state = (await _registry.GetAsync(channel))!;
        Assert.That((state.Stapled, state.Reconnecting, state.Rev), Is.EqualTo((false, true, rev + 1)));
        var first = (await _registry.AttachAsync(channel, sender, A, 0, new FakeLink())).Value!;
        Assert.That((first.Peer, first.Generation), Is.EqualTo(((IStapleLink?)redialedLink, 2)), "the peer's first leg pairs with it and is told to greet too");
        Assert.That((await _registry.GetAsync(channel))!.Reconnecting, Is.False);

        // Lane 1: a re-dialed leg nobody joins. The lane's window runs from its attach, and resets the channel.
        await _registry.AttachAsync(channel, recipient, B, 1, new FakeLink(), again: true);
        _time.Advance(TimeSpan.FromSeconds(61));
        await _registry.BackgroundWork;
        Assert.That((await _registry.GetAsync(channel))!.Closed, Is.True, "unpaired past its window, as after any break");
    }

    [Test]
    public async Task Attach_AgainWhileAPlainFirstLegWaits_TheWaitingLegIsCutAndTheNewPairGreets()
    {
        // The sender's first leg waits here, told plain "ok"; the recipient's leg of a pair piped elsewhere comes back.
        // The two would not understand each other (one greets, one does not): the waiting leg is cut, its client dials
        // again (saying so), and that pair greets on both sides.
        var (channel, sender, recipient) = await OpenAsync(confirm: true);
        var waiting = new FakeLink();
        Assert.That((await _registry.AttachAsync(channel, sender, A, 0, waiting)).Value!.Generation, Is.EqualTo(1));

        var redialedLink = new FakeLink();
        var redialed = (await _registry.AttachAsync(channel, recipient, B, 0, redialedLink, again: true)).Value!;

        Assert.That(waiting.Aborted, Is.True, "the plain first leg is cut");
        Assert.That((redialed.Peer, redialed.Generation), Is.EqualTo(((IStapleLink?)null, 2)), "and the re-dialed one waits in its place");
        Assert.That(_registry.WaitingConnections, Is.EqualTo(1));
        var again = (await _registry.AttachAsync(channel, sender, A, 0, new FakeLink(), again: true)).Value!;
        Assert.That((again.Peer, again.Generation), Is.EqualTo(((IStapleLink?)redialedLink, 2)));
        Assert.That(_registry.WaitingConnections, Is.Zero);

        // Without the word, nothing changes: a plain first leg pairs with a plain first leg as ever.
        await _registry.AttachAsync(channel, sender, A, 1, new FakeLink());
        var plain = (await _registry.AttachAsync(channel, recipient, B, 1, new FakeLink())).Value!;
        Assert.That((plain.Peer is not null, plain.Generation), Is.EqualTo((true, 1)));
    }

    [Test]
    public async Task Attach_OnANodeThatDidNotCreateTheChannel_ThatNodeExpiresItForgetsItAndLetsGoOfItsLegs()
    {
        // Two nodes on one store: the creator stops (its timers with it), the other took the channel's legs over.
        var store = new InMemoryChannelStore();
        var options = new CrocRelayOptions();
        string channel, sender;
        using (var creator = NewRegistry(options, store))
        {
            (channel, sender, _) = await ConfirmedAsync(creator, A, B);
        }

        using var taker = NewRegistry(options, store);
        var waiting = new FakeLink();
        var attached = (await taker.AttachAsync(channel, sender, A, 0, waiting)).Value!;

        _time.Advance(options.ChannelExpiry + TimeSpan.FromSeconds(1));
        await taker.BackgroundWork;
        Assert.That((await taker.GetAsync(channel))!.Closed, Is.True, "expired on the node that holds its legs");
        Assert.That(waiting.Aborted, Is.True);

        _time.Advance(options.ClosedRetention + TimeSpan.FromSeconds(1));
        await taker.BackgroundWork;
        Assert.That(await taker.GetAsync(channel), Is.Null, "then forgotten");
        Assert.That(taker.InspectLegs(attached.Channel.Id), Is.EqualTo((false, 0)), "and nothing of it is held any more");
    }

    [Test]
    public async Task Detach_ReattachedLegOnAFinishedLaneLeavesUnpaired_NoLongerReconnectingAndTheLaneSealsLater()
    {
        var (channel, sender, recipient) = await OpenAsync(confirm: true);
        var lanes = await PipeEveryLaneAsync(_registry, channel, sender, recipient);
        await _registry.PairFinishedAsync(lanes[0]);
        var link = new FakeLink();
        var redial = (await _registry.AttachAsync(channel, recipient, B, 0, link)).Value!;
        var rev = await RevAsync(channel);
        Assert.That((await _registry.GetAsync(channel))!.Reconnecting, Is.True, "a re-attached leg waits");

        Assert.That(_registry.Detach(redial, link), Is.True);
        await _registry.BackgroundWork;

        var state = (await _registry.GetAsync(channel))!;
        Assert.That((state.Stapled, state.Reconnecting, state.Rev), Is.EqualTo((true, false, rev + 1)), "the lane is as it was: finished cleanly");
        _time.Advance(TimeSpan.FromSeconds(61));
        await _registry.BackgroundWork;
        Assert.That((await _registry.GetAsync(channel))!.Closed, Is.False, "its window seals it; a clean end never resets the channel");
    }

    [Test]
    public async Task Attach_AgainDisplacingAtTheWaitingLimit_TakesTheDisplacedLegsSlot()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxWaitingConnections = 1 });
        var (channel, sender, recipient) = await ConfirmedAsync(registry, A, B);
        var waiting = new FakeLink();
        await registry.AttachAsync(channel, sender, A, 0, waiting);
        Assert.That(registry.WaitingConnections, Is.EqualTo(1));

        var redialed = await registry.AttachAsync(channel, recipient, B, 0, new FakeLink(), again: true);

        Assert.That((redialed.IsSuccess, waiting.Aborted, registry.WaitingConnections), Is.EqualTo((true, true, 1)));
    }

    [Test]
    public async Task Attach_FinishedLaneWithinWindow_NewPairAndStapledFalseWhileItsFirstLegWaits()
    {
        var (channel, sender, recipient) = await OpenAsync(confirm: true);
        var lanes = await PipeEveryLaneAsync(_registry, channel, sender, recipient);
        await _registry.PairFinishedAsync(lanes[0]);
        var rev = await RevAsync(channel);

        var first = (await _registry.AttachAsync(channel, recipient, B, 0, new FakeLink())).Value!;
        Assert.That(first.Peer, Is.Null);
        Assert.That(first.Generation, Is.EqualTo(2));
        var state = (await _registry.GetAsync(channel))!;
        Assert.That((state.Stapled, state.Reconnecting, state.Rev), Is.EqualTo((false, true, rev + 1)), "a re-attached leg waits: not every lane is piped");
        Assert.That(_registry.WaitingConnections, Is.EqualTo(1));

        var second = (await _registry.AttachAsync(channel, sender, A, 0, new FakeLink())).Value!;
        Assert.That(second.Peer, Is.Not.Null);
        state = (await _registry.GetAsync(channel))!;
        Assert.That((state.Stapled, state.Reconnecting, state.Rev), Is.EqualTo((true, false, rev + 2)));
    }

    [Test]
    public async Task PairBroken_ReconnectionOn_PairCutOtherLanesKeptStapledFalseUntilBothReattach()
    {
        var (channel, sender, recipient) = await OpenAsync(confirm: true);
        var links = new[] { new FakeLink(), new FakeLink(), new FakeLink(), new FakeLink() };
        var lanes = await PipeEveryLaneAsync(_registry, channel, sender, recipient, links);
        var rev = await RevAsync(channel);

        await _registry.PairBrokenAsync(lanes[0], "test");

        Assert.That(links.Select(l => l.Aborted), Is.EqualTo(new[] { true, true, false, false }), "the broken pair's legs only");
        var state = (await _registry.GetAsync(channel))!;
        Assert.That((state.Stapled, state.Reconnecting, state.Closed, state.Rev), Is.EqualTo((false, true, false, rev + 1)));
        await _registry.PairBrokenAsync(lanes[0], "test again");
        Assert.That(await RevAsync(channel), Is.EqualTo(rev + 1), "a pair already broken changes nothing");

        var newSender = new FakeLink();
        Assert.That((await _registry.AttachAsync(channel, sender, A, 0, newSender)).Value!.Peer, Is.Null);
        Assert.That((await _registry.GetAsync(channel))!.Stapled, Is.False);
        var r = (await _registry.AttachAsync(channel, recipient, B, 0, new FakeLink())).Value!;
        Assert.That(r.Peer, Is.SameAs(newSender), "the new legs pair afresh");
        Assert.That(r.Generation, Is.EqualTo(2));
        state = (await _registry.GetAsync(channel))!;
        Assert.That((state.Stapled, state.Reconnecting, state.Rev), Is.EqualTo((true, false, rev + 2)));

        await _registry.PairBrokenAsync(lanes[0], "the first pair, long gone");
        Assert.That((await _registry.GetAsync(channel))!.Stapled, Is.True, "a report about an earlier pair of the lane is ignored");
        _time.Advance(TimeSpan.FromMinutes(2));
        Assert.That((await _registry.GetAsync(channel))!.Closed, Is.False, "re-paired in time: the window does nothing");
    }

    [Test]
    public async Task PairBroken_BeforeEveryLaneWasPiped_ReconnectingThoughNeverStapled()
    {
        // Lane 0 pairs and breaks while lane 1's legs have not both arrived: "stapled" was never true, yet both
        // participants' legs on lane 0 were cut and must be dialed again. "reconnecting" says so.
        var (channel, sender, recipient) = await OpenAsync(confirm: true);
        await _registry.AttachAsync(channel, sender, A, 0, new FakeLink());
        var lane0 = (await _registry.AttachAsync(channel, recipient, B, 0, new FakeLink())).Value!;
        await _registry.AttachAsync(channel, sender, A, 1, new FakeLink());
        var rev = await RevAsync(channel);

        await _registry.PairBrokenAsync(lane0, "test");

        var state = (await _registry.GetAsync(channel))!;
        Assert.That((state.Stapled, state.Reconnecting, state.Rev), Is.EqualTo((false, true, rev + 1)), "a change participants can see");
        await _registry.AttachAsync(channel, sender, A, 0, new FakeLink());
        await _registry.AttachAsync(channel, recipient, B, 0, new FakeLink());
        state = (await _registry.GetAsync(channel))!;
        Assert.That((state.Stapled, state.Reconnecting, state.Rev), Is.EqualTo((false, false, rev + 2)), "lane 0 piped again; lane 1 still waits for its first pair");
        await _registry.AttachAsync(channel, recipient, B, 1, new FakeLink());
        state = (await _registry.GetAsync(channel))!;
        Assert.That((state.Stapled, state.Reconnecting, state.Rev), Is.EqualTo((true, false, rev + 3)));
    }

    [Test]
    public async Task PairBroken_ReconnectionOff_EveryConnectionOfTheChannelEnds()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxReattachments = 0 });
        var (channel, sender, recipient) = await ConfirmedAsync(registry, A, B);
        var links = new[] { new FakeLink(), new FakeLink(), new FakeLink(), new FakeLink() };
        var lanes = await PipeEveryLaneAsync(registry, channel, sender, recipient, links);

        await registry.PairBrokenAsync(lanes[1], "test");

        Assert.That(links.All(l => l.Aborted), Is.True);
        Assert.That((await registry.AttachAsync(channel, sender, A, 1, new FakeLink())).Error.Code, Is.EqualTo(RelayErrorCode.Closed));
        var state = (await registry.GetAsync(channel))!;
        Assert.That((state.Stapled, state.Closed), Is.EqualTo((true, false)), "as before reconnection: the channel stays, its legs end");
    }

    [Test]
    public async Task PairBroken_NoPairAgainWithinTheWindow_ChannelResetItsLegsCutAndLongPollsWake()
    {
        var (channel, sender, recipient) = await OpenAsync(confirm: true);
        var links = new[] { new FakeLink(), new FakeLink(), new FakeLink(), new FakeLink() };
        var lanes = await PipeEveryLaneAsync(_registry, channel, sender, recipient, links);
        await _registry.PairBrokenAsync(lanes[0], "test");
        var waiting = new FakeLink();
        Assert.That((await _registry.AttachAsync(channel, sender, A, 0, waiting)).IsSuccess);
        var observed = (await _registry.GetAsync(channel))!;
        var poll = _registry.WaitAsync(observed, observed.Rev, TimeSpan.FromMinutes(5), CancellationToken.None).AsTask();

        _time.Advance(TimeSpan.FromSeconds(60) - TimeSpan.FromTicks(1));
        Assert.That(poll.IsCompleted, Is.False);
        _time.Advance(TimeSpan.FromTicks(1));

        var woke = await poll.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That((woke.Closed, woke.Rev), Is.EqualTo((true, observed.Rev + 1)), "the reset closes the channel and wakes long-polls");
        Assert.That(links[2].Aborted && links[3].Aborted && waiting.Aborted, Is.True, "every leg of the channel is cut");
        Assert.That(_registry.WaitingConnections, Is.Zero);
        Assert.That((await _registry.AttachAsync(channel, recipient, B, 0, new FakeLink())).Error.Code, Is.EqualTo(RelayErrorCode.Closed));
    }

    [Test]
    public async Task Attach_PastMaxReattachments_ReconnectLimitAndAReattachmentThatNeverPairedIsGivenBack()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxReattachments = 2 });
        var (channel, sender, recipient) = await ConfirmedAsync(registry, A, B);
        var lanes = await PipeEveryLaneAsync(registry, channel, sender, recipient);

        // A re-attachment whose only leg leaves before it pairs costs nothing.
        await registry.PairBrokenAsync(lanes[0], "test");
        var gone = new FakeLink();
        var left = (await registry.AttachAsync(channel, sender, A, 0, gone)).Value!;
        Assert.That(registry.Detach(left, gone), Is.True);

        StapleAttachment lane0 = null!;
        for (var i = 0; i < 2; i++)
        {
            Assert.That((await registry.AttachAsync(channel, sender, A, 0, new FakeLink())).IsSuccess, $"re-attachment {i + 1}");
            lane0 = (await registry.AttachAsync(channel, recipient, B, 0, new FakeLink())).Value!;
            await registry.PairBrokenAsync(lane0, "test");
        }

        var refused = await registry.AttachAsync(channel, recipient, B, 0, new FakeLink());
        Assert.That((refused.Error.Code, refused.Error.Code.ToWire()), Is.EqualTo((RelayErrorCode.ReconnectLimit, "reconnect_limit")));
        Assert.That((await registry.AttachAsync(channel, sender, A, 1, new FakeLink())).Error.Code, Is.EqualTo(RelayErrorCode.Duplicate), "the budget is the channel's, lane 1 still holds its pair");
        Assert.That(registry.WaitingConnections, Is.Zero, "a refused hello takes no waiting slot");
    }

    /// <summary>Pipes both lanes of a confirmed channel; returns each lane's second attachment (the one that runs its pipe).</summary>
    private static async Task<StapleAttachment[]> PipeEveryLaneAsync(ChannelRegistry registry, string channel, string sender, string recipient, FakeLink[]? links = null)
    {
        links ??= [new FakeLink(), new FakeLink(), new FakeLink(), new FakeLink()];
        var result = new StapleAttachment[2];
        for (var lane = 0; lane < 2; lane++)
        {
            Assert.That((await registry.AttachAsync(channel, sender, A, lane, links[2 * lane])).IsSuccess);
            result[lane] = (await registry.AttachAsync(channel, recipient, B, lane, links[(2 * lane) + 1])).Value!;
        }

        Assert.That((await registry.GetAsync(channel))!.Stapled, Is.True);
        return result;
    }

    [Test]
    public async Task Attach_BeyondMaxWaitingConnections_Capacity()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxWaitingConnections = 1 });
        var sender = (await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), A)).Value!;
        var channel = sender.State.Channel;
        var recipient = (await registry.JoinAsync(new JoinCommand(channel, null, ParticipantRole.Recipient), B)).Value!;
        await registry.ExecuteAsync(new ChannelCommand(channel, sender.Uuid, ChannelAction.SetX, null, "eA=="), A);
        await registry.ExecuteAsync(new ChannelCommand(channel, recipient.Uuid, ChannelAction.SetY, null, "eQ==", "aA=="), B);
        await registry.ExecuteAsync(new ChannelCommand(channel, sender.Uuid, ChannelAction.SetHK, null, "aw=="), A);

        Assert.That((await registry.AttachAsync(channel, sender.Uuid, A, 0, new FakeLink())).IsSuccess);
        Assert.That((await registry.AttachAsync(channel, sender.Uuid, A, 1, new FakeLink())).Error.Code, Is.EqualTo(RelayErrorCode.Capacity));
        Assert.That((await registry.AttachAsync(channel, recipient.Uuid, B, 0, new FakeLink())).IsSuccess, Is.True, "completing a pair needs no waiting slot");
    }

    [Test]
    public async Task Join_BeyondMaxChannelsPerAddress_CapacityUntilOneCloses()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxChannelsPerAddress = 2 });
        var first = (await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), A)).Value!;
        Assert.That((await registry.JoinAsync(new JoinCommand("named", null, ParticipantRole.Sender), A)).IsSuccess);

        var refused = (await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), A)).Error;
        Assert.That(refused.Code, Is.EqualTo(RelayErrorCode.Capacity));
        Assert.That(registry.Count, Is.EqualTo(2), "a refused join stores nothing");
        Assert.That((await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), B)).IsSuccess, "other addresses are not affected");

        Assert.That((await registry.ExecuteAsync(new ChannelCommand(first.State.Channel, first.Uuid, ChannelAction.Close), A)).IsSuccess);
        Assert.That(registry.ChannelsOf(A), Is.EqualTo(2), "a closed channel counts while it is remembered");
        Assert.That((await registry.GetAsync(first.State.Channel))!.Closed, Is.True);

        Assert.That((await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), A)).IsSuccess, "the address recycles its own closed channel");
        Assert.That(await registry.GetAsync(first.State.Channel), Is.Null, "forgotten early to make room");
        Assert.That(registry.ChannelsOf(A), Is.EqualTo(2));
        Assert.That((await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), A)).Error.Code, Is.EqualTo(RelayErrorCode.Capacity), "two open channels: nothing to recycle");

        _time.Advance(new CrocRelayOptions().ClosedRetention);
        Assert.That(registry.ChannelsOf(A), Is.EqualTo(2), "open channels are not forgotten");
    }

    [Test]
    public async Task Join_TakenName_CountsNothingForTheAddress()
    {
        using var registry = NewRegistry(new CrocRelayOptions { MaxChannelsPerAddress = 1 });
        Assert.That((await registry.JoinAsync(new JoinCommand("taken", null, ParticipantRole.Sender), B)).IsSuccess);
        Assert.That((await registry.JoinAsync(new JoinCommand("taken", null, ParticipantRole.Sender), A)).Error.Code, Is.EqualTo(RelayErrorCode.Occupied));

        Assert.That(registry.ChannelsOf(A), Is.Zero);
        Assert.That((await registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), A)).IsSuccess);
    }

    [Test]
    public async Task Expiry_KeyConfirmationIncomplete_ExpiresAfterHandshakeExpiryAndFreesTheAddressOnceForgotten()
    {
        var (channel, sender, _) = await OpenAsync();
        Assert.That(_registry.ChannelsOf(A), Is.EqualTo(1));

        _time.Advance(TimeSpan.FromMinutes(10) - TimeSpan.FromSeconds(1));
        Assert.That((await _registry.GetAsync(channel))!.Closed, Is.False);
        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.That((await _registry.GetAsync(channel))!.Closed, Is.True);
        Assert.That((await _registry.ExecuteAsync(new ChannelCommand(channel, sender, ChannelAction.Read), A)).Error.Code, Is.EqualTo(RelayErrorCode.Closed));
        Assert.That(_registry.ChannelsOf(A), Is.EqualTo(1), "expired but remembered: still counts");
        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.That(_registry.ChannelsOf(A), Is.Zero);
    }

    [Test]
    public async Task Expiry_KeyConfirmedLate_ChannelExpiryCountedFromCreation()
    {
        var (channel, sender, recipient) = await OpenAsync();
        _time.Advance(TimeSpan.FromMinutes(9));
        Assert.That((await _registry.ExecuteAsync(new ChannelCommand(channel, sender, ChannelAction.SetX, null, "eA=="), A)).IsSuccess);
        Assert.That((await _registry.ExecuteAsync(new ChannelCommand(channel, recipient, ChannelAction.SetY, null, "eQ==", "aA=="), B)).IsSuccess);
        Assert.That((await _registry.ExecuteAsync(new ChannelCommand(channel, sender, ChannelAction.SetHK, null, "aw=="), A)).IsSuccess);

        _time.Advance(TimeSpan.FromHours(3) - TimeSpan.FromMinutes(9) - TimeSpan.FromSeconds(1));
        Assert.That((await _registry.GetAsync(channel))!.Closed, Is.False, "h_k lifts the handshake expiry");
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.That((await _registry.GetAsync(channel))!.Closed, Is.True);
    }

    [Test]
    public async Task Detach_WaitingConnection_FreesSlotAndReservationSoTheParticipantCanReconnect()
    {
        var (channel, sender, recipient) = await OpenAsync(confirm: true);
        var gone = new FakeLink();
        var waiting = (await _registry.AttachAsync(channel, sender, A, 0, gone)).Value!;
        Assert.That((await _registry.AttachAsync(channel, sender, A, 0, new FakeLink())).Error.Code, Is.EqualTo(RelayErrorCode.Duplicate));

        Assert.That(_registry.Detach(waiting, gone), Is.True);
        Assert.That(_registry.WaitingConnections, Is.Zero);
        Assert.That(_registry.Detach(waiting, gone), Is.False, "only once");

        var again = new FakeLink();
        var rewaiting = (await _registry.AttachAsync(channel, sender, A, 0, again)).Value!;
        Assert.That(_registry.WaitingConnections, Is.EqualTo(1));
        Assert.That((await _registry.AttachAsync(channel, recipient, B, 0, new FakeLink())).Value!.Peer, Is.SameAs(again));
        Assert.That(_registry.Detach(rewaiting, again), Is.False, "a piped connection is not detached");
        Assert.That(_registry.WaitingConnections, Is.Zero);
    }

    [TestCase(false)]
    [TestCase(true)]
    public async Task Attach_ChannelClosesBetweenCheckAndRecord_RefusedAndTheLaneUndone(bool secondLeg)
    {
        var store = new RacingStore();
        using var registry = new ChannelRegistry(Options.Create(new CrocRelayOptions()), new RelayClock(_time), _metrics, store);
        registry.SetPorts([7001, 7002]);
        var (channel, sender, recipient) = await ConfirmedAsync(registry, A, B);
        var waiting = new FakeLink();
        if (secondLeg)
        {
            Assert.That((await registry.AttachAsync(channel, sender, A, 0, waiting)).IsSuccess);
        }

        // The channel closes after the attach's checks passed, before it records the address.
        var id = (await store.Inner.GetAsync(channel))!.Id;
        store.BeforeNextUpdate = () => store.Inner.UpdateAsync(channel, id, s => ChannelMachine.Close(s));
        var outcome = await registry.AttachAsync(channel, secondLeg ? recipient : sender, secondLeg ? B : A, 0, new FakeLink());

        Assert.That(outcome.Error.Code, Is.EqualTo(RelayErrorCode.Closed));
        Assert.That(registry.WaitingConnections, Is.Zero, "no waiting slot is left taken");
        Assert.That(waiting.Aborted, Is.EqualTo(secondLeg), "a pair completed by a refused leg is cut");
        Assert.That((await registry.AttachAsync(channel, sender, A, 1, new FakeLink())).Error.Code, Is.EqualTo(RelayErrorCode.Closed));
    }

    /// <summary>The in-memory store, with a hook that runs once before the next update (a race, on cue).</summary>
    private sealed class RacingStore : IChannelStore
    {
        public InMemoryChannelStore Inner { get; } = new();

        public Func<ValueTask<Transition?>>? BeforeNextUpdate { get; set; }

        public ValueTask<ChannelState?> GetAsync(string name, CancellationToken cancellationToken = default) => Inner.GetAsync(name, cancellationToken);

        public ValueTask<bool> TryAddAsync(ChannelState state, CancellationToken cancellationToken = default) => Inner.TryAddAsync(state, cancellationToken);

        public async ValueTask<Transition?> UpdateAsync(string name, long id, Func<ChannelState, Transition> transition, CancellationToken cancellationToken = default)
        {
            if (BeforeNextUpdate is { } hook)
            {
                BeforeNextUpdate = null;
                await hook();
            }

            return await Inner.UpdateAsync(name, id, transition, cancellationToken);
        }

        public ValueTask<ChannelState?> WaitAsync(string name, long id, long since, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken)
            => Inner.WaitAsync(name, id, since, timeout, timeProvider, cancellationToken);

        public ValueTask<bool> RemoveAsync(string name, long id, CancellationToken cancellationToken = default) => Inner.RemoveAsync(name, id, cancellationToken);

        public IAsyncEnumerable<ChannelState> AllAsync(CancellationToken cancellationToken = default) => Inner.AllAsync(cancellationToken);
    }

    private sealed class FakeLink : IStapleLink
    {
        public bool Aborted { get; private set; }

        public void Abort() => Aborted = true;
    }
}

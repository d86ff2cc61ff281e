using System.Net;
using CrocNet.Relay.Channels;
using Microsoft.Extensions.Time.Testing;

namespace CrocNet.Tests.Relay.Channels;

/// <summary>The pure state machine and the in-memory store, without a registry.</summary>
public class ChannelMachineTests
{
    private static readonly IPAddress A = IPAddress.Parse("10.0.0.1");
    private static readonly IPAddress B = IPAddress.Parse("10.0.0.2");
    private static readonly IPAddress C = IPAddress.Parse("10.0.0.3");

    private static ChannelState New(string name = "chan") => ChannelMachine.Create(7, name, "p256", "s-uuid", A, A, DateTimeOffset.UnixEpoch);

    [Test]
    public void Apply_EveryRefusal_ReturnsTheSameStateInstance()
    {
        var joined = ChannelMachine.JoinRecipient(New(), B, "r-uuid").State;
        var refusals = new[]
        {
            new ChannelCommand("chan", "wrong", ChannelAction.Read),
            new ChannelCommand("chan", "r-uuid", ChannelAction.SetX, null, "eA=="),
            new ChannelCommand("chan", "r-uuid", ChannelAction.SetY, null, "eQ==", "aA=="),
            new ChannelCommand("chan", "s-uuid", ChannelAction.SetHK, null, "aw=="),
        };

        foreach (var command in refusals)
        {
            var transition = ChannelMachine.Apply(joined, command, A);
            Assert.That(transition.Refused, Is.True, command.ToString());
            Assert.That(transition.State, Is.SameAs(joined), "a refusal yields no new state");
        }

        var third = ChannelMachine.Apply(joined, new ChannelCommand("chan", "s-uuid", ChannelAction.Read), C);
        Assert.That(third.Error!.Value.Code, Is.EqualTo(RelayErrorCode.IpLimit));
        Assert.That(third.State.Addresses, Is.EqualTo(new[] { A, B }), "not even the addresses change");
    }

    [Test]
    public void Apply_FullHandshakeThenClose_RevGrowsByOneEachAndCloseIsIdempotent()
    {
        var state = ChannelMachine.JoinRecipient(New(), B, "r-uuid").State;
        Assert.That(state.Rev, Is.EqualTo(2));
        state = ChannelMachine.Apply(state, new ChannelCommand("chan", "s-uuid", ChannelAction.SetX, "p384", "eA=="), A).State;
        state = ChannelMachine.Apply(state, new ChannelCommand("chan", "r-uuid", ChannelAction.SetY, null, "eQ==", "aA=="), B).State;
        state = ChannelMachine.Apply(state, new ChannelCommand("chan", "s-uuid", ChannelAction.SetHK, null, "aw=="), A).State;
        Assert.That((state.Rev, state.Curve, state.X, state.Y, state.HhK, state.HK), Is.EqualTo((5L, "p384", "eA==", "eQ==", "aA==", "aw==")));

        var closed = ChannelMachine.Apply(state, new ChannelCommand("chan", "r-uuid", ChannelAction.Close), B);
        Assert.That((closed.NowClosed, closed.State.Closed, closed.State.Rev), Is.EqualTo((true, true, 6L)));
        var again = ChannelMachine.Apply(closed.State, new ChannelCommand("chan", "s-uuid", ChannelAction.Close), A);
        Assert.That((again.Refused, again.NowClosed), Is.EqualTo((false, false)));
        Assert.That(again.State, Is.SameAs(closed.State));
        Assert.That(ChannelMachine.Close(closed.State).Refused, Is.True, "an expiry of a closed channel changes nothing");
    }

    [Test]
    public void Authorize_BeforeKeyConfirmation_NotReadyAndNothingRecorded()
    {
        var state = New();
        var transition = ChannelMachine.Authorize(state, "s-uuid", B);
        Assert.That(transition.Error!.Value.Code, Is.EqualTo(RelayErrorCode.NotReady));
        Assert.That(transition.State, Is.SameAs(state));
    }

    [Test]
    public void State_Participants_KeepsOnlyHashesOfTheirUuids()
    {
        var sender = ChannelNames.NewUuid();
        var recipient = ChannelNames.NewUuid();
        var state = ChannelMachine.JoinRecipient(ChannelMachine.Create(7, "chan", "p256", sender, A, A, DateTimeOffset.UnixEpoch), B, recipient).State;

        // Every string the state holds (what a shared store writes down): no uuid, not even part of one.
        var texts = typeof(ChannelState).GetProperties().Where(p => p.PropertyType == typeof(string)).Select(p => (string?)p.GetValue(state) ?? "").ToList();
        Assert.That(texts, Has.None.Contains(sender).And.None.Contains(recipient[..16]));
        Assert.That(texts, Has.Some.EqualTo(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(sender)))));
        Assert.Multiple(() =>
        {
            Assert.That(ChannelMachine.RoleOf(state, sender), Is.EqualTo(ParticipantRole.Sender));
            Assert.That(ChannelMachine.RoleOf(state, recipient), Is.EqualTo(ParticipantRole.Recipient));
            Assert.That(ChannelMachine.RoleOf(state, UuidHash.Of(sender)), Is.Null, "the hash itself is no token");
            Assert.That(ChannelMachine.RoleOf(state, sender[..^1]), Is.Null);
        });
    }

    [Test]
    public void ToString_State_LeavesOutUuidsAndValues()
    {
        var state = ChannelMachine.Apply(ChannelMachine.JoinRecipient(New(), B, "r-uuid").State, new ChannelCommand("chan", "s-uuid", ChannelAction.SetX, null, "eA=="), A).State;
        Assert.That(state.ToString(), Does.Not.Contain("uuid").And.Not.Contain("eA==").And.Contain("chan"));
    }

    [Test]
    public async Task Store_NameTakenAgain_UpdatesAndWaitsOnlyReachTheChannelTheyName()
    {
        var store = new InMemoryChannelStore();
        var first = New();
        Assert.That(await store.TryAddAsync(first), Is.True);
        Assert.That(await store.TryAddAsync(New() with { Id = 8 }), Is.False, "the name is taken");
        Assert.That(await store.RemoveAsync("chan", 8), Is.False, "another channel's id removes nothing");
        Assert.That(await store.RemoveAsync("chan", 7), Is.True);
        Assert.That(await store.TryAddAsync(New() with { Id = 8 }), Is.True);

        Assert.That(await store.UpdateAsync("chan", 7, s => ChannelMachine.Close(s)), Is.Null);
        Assert.That(await store.WaitAsync("chan", 7, 0, TimeSpan.FromSeconds(1), new FakeTimeProvider(), CancellationToken.None), Is.Null);
        Assert.That((await store.GetAsync("chan"))!.Closed, Is.False);
    }

    [Test]
    public async Task Store_WaitAsync_WokenByARevChangeNotByARecordedAddress()
    {
        var store = new InMemoryChannelStore();
        var time = new FakeTimeProvider();
        await store.TryAddAsync(New());
        var wait = store.WaitAsync("chan", 7, 1, TimeSpan.FromSeconds(30), time, CancellationToken.None).AsTask();

        await store.UpdateAsync("chan", 7, s => ChannelMachine.Apply(s, new ChannelCommand("chan", "s-uuid", ChannelAction.Read), B));
        Assert.That(wait.IsCompleted, Is.False, "a read from a new address records it without a new rev");
        await store.UpdateAsync("chan", 7, s => ChannelMachine.JoinRecipient(s, B, "r-uuid"));

        Assert.That((await wait)!.Rev, Is.EqualTo(2));
    }
}

using System.Reflection;
using System.Text.Json;
using CrocNet.Pake;
using CrocNet.Protocol;
using CrocNet.Relay;
using CrocNet.Relay.Protocol;
using ClientJson = CrocNet.Rendezvous.RelayJsonContext;
using RelayJson = CrocNet.Relay.Hosting.RelayJsonContext;

namespace CrocNet.Tests.Api;

/// <summary>
/// The wire contract, held together: the client's names (<see cref="CrocWire"/>, its DTOs) against the relay's
/// (<see cref="RelayWire"/>, its DTOs). The two packages do not reference each other, so this is where drift shows.
/// </summary>
public class ProtocolContractTests
{
    [Test]
    public void Routes_Match()
    {
        Assert.That("/" + CrocWire.JoinRoute, Is.EqualTo(RelayWire.Routes.Join));
        Assert.That("/" + CrocWire.ChannelRoute, Is.EqualTo(RelayWire.Routes.Channel));
    }

    [Test]
    public void ErrorCodes_EveryCodeTheClientActsOnIsOneTheRelaySends()
    {
        var relayCodes = Constants(typeof(RelayWire.Codes));

        Assert.That(relayCodes, Is.SupersetOf(CrocWire.Errors.All));
        Assert.That(relayCodes.All(c => CrocWire.SafeCode(c) == c), Is.True, "the client keeps every relay code it is sent");
    }

    [Test]
    public void Hello_FieldsAndAnswersMatch()
    {
        Assert.That(CrocWire.HelloChannel, Is.EqualTo(RelayWire.Hello.Channel));
        Assert.That(CrocWire.HelloUuid, Is.EqualTo(RelayWire.Hello.Uuid));
        Assert.That(CrocWire.HelloOk + "\n", Is.EqualTo(RelayWire.Hello.Ok));
        Assert.That(CrocWire.HelloOkAgain + "\n", Is.EqualTo(RelayWire.Hello.OkAgain));
        Assert.That(CrocWire.HelloErrorPrefix, Is.EqualTo(RelayWire.Hello.ErrorPrefix));

        var hello = CrocNet.Transport.TcpStapleTransport.BuildHello(new CrocNet.Transport.StapleTicket(new string('c', 64), new string('u', 128)));
        Assert.That(hello, Has.Length.LessThanOrEqualTo(RelayWire.Hello.MaxLength), "the longest hello the client sends fits the relay's limit");
        using var parsed = JsonDocument.Parse(hello.AsMemory(0, hello.Length - 1));
        Assert.That(parsed.RootElement.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { RelayWire.Hello.Channel, RelayWire.Hello.Uuid }));
    }

    [Test]
    public void Hello11_LaneAuthStapleAndUnauthorizedMatch()
    {
        Assert.That("/" + CrocWire.StapleRoute, Is.EqualTo(RelayWire.Routes.Staple));
        Assert.That(CrocWire.HelloLane, Is.EqualTo(RelayWire.Hello.Lane));
        Assert.That(CrocWire.HelloAuth, Is.EqualTo(RelayWire.Hello.Auth));
        Assert.That(CrocWire.Errors.Unauthorized, Is.EqualTo(RelayWire.Codes.Unauthorized));
        Assert.That(CrocWire.Errors.Unavailable, Is.EqualTo(RelayWire.Codes.Unavailable));
        Assert.That(CrocWire.AuthorizationScheme, Is.EqualTo(CrocNet.Relay.Net.RelayAccess.Scheme));

        var ticket = new CrocNet.Transport.StapleTicket(new string('c', 64), new string('u', 128), new string('p', 256));
        var tcp = CrocNet.Transport.TcpStapleTransport.BuildHello(ticket);
        var ws = CrocNet.Transport.WebSocketStapleTransport.BuildHello(ticket, 15);
        Assert.That(tcp, Has.Length.LessThanOrEqualTo(RelayWire.Hello.MaxLength), "the longest TCP hello, with a password, fits");
        Assert.That(ws, Has.Length.LessThanOrEqualTo(RelayWire.Hello.MaxLength));
        var relayHello = JsonSerializer.Deserialize(tcp.AsSpan(0, tcp.Length - 1), CrocNet.Relay.Staple.StapleJsonContext.Default.HelloDto)!;
        Assert.That((relayHello.Channel, relayHello.Uuid), Is.EqualTo((ticket.Channel, ticket.Uuid)));
        Assert.That(relayHello.Auth, Is.Not.EqualTo(ticket.RelayPassword), "a TCP leg never carries the password itself");
        Assert.That(new CrocNet.Relay.Net.RelayAccess(ticket.RelayPassword).AllowsLeg(relayHello.Auth, ticket.Channel, ticket.Uuid), Is.True, "the relay accepts the client's proof");
        Assert.That(new CrocNet.Relay.Net.RelayAccess(ticket.RelayPassword + "x").AllowsLeg(relayHello.Auth, ticket.Channel, ticket.Uuid), Is.False);
        var relayWsHello = JsonSerializer.Deserialize(ws, CrocNet.Relay.Staple.StapleJsonContext.Default.HelloDto)!;
        Assert.That((relayWsHello.Channel, relayWsHello.Uuid, relayWsHello.Lane, relayWsHello.Auth), Is.EqualTo((ticket.Channel, ticket.Uuid, (int?)15, (string?)null)));
    }

    [Test]
    public void HelloAgain_OnlyARedialSaysItAndTheRelayReadsIt()
    {
        Assert.That(CrocWire.HelloAgain, Is.EqualTo(RelayWire.Hello.Again));
        var first = new CrocNet.Transport.StapleTicket("abc", "u");
        var again = first with { Again = true };
        Assert.That(again.ToString(), Does.Not.Contain("u\""), "the ticket's text still hides the uuid");

        foreach (var (hello, tcp) in new[] { (CrocNet.Transport.TcpStapleTransport.BuildHello(first), true), (CrocNet.Transport.WebSocketStapleTransport.BuildHello(first, 2), false) })
        {
            var line = tcp ? hello.AsSpan(0, hello.Length - 1) : hello;
            Assert.That(System.Text.Encoding.UTF8.GetString(line), Does.Not.Contain(CrocWire.HelloAgain), "a first leg's hello is as before");
            Assert.That(CrocNet.Relay.Staple.HelloReader.Parse(line).Hello!.Again, Is.False);
        }

        foreach (var (hello, tcp) in new[] { (CrocNet.Transport.TcpStapleTransport.BuildHello(again), true), (CrocNet.Transport.WebSocketStapleTransport.BuildHello(again, 2), false) })
        {
            var line = tcp ? hello.AsSpan(0, hello.Length - 1) : hello;
            Assert.That(CrocNet.Relay.Staple.HelloReader.Parse(line).Hello!.Again, Is.True);
        }

        // Through the mesh: the forwarding node passes the word on to the owner.
        var forwarded = System.Text.Json.JsonSerializer.Serialize(
            new CrocNet.Relay.Mesh.ForwardedHello { Channel = "abc", Uuid = "u", Lane = 1, Address = "127.0.0.2", Transport = "tcp", Again = true },
            CrocNet.Relay.Mesh.MeshJsonContext.Default.ForwardedHello);
        Assert.That(CrocNet.Relay.Mesh.MeshListenerService.Parse(forwarded)!.Value.Hello.Again, Is.True);
        var plain = System.Text.Json.JsonSerializer.Serialize(
            new CrocNet.Relay.Mesh.ForwardedHello { Channel = "abc", Uuid = "u", Lane = 1, Address = "127.0.0.2", Transport = "tcp" },
            CrocNet.Relay.Mesh.MeshJsonContext.Default.ForwardedHello);
        Assert.That(plain, Does.Not.Contain("again"), "older owners read a forwarded hello as before");
        Assert.That(CrocNet.Relay.Mesh.MeshListenerService.Parse(plain)!.Value.Hello.Again, Is.False);
    }

    [Test]
    public void ReconnectLimit_ClientAndRelayNameTheSameCode()
        => Assert.That(CrocWire.Errors.ReconnectLimit, Is.EqualTo(RelayWire.Codes.ReconnectLimit).And.EqualTo("reconnect_limit"));

    [Test]
    public void Duplicate_ClientAndRelayNameTheSameCode()
        => Assert.That(CrocWire.Errors.Duplicate, Is.EqualTo(RelayWire.Codes.Duplicate).And.EqualTo("duplicate"));

    [Test]
    public void Curves_Match() => Assert.That(Spake2Suite.Names, Is.EqualTo(RelayWire.Curves.All));

    [Test]
    public void Roles_Match()
    {
        Assert.That(ParticipantRole.Sender.ToWire(), Is.EqualTo(RelayWire.Roles.Sender));
        Assert.That(ParticipantRole.Recipient.ToWire(), Is.EqualTo(RelayWire.Roles.Recipient));
    }

    [Test]
    public void LongPoll_ClientNeverAsksMoreThanADefaultRelayHolds() =>
        Assert.That(TimeSpan.FromSeconds(CrocWire.MaxWaitSeconds), Is.LessThanOrEqualTo(new CrocRelayOptions().MaxWait));

    [Test]
    public void Requests_EveryFieldTheClientWritesTheRelayReads()
    {
        var join = JsonSerializer.SerializeToUtf8Bytes(
            new CrocNet.Rendezvous.JoinRequest { Channel = "abc", Curve = "p256", Role = "sender" }, ClientJson.Default.JoinRequest);
        var channel = JsonSerializer.SerializeToUtf8Bytes(
            new CrocNet.Rendezvous.ChannelRequest { Channel = "abc", Uuid = "u", X = [1], Curve = "p256", Y = [2], HhK = [3], HK = [4], Close = true, Wait = 5, Since = 6 },
            ClientJson.Default.ChannelRequest);

        var joinDto = JsonSerializer.Deserialize(join, RelayJson.Default.JoinRequestDto)!;
        var channelDto = JsonSerializer.Deserialize(channel, RelayJson.Default.ChannelRequestDto)!;

        Assert.That((joinDto.Channel, joinDto.Curve, joinDto.Role), Is.EqualTo(("abc", "p256", "sender")));
        Assert.That(
            (channelDto.Channel, channelDto.Uuid, channelDto.X, channelDto.Curve, channelDto.Y, channelDto.HhK, channelDto.HK, channelDto.Close, channelDto.Wait, channelDto.Since),
            Is.EqualTo(("abc", "u", "AQ==", "p256", "Ag==", "Aw==", "BA==", (bool?)true, (double?)5, (long?)6)));
        Assert.That(FieldNames(channel).Union(FieldNames(join)), Is.SubsetOf(Constants(typeof(RelayWire.Fields))));
    }

    [Test]
    public void State_EveryFieldTheRelayWritesTheClientReads()
    {
        var state = new CrocNet.Relay.Hosting.StateDto
        {
            Channel = "abc", Uuid = "u", Role = "recipient", Curve = "siec", Rev = 7, X = "AQ==", Y = "Ag==", HhK = "Aw==", HK = "BA==",
            Stapled = true, Reconnecting = true, Closed = true, Ports = [9010, 9011], Host = "relay.example",
        };
        var json = JsonSerializer.SerializeToUtf8Bytes(state, RelayJson.Default.StateDto);

        var read = JsonSerializer.Deserialize(json, ClientJson.Default.RelayState)!;

        Assert.That(
            (read.Channel, read.Uuid, read.Role, read.Curve, read.Rev, read.X, read.Y, read.HhK, read.HK, read.Stapled, read.Closed, read.Host),
            Is.EqualTo(("abc", "u", "recipient", "siec", 7L, new byte[] { 1 }, new byte[] { 2 }, new byte[] { 3 }, new byte[] { 4 }, true, true, "relay.example")));
        Assert.That(read.Ports, Is.EqualTo(new[] { 9010, 9011 }));
        Assert.That(read.Reconnecting, Is.True);

        var error = JsonSerializer.SerializeToUtf8Bytes(new CrocNet.Relay.Hosting.ErrorDto { Error = "no", Code = RelayWire.Codes.IpLimit }, RelayJson.Default.ErrorDto);
        var readError = JsonSerializer.Deserialize(error, ClientJson.Default.RelayError)!;
        Assert.That((readError.Error, readError.Code), Is.EqualTo(("no", "ip_limit")));
    }

    private static string[] Constants(Type type) =>
        type.GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!).ToArray();

    private static string[] FieldNames(byte[] json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.EnumerateObject().Select(p => p.Name).ToArray();
    }
}

using Microsoft.Extensions.Logging;
using System.Net;
using System.Net.Http.Headers;
using CrocNet.Relay;
using static CrocNet.Tests.Relay.RelayTestKit;

namespace CrocNet.Tests.Relay.Hosting;

/// <summary>A private relay (<see cref="CrocRelayOptions.Password"/>): every route and every TCP leg needs the password.</summary>
[CancelAfter(20_000)]
public sealed class RelayPasswordTests
{
    private const string Password = "correct horse battery staple";
    private CrocRelayServer _relay = null!;
    private HttpClient _anonymous = null!;
    private HttpClient _sender = null!;
    private HttpClient _recipient = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _relay = await StartRelayAsync(CancellationToken.None, o => o.Relay.Password = Password);
        _anonymous = Client(_relay.BaseAddress);
        _sender = Authorized(Client(_relay.BaseAddress), Password);
        _recipient = Authorized(Client(_relay.BaseAddress, Second), Password);
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        _anonymous.Dispose();
        _sender.Dispose();
        _recipient.Dispose();
        await _relay.DisposeAsync();
    }

    [TestCase(null)]
    [TestCase("wrong")]
    [TestCase("correct horse battery stapl")]
    [TestCase("Correct horse battery staple")]
    public async Task Join_WithoutTheRightPassword_401AndNoChannel(string? presented, CancellationToken cancellationToken)
    {
        using var client = presented is null ? Client(_relay.BaseAddress) : Authorized(Client(_relay.BaseAddress), presented);
        var count = Registry.Count;

        var reply = await PostAsync(client, "join", new { role = "sender", channel = "privatechan" }, cancellationToken);

        AssertError(reply, HttpStatusCode.Unauthorized, "unauthorized");
        Assert.That(Registry.Count, Is.EqualTo(count), "a refused join creates nothing");
    }

    [Test]
    public async Task Join_OtherScheme_401(CancellationToken cancellationToken)
    {
        using var client = Client(_relay.BaseAddress);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Password);

        AssertError(await PostAsync(client, "join", new { role = "sender" }, cancellationToken), HttpStatusCode.Unauthorized, "unauthorized");
    }

    [Test]
    public async Task Channel_WithoutPassword_401EvenWithAValidUuid(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(_sender, _recipient, cancellationToken, confirm: false);

        var reply = await PostAsync(_anonymous, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid, x = B64(1) }, cancellationToken);

        AssertError(reply, HttpStatusCode.Unauthorized, "unauthorized");
        var state = await OkAsync(PostAsync(_sender, "channel", new { channel = pair.Channel, uuid = pair.SenderUuid }, cancellationToken));
        Assert.That(state.Body["x"], Is.Null, "the refused request changed nothing");
    }

    [Test]
    public async Task TcpLeg_HelloWithoutOrWithWrongAuth_Refused_WithAuth_Piped(CancellationToken cancellationToken)
    {
        var pair = await OpenAsync(_sender, _recipient, cancellationToken);
        var port = _relay.Ports[0];

        var (bare, bareAnswer) = await HelloAsync(port, pair.Channel, pair.SenderUuid, cancellationToken);
        using (bare)
        {
            Assert.That(bareAnswer, Is.EqualTo("error unauthorized"));
        }

        using var wrong = await ConnectAsync(port, cancellationToken);
        await SendAsync(wrong, Hello(pair.Channel, pair.SenderUuid, "nope"), cancellationToken);
        Assert.That(await ReadLineAsync(wrong, cancellationToken), Is.EqualTo("error unauthorized"));

        // The password itself on a TCP leg (which is not encrypted) is refused too: only the leg's proof opens it.
        using var plain = await ConnectAsync(port, cancellationToken);
        await SendAsync(plain, Hello(pair.Channel, pair.SenderUuid, Password), cancellationToken);
        Assert.That(await ReadLineAsync(plain, cancellationToken), Is.EqualTo("error unauthorized"));

        // A proof for another participant's uuid does not open this one's leg.
        using var borrowed = await ConnectAsync(port, cancellationToken);
        await SendAsync(borrowed, Hello(pair.Channel, pair.SenderUuid, Proof(pair.Channel, pair.RecipientUuid)), cancellationToken);
        Assert.That(await ReadLineAsync(borrowed, cancellationToken), Is.EqualTo("error unauthorized"));

        using var sender = await ConnectAsync(port, cancellationToken);
        await SendAsync(sender, Hello(pair.Channel, pair.SenderUuid, Proof(pair.Channel, pair.SenderUuid)), cancellationToken);
        Assert.That(await ReadLineAsync(sender, cancellationToken), Is.EqualTo("ok"));
        using var recipient = await ConnectAsync(port, cancellationToken, Second);
        await SendAsync(recipient, Hello(pair.Channel, pair.RecipientUuid, Proof(pair.Channel, pair.RecipientUuid)), cancellationToken);
        Assert.That(await ReadLineAsync(recipient, cancellationToken), Is.EqualTo("ok"));

        await SendAsync(sender, "ciphertext", cancellationToken);
        Assert.That(System.Text.Encoding.UTF8.GetString(await ReadExactlyAsync(recipient, 10, cancellationToken)), Is.EqualTo("ciphertext"));
    }

    [Test]
    public async Task WrongPasswords_SpendTheAddressFailureBudget_ThenEvenTheRightOneWaits(CancellationToken cancellationToken)
    {
        await using var relay = await StartRelayAsync(cancellationToken, o =>
        {
            o.Relay.Password = Password;
            o.Relay.MaxFailedLookupsPerMinute = 3;
        });
        using var guesser = Authorized(Client(relay.BaseAddress), "guess");
        for (var i = 0; i < 3; i++)
        {
            AssertError(await PostAsync(guesser, "join", new { role = "sender" }, cancellationToken), HttpStatusCode.Unauthorized, "unauthorized");
        }

        // Out of guesses for a while: the password is not even checked for this address, so guessing cannot go faster.
        using var sameAddress = Authorized(Client(relay.BaseAddress), Password);
        AssertError(await PostAsync(sameAddress, "join", new { role = "sender" }, cancellationToken), HttpStatusCode.Unauthorized, "unauthorized");
        var (leg, answer) = await HelloAsync(relay.Ports[0], "somechannel", "someuuid", cancellationToken);
        using (leg)
        {
            Assert.That(answer, Is.EqualTo("error unauthorized"));
        }

        // Another address is not affected.
        using var other = Authorized(Client(relay.BaseAddress, Second), Password);
        await OkAsync(PostAsync(other, "join", new { role = "sender" }, cancellationToken));
    }

    [Test]
    public async Task Log_NeverContainsThePassword(CancellationToken cancellationToken)
    {
        var logs = new Diagnostics.CapturingLoggerProvider();
        await using var relay = await StartRelayAsync(cancellationToken, o =>
        {
            o.Relay.Password = Password;
            o.LoggerFactory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        });
        using var wrong = Authorized(Client(relay.BaseAddress), Password + "x");
        await PostAsync(wrong, "join", new { role = "sender" }, cancellationToken);
        using var right = Authorized(Client(relay.BaseAddress), Password);
        await OkAsync(PostAsync(right, "join", new { role = "sender" }, cancellationToken));

        Assert.That(logs.Text, Does.Not.Contain("horse"));
        Assert.That(logs.Text, Does.Contain("unauthorized"), "the refusal itself is logged");
    }

    private CrocNet.Relay.Channels.ChannelRegistry Registry => (CrocNet.Relay.Channels.ChannelRegistry)_relay.Services.GetService(typeof(CrocNet.Relay.Channels.ChannelRegistry))!;

    private static HttpClient Authorized(HttpClient client, string password)
    {
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", password);
        return client;
    }

    private static string Proof(string channel, string uuid) => CrocNet.Relay.Net.RelayAccess.LegProof(System.Text.Encoding.UTF8.GetBytes(Password), channel, uuid);

    private static string Hello(string channel, string uuid, string auth) => $"{{\"channel\":\"{channel}\",\"uuid\":\"{uuid}\",\"auth\":\"{auth}\"}}\n";
}

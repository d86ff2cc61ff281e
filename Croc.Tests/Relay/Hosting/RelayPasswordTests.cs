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

        using var sender = await ConnectAsync(port, cancellationToken);
        await SendAsync(sender, Hello(pair.Channel, pair.SenderUuid, Password), cancellationToken);
        Assert.That(await ReadLineAsync(sender, cancellationToken), Is.EqualTo("ok"));
        using var recipient = await ConnectAsync(port, cancellationToken, Second);
        await SendAsync(recipient, Hello(pair.Channel, pair.RecipientUuid, Password), cancellationToken);
        Assert.That(await ReadLineAsync(recipient, cancellationToken), Is.EqualTo("ok"));

        await SendAsync(sender, "ciphertext", cancellationToken);
        Assert.That(System.Text.Encoding.UTF8.GetString(await ReadExactlyAsync(recipient, 10, cancellationToken)), Is.EqualTo("ciphertext"));
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

    private static string Hello(string channel, string uuid, string auth) => $"{{\"channel\":\"{channel}\",\"uuid\":\"{uuid}\",\"auth\":\"{auth}\"}}\n";
}

using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using CrocNet.Relay;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Diagnostics;
using CrocNet.Relay.Staple;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace CrocNet.Tests.Relay.Staple;

/// <summary>The staple session over in-memory duplex pipes: no socket, the same hello, pairing and piping rules.</summary>
[CancelAfter(10_000)]
public class StapleSessionTests
{
    private static readonly IPAddress A = IPAddress.Parse("10.0.0.1");
    private static readonly IPAddress B = IPAddress.Parse("10.0.0.2");

    private FakeTimeProvider _time = null!;
    private RelayMetrics _metrics = null!;
    private ChannelRegistry _registry = null!;
    private StapleSession _session = null!;

    [SetUp]
    public void SetUp()
    {
        _time = new FakeTimeProvider();
        _metrics = new RelayMetrics();
        _registry = new ChannelRegistry(Options.Create(new CrocRelayOptions()), new RelayClock(_time), _metrics);
        _registry.SetPorts([7001, 7002]);
        _session = new StapleSession(_registry);
    }

    [TearDown]
    public void TearDown()
    {
        _registry.Dispose();
        _metrics.Dispose();
    }

    [Test]
    public async Task RunAsync_BothLegsOnEveryLane_StapledAndBytesCrossBothWaysWithHalfClose(CancellationToken cancellationToken)
    {
        var (channel, sender, recipient) = await OpenAsync(cancellationToken);
        var legs = new List<(Task Run, IDuplexPipe Client)>();
        for (var lane = 0; lane < 2; lane++)
        {
            var s = Start(lane, A, cancellationToken);
            await SendAsync(s.Client, Hello(channel, sender) + $"early from the sender on lane {lane}\n", cancellationToken);
            Assert.That(await ReadLineAsync(s.Client, cancellationToken), Is.EqualTo("ok"));
            var r = Start(lane, B, cancellationToken);
            await SendAsync(r.Client, Hello(channel, recipient), cancellationToken);
            Assert.That(await ReadLineAsync(r.Client, cancellationToken), Is.EqualTo("ok"));
            legs.Add(s);
            legs.Add(r);

            Assert.That(await ReadLineAsync(r.Client, cancellationToken), Is.EqualTo($"early from the sender on lane {lane}"), "bytes sent before the peer came wait in the leg");
            await SendAsync(r.Client, "back\n", cancellationToken);
            Assert.That(await ReadLineAsync(s.Client, cancellationToken), Is.EqualTo("back"));
        }

        Assert.That((await _registry.GetAsync(channel, cancellationToken))!.Stapled, Is.True);

        // Half-close: the sender finishes, the recipient still answers, then finishes too.
        foreach (var (i, leg) in legs.Index())
        {
            if (i % 2 == 0)
            {
                await leg.Client.Output.CompleteAsync();
            }
        }

        for (var i = 0; i < legs.Count; i += 2)
        {
            Assert.That(await ReadToEndAsync(legs[i + 1].Client, cancellationToken), Is.Empty, "the sender's end of stream reaches the recipient");
            await SendAsync(legs[i + 1].Client, "last words\n", cancellationToken);
            await legs[i + 1].Client.Output.CompleteAsync();
            Assert.That(Encoding.ASCII.GetString(await ReadToEndAsync(legs[i].Client, cancellationToken)), Is.EqualTo("last words\n"));
        }

        await Task.WhenAll(legs.Select(l => l.Run)).WaitAsync(cancellationToken);
        Assert.That(_registry.WaitingConnections, Is.Zero);
    }

    [TestCase("not json\n", "error bad_request")]
    [TestCase("{\"channel\":\"nosuch\",\"uuid\":\"u\"}\n", "error bad_uuid")]
    public async Task RunAsync_BadHello_ErrorLineThenClosed(string hello, string expected, CancellationToken cancellationToken)
    {
        var leg = Start(0, A, cancellationToken);
        await SendAsync(leg.Client, hello, cancellationToken);

        Assert.That(await ReadLineAsync(leg.Client, cancellationToken), Is.EqualTo(expected));
        Assert.That(await ReadToEndAsync(leg.Client, cancellationToken), Is.Empty);
        await leg.Run.WaitAsync(cancellationToken);
    }

    [Test]
    public async Task RunAsync_NoHelloWithinHelloTimeout_TimeoutOnTheRelaysClock(CancellationToken cancellationToken)
    {
        var leg = Start(0, A, cancellationToken);
        await SendAsync(leg.Client, "{\"chan", cancellationToken);
        _time.Advance(TimeSpan.FromSeconds(4));
        Assert.That(leg.Run.IsCompleted, Is.False);

        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.That(await ReadLineAsync(leg.Client, cancellationToken), Is.EqualTo("error timeout"));
        await leg.Run.WaitAsync(cancellationToken);
    }

    [Test]
    public async Task RunAsync_WaitingClientLeaves_LaneFreedSoItCanReconnect(CancellationToken cancellationToken)
    {
        var (channel, sender, _) = await OpenAsync(cancellationToken);
        var first = Start(0, A, cancellationToken);
        await SendAsync(first.Client, Hello(channel, sender), cancellationToken);
        Assert.That(await ReadLineAsync(first.Client, cancellationToken), Is.EqualTo("ok"));
        Assert.That(_registry.WaitingConnections, Is.EqualTo(1));

        await first.Client.Output.CompleteAsync();
        await first.Run.WaitAsync(cancellationToken);

        Assert.That(_registry.WaitingConnections, Is.Zero);
        var again = Start(0, A, cancellationToken);
        await SendAsync(again.Client, Hello(channel, sender), cancellationToken);
        Assert.That(await ReadLineAsync(again.Client, cancellationToken), Is.EqualTo("ok"), "no duplicate: the lane was freed");
    }

    private (Task Run, IDuplexPipe Client) Start(int lane, IPAddress address, CancellationToken cancellationToken)
    {
        var toRelay = new Pipe();
        var toClient = new Pipe();
        var relaySide = new Duplex(toRelay.Reader, toClient.Writer);
        var clientSide = new Duplex(toClient.Reader, toRelay.Writer);
        var run = _session.RunAsync(new PipeStapleConnection(relaySide), lane, lane, address, null, CancellationToken.None, cancellationToken);
        return (run, clientSide);
    }

    private async Task<(string Channel, string Sender, string Recipient)> OpenAsync(CancellationToken cancellationToken)
    {
        var s = (await _registry.JoinAsync(new JoinCommand(null, null, ParticipantRole.Sender), A, cancellationToken)).Value!;
        var channel = s.State.Channel;
        var r = (await _registry.JoinAsync(new JoinCommand(channel, null, ParticipantRole.Recipient), B, cancellationToken)).Value!;
        await _registry.ExecuteAsync(new ChannelCommand(channel, s.Uuid, ChannelAction.SetX, null, "eA=="), A, cancellationToken);
        await _registry.ExecuteAsync(new ChannelCommand(channel, r.Uuid, ChannelAction.SetY, null, "eQ==", "aA=="), B, cancellationToken);
        await _registry.ExecuteAsync(new ChannelCommand(channel, s.Uuid, ChannelAction.SetHK, null, "aw=="), A, cancellationToken);
        return (channel, s.Uuid, r.Uuid);
    }

    private static string Hello(string channel, string uuid) => $"{{\"channel\":\"{channel}\",\"uuid\":\"{uuid}\"}}\n";

    private static async Task SendAsync(IDuplexPipe client, string text, CancellationToken cancellationToken)
        => await client.Output.WriteAsync(Encoding.UTF8.GetBytes(text), cancellationToken);

    private static async Task<string?> ReadLineAsync(IDuplexPipe client, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await client.Input.ReadAsync(cancellationToken);
            if (result.Buffer.PositionOf((byte)'\n') is { } newline)
            {
                var line = Encoding.UTF8.GetString(result.Buffer.Slice(0, newline).ToArray());
                client.Input.AdvanceTo(result.Buffer.GetPosition(1, newline));
                return line;
            }

            client.Input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            if (result.IsCompleted)
            {
                return null;
            }
        }
    }

    private static async Task<byte[]> ReadToEndAsync(IDuplexPipe client, CancellationToken cancellationToken)
    {
        var all = new List<byte>();
        while (true)
        {
            var result = await client.Input.ReadAsync(cancellationToken);
            all.AddRange(result.Buffer.ToArray());
            client.Input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return [.. all];
            }
        }
    }

    private sealed class Duplex(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}

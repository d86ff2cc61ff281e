using System.Security.Cryptography;
using CrocNet.Relay;
using CrocNet.Tests.Diagnostics;
using Microsoft.Extensions.Logging;

namespace CrocNet.Tests.EndToEnd;

/// <summary>
/// How a transfer that worked ends, through a real relay: the sender's legs close cleanly before it closes the channel,
/// so the recipient sees the sender's goodbye, not a reset it would have to take for a lost verdict.
/// </summary>
public class GoodbyeTests
{
    private readonly TempFolders _folders = new("croc-goodbye-");

    [TearDown]
    public void DeleteFolders() => _folders.DeleteAll();

    [TestCase(CrocTransport.Tcp)]
    [TestCase(CrocTransport.WebSocket)]
    [CancelAfter(60_000)]
    public async Task Transfer_Undisturbed_NoSideDialsAgainOrWarns(CrocTransport transport, CancellationToken cancellationToken)
    {
        var sink = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(sink));
        await using var relay = await CrocRelayServer.StartAsync(
            o =>
            {
                o.Url = "http://127.0.0.1:0";
                o.Relay.Ports = [0, 0, 0, 0];
                o.Relay.ListenAddress = "127.0.0.1";
            },
            cancellationToken);
        var source = Path.Join(_folders.New(), "payload.bin");
        var bytes = RandomNumberGenerator.GetBytes(3 * 1024 * 1024);
        await File.WriteAllBytesAsync(source, bytes, cancellationToken);
        var output = _folders.New();

        for (var round = 0; round < 3; round++)
        {
            var code = Croc.GenerateCode();
            var send = Croc.New(o => o.WithRelay(relay.BaseAddress).WithTransport(transport).UseLoggerFactory(factory))
                .SendAsync(SendContent.FromPath(source), new SendOptions { Code = code }, cancellationToken);
            var receive = Croc.New(o => o.WithRelay(relay.BaseAddress).WithTransport(transport).UseLoggerFactory(factory))
                .ReceiveAsync(code, new ReceiveOptions { OutputDirectory = output, Overwrite = CrocOverwritePolicy.Overwrite }, cancellationToken);
            var results = await Task.WhenAll(send, receive);

            Assert.That(results.Select(r => r.Reconnects), Is.All.Zero);
        }

        Assert.That((await File.ReadAllBytesAsync(Path.Join(output, "payload.bin"), cancellationToken)).AsSpan().SequenceEqual(bytes), Is.True);
        Assert.That(sink.Lines.Where(l => l.Contains("dialing it again", StringComparison.Ordinal) || l.Contains("broke", StringComparison.Ordinal)), Is.Empty,
            "a transfer that worked ends without a break on either side");
    }
}

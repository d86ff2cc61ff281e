using System.Collections.Concurrent;
using CrocNet.Relay;
using CrocNet.Tests.EndToEnd;
using Microsoft.Extensions.Logging;

namespace CrocNet.Tests.Diagnostics;

/// <summary>Runs whole transfers with every log level on, on both clients and the relay, and searches the output for secrets.</summary>
public class SecretLoggingTests
{
    [Test]
    [CancelAfter(60_000)]
    public async Task Transfer_TraceLoggingEverywhere_NeverLogsCodeSecretOrTokens(CancellationToken cancellationToken)
    {
        var sink = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(sink));
        await using var relay = await CrocRelayServer.StartAsync(o =>
        {
            o.Url = "http://127.0.0.1:0";
            o.Relay.Ports = [0, 0];
            o.Relay.ListenAddress = "127.0.0.1";
            o.LoggerFactory = factory;
        }, cancellationToken);
        var source = Directory.CreateTempSubdirectory("croc-log-").FullName;
        var output = Directory.CreateTempSubdirectory("croc-log-out-").FullName;
        try
        {
            File.WriteAllText(Path.Join(source, "private-name.txt"), "private payload text");
            var code = Croc.GenerateCode();
            var phrase = CrocNet.Codes.CodePhrase.Parse(code);

            var send = Croc.New(o => o.WithRelay(relay.BaseAddress).UseLoggerFactory(factory))
                .SendAsync(SendContent.FromPath(Path.Join(source, "private-name.txt")), new SendOptions { Code = code }, cancellationToken);
            var receive = Croc.New(o => o.WithRelay(relay.BaseAddress).WithOutputDirectory(output).UseLoggerFactory(factory)).ReceiveAsync(code, cancellationToken);
            await Task.WhenAll(send, receive);

            // And a failing one: the wrong code is logged as a failure, never as text.
            var wrong = phrase.Channel + "x-wrong-secret-words";
            var badSend = Croc.New(o => o.WithRelay(relay.BaseAddress).UseLoggerFactory(factory))
                .StartSendAsync(SendContent.FromText("hi"), new SendOptions { Code = Croc.GenerateCode() }, cancellationToken);
            Assert.CatchAsync<CrocException>(() => Croc.New(o => o.WithRelay(relay.BaseAddress).WithChannelWaitTimeout(TimeSpan.Zero).UseLoggerFactory(factory)).ReceiveAsync(wrong, cancellationToken));
            await (await badSend).DisposeAsync();

            var lines = sink.Lines.ToArray();
            Assert.That(lines, Is.Not.Empty);
            Assert.That(lines.Any(l => l.Contains(phrase.Channel, StringComparison.Ordinal)), Is.True, "channel names are public and useful in logs");
            // Whole secrets only: single BIP-39 words ("check", "first") occur in ordinary messages.
            foreach (var secret in new[] { phrase.Secret, code, "private payload text", "wrong-secret-words" })
            {
                Assert.That(lines.Where(l => l.Contains(secret, StringComparison.OrdinalIgnoreCase)), Is.Empty, $"'{secret}' must never be logged");
            }

            Assert.That(lines.Where(l => System.Text.RegularExpressions.Regex.IsMatch(l, "\"uuid\"|uuid[=:] ?[0-9a-f]{16}", System.Text.RegularExpressions.RegexOptions.IgnoreCase)), Is.Empty);
        }
        finally
        {
            Directory.Delete(source, true);
            Directory.Delete(output, true);
        }
    }
}

using System.Net;
using CrocNet.Protocol;
using CrocNet.Rendezvous;
using CsCheck;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;

namespace CrocNet.Tests.Fuzz;

/// <summary>
/// What a hostile relay can answer the client's HTTP requests: any status, any body. The client either gets a
/// state it can use, or a typed relay or protocol error whose message is safe for a terminal.
/// </summary>
public class RelayReplyFuzzTests
{
    private static readonly HttpStatusCode[] Statuses = [HttpStatusCode.OK, HttpStatusCode.BadRequest, HttpStatusCode.Forbidden, HttpStatusCode.NotFound, HttpStatusCode.Conflict, HttpStatusCode.Gone, HttpStatusCode.InternalServerError];

    [Test]
    public void Join_AnyReply_StateOrTypedError()
    {
        var body = Gen.OneOf(
            Fuzzing.HostileBytes(Fuzzing.JsonAlphabet, 200),
            Gen.Select(Gen.String[Gen.Char["abc-_\u001b"], 0, 12], Gen.String[Gen.Char["xyz\u0007\u009b"], 0, 12], Gen.Int[-2, 40])
                .Select((c, u, r) => System.Text.Encoding.UTF8.GetBytes($$"""{"channel":"{{c}}","uuid":"{{u}}","rev":{{r}},"ports":[{{r}}],"error":"e{{u}}","code":"{{c}}"}""")));
        var gen = Gen.Select(Gen.Int[0, Statuses.Length - 1], body);

        Fuzzing.Run(
            gen,
            ((int Status, byte[] Body) reply) =>
            {
                Next.Value = (Statuses[reply.Status], reply.Body);
                try
                {
                    var session = Client.JoinAsync("abc", "p256", ParticipantRole.Sender, CancellationToken.None).GetAwaiter().GetResult();
                    Fuzzing.Check(session.Channel == "abc" && session.Uuid.Length > 0, "a usable join reply names our channel and a token");
                }
                catch (CrocException ex)
                {
                    Fuzzing.Check(ex is CrocRelayException or CrocProtocolException, ex.GetType().Name);
                    Fuzzing.Check(!ex.Message.Any(char.IsControl), "the message is safe for a terminal");
                    Fuzzing.Check(ex is not CrocRelayException { RelayCode: { } code } || CrocWire.SafeCode(code) == code || code.StartsWith("http_", StringComparison.Ordinal) || code == "not_found", "relay codes are snake_case");
                }
            });
    }

    // One client for every case (as an application holds one); each case scripts its reply in its own async flow.
    private static readonly AsyncLocal<(HttpStatusCode Status, byte[] Body)> Next = new();
    private static readonly RelayClient Client = new(
        new HttpMessageInvoker(new ScriptedReply()), new Uri("http://relay.test/"), ResiliencePipeline.Empty, TimeProvider.System, NullLogger.Instance);

    private sealed class ScriptedReply : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage(Next.Value.Status) { Content = new ByteArrayContent(Next.Value.Body) });
    }
}

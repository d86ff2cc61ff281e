using System.Net;
using System.Text;
using CrocNet.Protocol;
using CrocNet.Rendezvous;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrocNet.Tests.Rendezvous;

/// <summary>The HTTP channel client against scripted relays (an in-process handler, no sockets).</summary>
public class RelayClientTests
{
    private const string JoinReply = """{"channel":"abcdefgh","uuid":"u-1","role":"sender","curve":"p256","rev":1,"ports":[1]}""";

    [Test]
    [CancelAfter(10_000)]
    public async Task Join_HandlerConnectTimeout_IsRetriedNotACancellation(CancellationToken cancellationToken)
    {
        var calls = 0;
        var handler = new ScriptedHandler(_ => ++calls == 1
            ? throw new TaskCanceledException("The operation was canceled.", new TimeoutException("A connection could not be established within the configured ConnectTimeout."))
            : Json(HttpStatusCode.OK, JoinReply));

        var session = await NewClient(handler, retries: 2).JoinAsync("abcdefgh", "p256", ParticipantRole.Sender, cancellationToken);

        Assert.That(session.Channel, Is.EqualTo("abcdefgh"));
        Assert.That(calls, Is.EqualTo(2));
    }

    [Test]
    [CancelAfter(10_000)]
    public void Join_HandlerConnectTimeoutEveryTime_RelayUnreachable(CancellationToken cancellationToken)
    {
        var handler = new ScriptedHandler(_ => throw new TaskCanceledException("canceled", new TimeoutException("A connection could not be established within the configured ConnectTimeout.")));

        var ex = Assert.ThrowsAsync<CrocRelayException>(() => NewClient(handler, retries: 1).JoinAsync("abcdefgh", "p256", ParticipantRole.Sender, cancellationToken));

        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.RelayUnreachable));
        Assert.That(ex.Message, Does.Contain("ConnectTimeout"));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task Join_BareSocketExceptionFromTheHandler_IsRetried(CancellationToken cancellationToken)
    {
        // What the handler throws, unwrapped, when the connection is reset just after its connect.
        var calls = 0;
        var handler = new ScriptedHandler(_ => ++calls == 1
            ? throw new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.NotConnected)
            : Json(HttpStatusCode.OK, JoinReply));

        var session = await NewClient(handler, retries: 2).JoinAsync("abcdefgh", "p256", ParticipantRole.Sender, cancellationToken);

        Assert.That((session.Channel, calls), Is.EqualTo(("abcdefgh", 2)));
    }

    [Test]
    [CancelAfter(10_000)]
    public void Join_BareSocketExceptionEveryTime_RelayUnreachable(CancellationToken cancellationToken)
    {
        var handler = new ScriptedHandler(_ => throw new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.NotConnected));

        var ex = Assert.ThrowsAsync<CrocRelayException>(() => NewClient(handler, retries: 1).JoinAsync("abcdefgh", "p256", ParticipantRole.Sender, cancellationToken));

        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.RelayUnreachable));
        Assert.That(ex.InnerException, Is.InstanceOf<System.Net.Sockets.SocketException>());
    }

    [Test]
    [CancelAfter(10_000)]
    public void Join_CallerCancels_StaysOperationCanceled(CancellationToken cancellationToken)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var handler = new ScriptedHandler(_ =>
        {
            cancel.Cancel();
            cancel.Token.ThrowIfCancellationRequested();
            return Json(HttpStatusCode.OK, JoinReply);
        });

        Assert.CatchAsync<OperationCanceledException>(() => NewClient(handler, retries: 3).JoinAsync("abcdefgh", "p256", ParticipantRole.Sender, cancel.Token));
    }

    [Test]
    [CancelAfter(20_000)]
    public async Task WaitFor_RelayAnswersLongPollsAtOnce_NeverBusyPolls(CancellationToken cancellationToken)
    {
        var polls = 0;
        var handler = new ScriptedHandler(request => request.RequestUri!.AbsolutePath.EndsWith("/join", StringComparison.Ordinal)
            ? Json(HttpStatusCode.OK, JoinReply)
            : Json(HttpStatusCode.OK, $$"""{"channel":"abcdefgh","rev":1,"ports":[1],"n":{{Interlocked.Increment(ref polls)}}}"""));
        var session = await NewClient(handler, retries: 0).JoinAsync("abcdefgh", "p256", ParticipantRole.Sender, cancellationToken);

        var wait = TimeSpan.FromSeconds(2);
        Assert.ThrowsAsync<CrocTimeoutException>(() => session.WaitForAsync(session.Joined, s => s.Y is not null, wait, cancellationToken));

        // A relay that ignores "wait" gets at most one poll per MinPollInterval, not thousands.
        var most = (int)(wait / ProtocolTimings.MinPollInterval) + 1;
        Assert.That(polls, Is.InRange(2, most));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task WaitFor_ChannelClosedBetweenPolls_ClosedStateNotARefusal(CancellationToken cancellationToken)
    {
        var handler = new ScriptedHandler(request => request.RequestUri!.AbsolutePath.EndsWith("/join", StringComparison.Ordinal)
            ? Json(HttpStatusCode.OK, JoinReply)
            : Json(HttpStatusCode.Gone, """{"error":"The channel is closed.","code":"closed"}"""));
        var session = await NewClient(handler, retries: 0).JoinAsync("abcdefgh", "p256", ParticipantRole.Sender, cancellationToken);

        var state = await session.WaitForAsync(session.Joined, s => s.Y is not null, TimeSpan.FromSeconds(5), cancellationToken);

        // The same event as a long-poll that sees the channel close: the handshake maps both to ConnectionLost.
        Assert.That(state.Closed, Is.True);
        Assert.That(state.Rev, Is.EqualTo(session.Joined.Rev));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task EveryRequest_RelayPassword_SentAsBearerOnJoinPollAndClose(CancellationToken cancellationToken)
    {
        var seen = new List<string?>();
        var handler = new ScriptedHandler(request =>
        {
            lock (seen)
            {
                seen.Add(request.Headers.Authorization?.ToString());
            }

            return request.RequestUri!.AbsolutePath.EndsWith("/join", StringComparison.Ordinal)
                ? Json(HttpStatusCode.OK, JoinReply)
                : Json(HttpStatusCode.OK, """{"channel":"abcdefgh","rev":2,"ports":[1],"y":"AQ=="}""");
        });
        var session = await NewClient(handler, retries: 0, password: "s3cret pass").JoinAsync("abcdefgh", "p256", ParticipantRole.Sender, cancellationToken);

        await session.PostAsync(null, cancellationToken);
        await session.WaitForAsync(session.Joined, s => s.Y is not null, TimeSpan.FromSeconds(5), cancellationToken);
        await session.CloseAsync();

        Assert.That(seen, Has.Count.EqualTo(4));
        Assert.That(seen, Is.All.EqualTo("Bearer s3cret pass"));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task EveryRequest_NoRelayPassword_NoAuthorizationHeader(CancellationToken cancellationToken)
    {
        string? seen = "unset";
        var handler = new ScriptedHandler(request =>
        {
            seen = request.Headers.Authorization?.ToString();
            return Json(HttpStatusCode.OK, JoinReply);
        });

        await NewClient(handler, retries: 0).JoinAsync("abcdefgh", "p256", ParticipantRole.Sender, cancellationToken);

        Assert.That(seen, Is.Null);
    }

    [TestCase(null, "none was given")]
    [TestCase("wrong-one", "wrong")]
    [CancelAfter(10_000)]
    public void Join_Unauthorized_AccessDeniedNotRetriedPasswordNotQuoted(string? password, string says, CancellationToken cancellationToken)
    {
        var calls = 0;
        var handler = new ScriptedHandler(_ =>
        {
            calls++;
            var reply = Json(HttpStatusCode.Unauthorized, """{"error":"This relay is private.","code":"unauthorized"}""");
            reply.Headers.WwwAuthenticate.ParseAdd("Bearer");
            return reply;
        });

        var ex = Assert.ThrowsAsync<CrocRelayException>(() => NewClient(handler, retries: 3, password).JoinAsync(null, "p256", ParticipantRole.Sender, cancellationToken));

        Assert.That((ex!.Code, ex.StatusCode, ex.RelayCode), Is.EqualTo((CrocErrorCode.RelayAccessDenied, (int?)401, "unauthorized")));
        Assert.That(ex.Message, Does.Contain("private").And.Contain(says).And.Contain("http://relay.test/"));
        Assert.That(ex.Message, Does.Not.Contain("wrong-one"));
        Assert.That(calls, Is.EqualTo(1), "a 401 is an answer, never retried");
    }

    [TestCase("unavailable", CrocErrorCode.RelayUnavailable)]
    [TestCase("capacity", CrocErrorCode.RelayUnreachable)]
    [CancelAfter(10_000)]
    public void Join_Relay503EveryTime_RetriedThenTypedByItsCode(string code, CrocErrorCode expected, CancellationToken cancellationToken)
    {
        var calls = 0;
        var handler = new ScriptedHandler(_ =>
        {
            calls++;
            return Json(HttpStatusCode.ServiceUnavailable, $$"""{"error":"Not now.","code":"{{code}}"}""");
        });

        var ex = Assert.ThrowsAsync<CrocRelayException>(() => NewClient(handler, retries: 2).JoinAsync(null, "p256", ParticipantRole.Sender, cancellationToken));

        Assert.That((ex!.Code, ex.StatusCode, ex.RelayCode), Is.EqualTo((expected, (int?)503, code)));
        Assert.That(calls, Is.EqualTo(3), "a 503 is transient: retried");
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task Join_RelayUnavailableOnce_RetriedAndJoins(CancellationToken cancellationToken)
    {
        var calls = 0;
        var handler = new ScriptedHandler(_ => ++calls == 1
            ? Json(HttpStatusCode.ServiceUnavailable, """{"error":"Not now.","code":"unavailable"}""")
            : Json(HttpStatusCode.OK, JoinReply));

        var session = await NewClient(handler, retries: 2).JoinAsync("abcdefgh", "p256", ParticipantRole.Sender, cancellationToken);

        Assert.That((session.Channel, calls), Is.EqualTo(("abcdefgh", 2)));
    }

    private static RelayClient NewClient(HttpMessageHandler handler, int retries, string? password = null)
    {
        var options = new CrocOptions { MaxRetries = retries, RetryBaseDelay = TimeSpan.FromMilliseconds(1) };
        var pipeline = RelayResilience.Create(options, TimeProvider.System, NullLogger.Instance);
        return new RelayClient(new HttpMessageInvoker(handler), new Uri("http://relay.test/"), pipeline, TimeProvider.System, NullLogger.Instance, password);
    }

    private static HttpResponseMessage Json(HttpStatusCode status, string body) =>
        new(status) { Content = new StringContent(body, Encoding.UTF8, "application/json") };

    private sealed class ScriptedHandler(Func<HttpRequestMessage, HttpResponseMessage> answer) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(answer(request));
    }
}

using System.Net.Sockets;
using CrocNet.Rendezvous;
using CrocNet.Transport;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrocNet.Tests.Transport;

/// <summary>Opening every lane through a scripted transport: retries, refusals, clean-up.</summary>
public class StapleConnectorTests
{
    private static readonly StapleTarget Target = new(new Uri("http://relay.test/"), "relay.test", [1001, 1002, 1003]);
    private static readonly StapleTicket Ticket = new("abcdefgh", "secret-uuid");

    [Test]
    [CancelAfter(10_000)]
    public async Task ConnectAll_ResetDuringHello_IsRetried(CancellationToken cancellationToken)
    {
        var transport = new ScriptedTransport((lane, attempt) => lane == 1 && attempt == 1
            ? throw new IOException("Unable to read data from the transport connection: Connection reset by peer.", new SocketException((int)SocketError.ConnectionReset))
            : null);

        var streams = await StapleConnector.ConnectAllAsync(transport, Target, Ticket, Pipeline(retries: 2), TimeProvider.System, cancellationToken);

        Assert.That(streams, Has.Length.EqualTo(3));
        Assert.That(transport.Attempts(1), Is.EqualTo(2));
    }

    [Test]
    [CancelAfter(10_000)]
    public void ConnectAll_Refused_NotRetriedAndEveryOpenLaneClosed(CancellationToken cancellationToken)
    {
        var transport = new ScriptedTransport((lane, _) => lane == 2
            ? throw new CrocRelayException(CrocErrorCode.RelayRefused, "refused (ip_limit).", "ip_limit")
            : null);

        var ex = Assert.ThrowsAsync<CrocRelayException>(() => StapleConnector.ConnectAllAsync(transport, Target, Ticket, Pipeline(retries: 3), TimeProvider.System, cancellationToken));

        Assert.That(ex!.RelayCode, Is.EqualTo("ip_limit"));
        Assert.That(transport.Attempts(2), Is.EqualTo(1));
        Assert.That(transport.Opened.All(s => s.Disposed), Is.True);
    }

    [Test]
    public void ConnectAll_RelayOffersTooManyLanes_ProtocolErrorBeforeAnyConnection()
    {
        var transport = new ScriptedTransport((_, _) => null);
        var target = Target with { Ports = Enumerable.Range(1000, 17).ToArray() };

        Assert.ThrowsAsync<CrocProtocolException>(() => StapleConnector.ConnectAllAsync(transport, target, Ticket, Pipeline(0), TimeProvider.System, CancellationToken.None));
        Assert.That(transport.Opened, Is.Empty);
    }

    [Test]
    public void Ticket_ToString_NeverShowsTheUuidOrThePassword() =>
        Assert.That((Ticket with { RelayPassword = "relay-secret" }).ToString(), Does.Not.Contain("secret-uuid").And.Not.Contain("relay-secret"));

    private static Polly.ResiliencePipeline Pipeline(int retries) =>
        RelayResilience.Create(new CrocOptions { MaxRetries = retries, RetryBaseDelay = TimeSpan.FromMilliseconds(1) }, TimeProvider.System, NullLogger.Instance);

    private sealed class ScriptedTransport(Func<int, int, Exception?> fault) : IStapleTransport
    {
        private readonly int[] _attempts = new int[16];

        public List<TrackedStream> Opened { get; } = [];

        public int Attempts(int lane) => Volatile.Read(ref _attempts[lane]);

        public ValueTask<Stream> ConnectAsync(StapleTarget target, int lane, StapleTicket ticket, CancellationToken cancellationToken)
        {
            var attempt = Interlocked.Increment(ref _attempts[lane]);
            if (fault(lane, attempt) is { } ex)
            {
                throw ex;
            }

            var stream = new TrackedStream();
            lock (Opened)
            {
                Opened.Add(stream);
            }

            return ValueTask.FromResult<Stream>(stream);
        }
    }

    private sealed class TrackedStream : MemoryStream
    {
        public bool Disposed { get; private set; }

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }
    }
}

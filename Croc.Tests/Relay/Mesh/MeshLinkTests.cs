using System.Net.Sockets;
using System.Text;
using CrocNet.Relay.Mesh;

namespace CrocNet.Tests.Relay.Mesh;

/// <summary>The node-to-node handshake over real loopback sockets: both sides, good and bad proofs, framing, timeouts.</summary>
public class MeshLinkTests
{
    private static readonly byte[] Secret = Encoding.UTF8.GetBytes("mesh-link-test-secret-42");

    [Test]
    [CancelAfter(10_000)]
    public async Task Handshake_SameSecret_BothSidesLearnTheOtherId(CancellationToken cancellationToken)
    {
        using var pair = await SocketPair.OpenAsync(cancellationToken);
        var owner = MeshLink.AcceptAsync(pair.Server, Secret, "node-o", cancellationToken);
        var forwarder = MeshLink.ConnectAsync(pair.Client, Secret, "node-f", "node-o", cancellationToken);

        Assert.That(await forwarder, Is.EqualTo("node-o"));
        Assert.That(await owner, Is.EqualTo("node-f"));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task Handshake_ForwarderHasAnotherSecret_ForwarderRejectsTheOwnersProofAndTheOwnerRefusesTheLink(CancellationToken cancellationToken)
    {
        using var pair = await SocketPair.OpenAsync(cancellationToken);
        var owner = MeshLink.AcceptAsync(pair.Server, Secret, "node-o", cancellationToken);
        var forwarder = MeshLink.ConnectAsync(pair.Client, Encoding.UTF8.GetBytes("another-secret-entirely"), "node-f", null, cancellationToken);

        var rejected = Assert.ThrowsAsync<MeshLinkException>(async () => await forwarder);
        Assert.That(rejected!.Message, Does.Contain("proof is wrong"));
        pair.Client.Dispose();
        Assert.ThrowsAsync<MeshLinkException>(async () => await owner);
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task Accept_WrongForwarderProof_Refused(CancellationToken cancellationToken)
    {
        using var pair = await SocketPair.OpenAsync(cancellationToken);
        var owner = MeshLink.AcceptAsync(pair.Server, Secret, "node-o", cancellationToken);
        await MeshLink.WriteLineAsync(pair.Client, $"{MeshLink.Greeting} {Convert.ToBase64String(new byte[32])} node-f", cancellationToken);
        _ = await MeshLink.ReadLineAsync(pair.Client, MeshLink.MaxHandshakeLine, cancellationToken);
        await MeshLink.WriteLineAsync(pair.Client, Convert.ToBase64String(new byte[32]), cancellationToken);

        var refused = Assert.ThrowsAsync<MeshLinkException>(async () => await owner);
        Assert.That(refused!.Message, Does.Contain("proof is wrong"));
        Assert.That(refused.Message, Does.Not.Contain(Encoding.UTF8.GetString(Secret)));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task Accept_ProofReplayedFromAnEarlierLink_Refused(CancellationToken cancellationToken)
    {
        // A recorded good link: the greeting and the forwarder's proof as they crossed the wire.
        var nonce = Convert.ToBase64String(new byte[32].Select((_, i) => (byte)i).ToArray());
        string recordedProof;
        using (var first = await SocketPair.OpenAsync(cancellationToken))
        {
            var owner = MeshLink.AcceptAsync(first.Server, Secret, "node-o", cancellationToken);
            await MeshLink.WriteLineAsync(first.Client, $"{MeshLink.Greeting} {nonce} node-f", cancellationToken);
            var answer = (await MeshLink.ReadLineAsync(first.Client, MeshLink.MaxHandshakeLine, cancellationToken)).Split(' ');
            recordedProof = Convert.ToBase64String(MeshLink.Proof(Secret, "forwarder", Convert.FromBase64String(nonce), Convert.FromBase64String(answer[0]), "node-f", "node-o"));
            await MeshLink.WriteLineAsync(first.Client, recordedProof, cancellationToken);
            Assert.That(await owner, Is.EqualTo("node-f"), "the recorded link was good");
        }

        // The same lines again, by someone without the secret: the owner's fresh nonce makes the old proof worthless.
        using var second = await SocketPair.OpenAsync(cancellationToken);
        var replayed = MeshLink.AcceptAsync(second.Server, Secret, "node-o", cancellationToken);
        await MeshLink.WriteLineAsync(second.Client, $"{MeshLink.Greeting} {nonce} node-f", cancellationToken);
        _ = await MeshLink.ReadLineAsync(second.Client, MeshLink.MaxHandshakeLine, cancellationToken);
        await MeshLink.WriteLineAsync(second.Client, recordedProof, cancellationToken);
        Assert.ThrowsAsync<MeshLinkException>(async () => await replayed);
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task Accept_OwnersProofReflectedBack_Refused(CancellationToken cancellationToken)
    {
        using var pair = await SocketPair.OpenAsync(cancellationToken);
        var owner = MeshLink.AcceptAsync(pair.Server, Secret, "node-o", cancellationToken);
        await MeshLink.WriteLineAsync(pair.Client, $"{MeshLink.Greeting} {Convert.ToBase64String(new byte[32])} node-f", cancellationToken);
        var answer = (await MeshLink.ReadLineAsync(pair.Client, MeshLink.MaxHandshakeLine, cancellationToken)).Split(' ');
        await MeshLink.WriteLineAsync(pair.Client, answer[2], cancellationToken);

        Assert.ThrowsAsync<MeshLinkException>(async () => await owner);
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task Accept_OversizedGreeting_RefusedWithoutReadingPastTheLimit(CancellationToken cancellationToken)
    {
        using var pair = await SocketPair.OpenAsync(cancellationToken);
        var owner = MeshLink.AcceptAsync(pair.Server, Secret, "node-o", cancellationToken);
        await pair.Client.SendAsync(Encoding.ASCII.GetBytes(new string('a', MeshLink.MaxHandshakeLine * 4)), SocketFlags.None, cancellationToken);

        var refused = Assert.ThrowsAsync<MeshLinkException>(async () => await owner);
        Assert.That(refused!.Message, Does.Contain("longer than"));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task Accept_TruncatedGreeting_Refused(CancellationToken cancellationToken)
    {
        using var pair = await SocketPair.OpenAsync(cancellationToken);
        var owner = MeshLink.AcceptAsync(pair.Server, Secret, "node-o", cancellationToken);
        await pair.Client.SendAsync(Encoding.ASCII.GetBytes(MeshLink.Greeting + " AAAA"), SocketFlags.None, cancellationToken);
        pair.Client.Shutdown(SocketShutdown.Send);

        var refused = Assert.ThrowsAsync<MeshLinkException>(async () => await owner);
        Assert.That(refused!.Message, Does.Contain("ended before"));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task Accept_MalformedGreeting_Refused(CancellationToken cancellationToken)
    {
        using var pair = await SocketPair.OpenAsync(cancellationToken);
        var owner = MeshLink.AcceptAsync(pair.Server, Secret, "node-o", cancellationToken);
        await MeshLink.WriteLineAsync(pair.Client, $"{MeshLink.Greeting} {Convert.ToBase64String(new byte[8])} node-f", cancellationToken);

        var refused = Assert.ThrowsAsync<MeshLinkException>(async () => await owner);
        Assert.That(refused!.Message, Does.Contain("malformed"));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task Accept_SilentPeer_EndsWhenTheCallersTimeoutFires(CancellationToken cancellationToken)
    {
        using var pair = await SocketPair.OpenAsync(cancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromMilliseconds(200));
        var owner = MeshLink.AcceptAsync(pair.Server, Secret, "node-o", timeout.Token);

        Assert.That(async () => await owner, Throws.InstanceOf<OperationCanceledException>());
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task Connect_AnotherNodeAnswersAtTheOwnersEndpoint_Refused(CancellationToken cancellationToken)
    {
        using var pair = await SocketPair.OpenAsync(cancellationToken);
        _ = MeshLink.AcceptAsync(pair.Server, Secret, "node-x", cancellationToken);
        var forwarder = MeshLink.ConnectAsync(pair.Client, Secret, "node-f", "node-o", cancellationToken);

        var refused = Assert.ThrowsAsync<MeshLinkException>(async () => await forwarder);
        Assert.That(refused!.Message, Does.Contain("another node"));
    }

    [Test]
    [CancelAfter(10_000)]
    public async Task ReadLine_BytesAfterTheLine_StayInTheSocket(CancellationToken cancellationToken)
    {
        using var pair = await SocketPair.OpenAsync(cancellationToken);
        await pair.Client.SendAsync(Encoding.ASCII.GetBytes("ok\npayload"), SocketFlags.None, cancellationToken);

        Assert.That(await MeshLink.ReadLineAsync(pair.Server, MeshLink.MaxAnswerLine, cancellationToken), Is.EqualTo("ok"));
        var rest = new byte[7];
        var read = 0;
        while (read < rest.Length)
        {
            read += await pair.Server.ReceiveAsync(rest.AsMemory(read), SocketFlags.None, cancellationToken);
        }

        Assert.That(Encoding.ASCII.GetString(rest), Is.EqualTo("payload"));
    }

    [Test]
    public void ParseForwardedHello_BadFields_Refused()
    {
        Assert.Multiple(() =>
        {
            Assert.That(MeshListenerService.Parse("""{"channel":"c1x","uuid":"u","lane":0,"address":"127.0.0.2","transport":"ws"}"""), Is.Not.Null);
            Assert.That(MeshListenerService.Parse("""{"channel":"c1x","uuid":"u","lane":0,"address":"127.0.0.2","transport":"ws"}""")!.Value.Transport, Is.EqualTo("ws"));
            Assert.That(MeshListenerService.Parse("""{"channel":"c1x","uuid":"u","lane":0,"address":"not-an-ip","transport":"tcp"}"""), Is.Null);
            Assert.That(MeshListenerService.Parse("""{"channel":"c1x","uuid":"","lane":0,"address":"127.0.0.2","transport":"tcp"}"""), Is.Null);
            Assert.That(MeshListenerService.Parse("""{"channel":"c1x","uuid":"u","lane":-1,"address":"127.0.0.2","transport":"tcp"}"""), Is.Null);
            Assert.That(MeshListenerService.Parse("""{"channel":"c1x","channel":"c2y","uuid":"u","lane":0,"address":"127.0.0.2"}"""), Is.Null);
            Assert.That(MeshListenerService.Parse("not json"), Is.Null);
            Assert.That(MeshListenerService.Parse("""{"channel":"c1x","uuid":"u","lane":0,"address":"127.0.0.2","transport":"evil\n"}""")!.Value.Transport, Is.EqualTo("mesh"));
        });
    }
}

using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CrocNet.Relay;
using CrocNet.Tests.EndToEnd;
using CrocNet.Tests.Transport;

namespace CrocNet.Tests.Cli;

/// <summary>
/// croc send/receive against private, WebSocket-only and https relays (--relay-password, --transport, --relay-cert), and
/// croc relay serving https with a certificate from files.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class CliRelayAccessTests : TransferTestBase
{
    private const string Password = "correct-horse-battery";

    private CrocRelayServer _private = null!;
    private CrocRelayServer _webSocketOnly = null!;

    [OneTimeSetUp]
    public async Task StartRelaysAsync()
    {
        _private = await StartAsync(r => r.Password = Password);
        _webSocketOnly = await StartAsync(r => r.Ports = []);
    }

    [OneTimeTearDown]
    public async Task StopRelaysAsync()
    {
        await _private.DisposeAsync();
        await _webSocketOnly.DisposeAsync();
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Send_PrivateRelayWithoutPassword_Exit3NamingTheVariable(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        WriteRandomFile(Path.Combine(source, "a.bin"), 1_000);

        using var send = await CliRun.CompleteAsync(["send", "--relay", _private.BaseAddress.ToString(), "--code", Croc.GenerateCode(), Path.Combine(source, "a.bin")], cancellationToken);

        Assert.That(await send.ExitAsync(cancellationToken), Is.EqualTo(3), send.Stderr);
        var error = send.Stderr.Split('\n').Single(l => l.StartsWith("error: ", StringComparison.Ordinal));
        Assert.That(error, Does.Contain("private").And.Contain("CROC_RELAY_PASSWORD").And.Contain("--relay-password").And.Not.Contain("WithRelayPassword"));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Receive_PrivateRelayWrongPassword_Exit3WithoutQuotingIt(CancellationToken cancellationToken)
    {
        const string wrong = "not-the-password-at-all";

        using var receive = await CliRun.CompleteAsync(
            ["receive", "--relay", _private.BaseAddress.ToString(), "--yes", "--out", NewFolder(), "--relay-password", wrong, Croc.GenerateCode()], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.EqualTo(3), receive.Stderr);
        Assert.That(receive.Stderr, Does.Contain("wrong").And.Contain("CROC_RELAY_PASSWORD").And.Not.Contain(wrong));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task SendReceive_PrivateRelayPasswordFromEnvironment_TransfersAndHintNeverShowsIt(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var data = WriteRandomFile(Path.Combine(source, "p.bin"), 50_000);
        var target = NewFolder();
        var code = Croc.GenerateCode();
        var environment = new Dictionary<string, string> { ["CROC_RELAY_PASSWORD"] = Password };

        using var send = new CliRun(["send", "--relay", _private.BaseAddress.ToString(), "--code", code, Path.Combine(source, "p.bin")], environment: environment, cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);
        var needs = await send.WaitForLineAsync("The relay is private", cancellationToken);
        using var receive = await CliRun.CompleteAsync(["receive", "--relay", _private.BaseAddress.ToString(), "--yes", "--out", target, code], cancellationToken, environment: environment);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.Zero, receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.Zero, send.Stderr);
        Assert.That(File.ReadAllBytes(Path.Combine(target, "p.bin")), Is.EqualTo(data));
        Assert.That(needs, Does.Contain("CROC_RELAY_PASSWORD"));
        Assert.That(send.Stderr + receive.Stderr, Does.Not.Contain(Password));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Send_EmbeddedRelayWithPassword_IsPrivateAndThePrintedCommandNeedsIt(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var data = WriteRandomFile(Path.Combine(source, "e.bin"), 20_000);
        var target = NewFolder();

        // No --relay: the built-in relay (off port 9009 for the test) takes the password too.
        using var send = new CliRun(
            ["send", "--embedded-url", "http://127.0.0.1:0", "--embedded-ports", "0,0", "--discovery-port", "0", Path.Combine(source, "e.bin")],
            environment: new Dictionary<string, string> { ["CROC_RELAY_PASSWORD"] = Password },
            cancellationToken: cancellationToken);
        var printed = await send.WaitForLineAsync("CROC_SECRET=", cancellationToken);
        Assert.That(await send.WaitForLineAsync("The relay is private", cancellationToken), Does.Contain("CROC_RELAY_PASSWORD"));
        Assert.That(printed, Does.Not.Contain(Password).And.Not.Contain("--relay-cert"));
        var words = printed.Split(' ');
        var environment = new Dictionary<string, string> { ["CROC_SECRET"] = words[0]["CROC_SECRET=".Length..] };

        using (var without = await CliRun.CompleteAsync([.. words[2..], "--yes", "--out", target], cancellationToken, environment: environment))
        {
            Assert.That(await without.ExitAsync(cancellationToken), Is.EqualTo(3), without.Stderr);
            Assert.That(without.Stderr, Does.Contain("CROC_RELAY_PASSWORD"));
        }

        environment["CROC_RELAY_PASSWORD"] = Password;
        using var receive = await CliRun.CompleteAsync([.. words[2..], "--yes", "--out", target], cancellationToken, environment: environment);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.Zero, receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.Zero, send.Stderr);
        Assert.That(File.ReadAllBytes(Path.Combine(target, "e.bin")), Is.EqualTo(data));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task SendReceive_WebSocketOnlyRelay_TransportWebSocketAndAutoTransfer(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        var data = WriteRandomFile(Path.Combine(source, "w.bin"), 200_000);
        var target = NewFolder();
        var code = Croc.GenerateCode();
        var relay = _webSocketOnly.BaseAddress.ToString();

        using var send = new CliRun(["send", "--relay", relay, "--transport", "websocket", "--code", code, Path.Combine(source, "w.bin")], cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);
        using var receive = await CliRun.CompleteAsync(
            ["receive", "--relay", relay, "--yes", "--out", target, code], cancellationToken, environment: new Dictionary<string, string> { ["CROC_TRANSPORT"] = "auto" });

        Assert.That(await receive.ExitAsync(cancellationToken), Is.Zero, receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.Zero, send.Stderr);
        Assert.That(File.ReadAllBytes(Path.Combine(target, "w.bin")), Is.EqualTo(data));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Send_TransportTcpOnWebSocketOnlyRelay_Exit3NamingTheFlag(CancellationToken cancellationToken)
    {
        var source = NewFolder();
        WriteRandomFile(Path.Combine(source, "t.bin"), 1_000);
        var code = Croc.GenerateCode();
        var relay = _webSocketOnly.BaseAddress.ToString();

        // The sender hears it at once; so does a recipient, from the relay's state, when the sender's side is fine.
        using var send = await CliRun.CompleteAsync(["send", "--relay", relay, "--transport", "tcp", "--code", Croc.GenerateCode(), Path.Combine(source, "t.bin")], cancellationToken);
        using var autoSend = new CliRun(["send", "--relay", relay, "--code", code, Path.Combine(source, "t.bin")], cancellationToken: cancellationToken);
        await autoSend.WaitForLineAsync("code: ", cancellationToken);
        using var receive = await CliRun.CompleteAsync(["receive", "--relay", relay, "--yes", "--out", NewFolder(), code], cancellationToken, environment: new Dictionary<string, string> { ["CROC_TRANSPORT"] = "tcp" });

        foreach (var side in new[] { send, receive })
        {
            Assert.That(await side.ExitAsync(cancellationToken), Is.EqualTo(3), side.Stderr);
            var error = side.Stderr.Split('\n').Single(l => l.StartsWith("error: ", StringComparison.Ordinal));
            Assert.That(error, Does.Contain("offers no TCP data ports").And.Contain("--transport is tcp").And.Contain("--transport auto or websocket"));
        }

        Assert.That(await autoSend.ExitAsync(cancellationToken), Is.Not.Zero, autoSend.Stderr);
    }

    [TestCase("send|--transport|carrier-pigeon|--text|x", "error: --transport 'carrier-pigeon' is not a transport: use auto, tcp or websocket.")]
    [TestCase("send|--relay-cert|/nonexistent/relay.pem|--text|x", "error: --relay-cert '/nonexistent/relay.pem' cannot be read as a PEM or DER certificate")]
    [TestCase("receive|--relay-cert|/nonexistent/relay.pem|--yes|k-a-b", "error: --relay-cert '/nonexistent/relay.pem' cannot be read as a PEM or DER certificate")]
    [CancelAfter(30_000)]
    public async Task Transfer_BadAccessOption_Exit1BeforeTheNetwork(string arguments, string expected, CancellationToken cancellationToken)
    {
        // A relay that does not exist: a usage error must come before any attempt to reach it.
        using var run = await CliRun.CompleteAsync([.. arguments.Split('|'), "--relay", "http://127.0.0.1:1"], cancellationToken);

        Assert.That(await run.ExitAsync(cancellationToken), Is.EqualTo(1), run.Stderr);
        Assert.That(run.Stderr, Does.StartWith(expected));
        Assert.That(run.Stderr.TrimEnd(), Does.Not.Contain("\n"));
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task RelayCommand_HttpsWithPemCertificateAndPassword_SendReceiveTrustingTheCertificate(CancellationToken cancellationToken)
    {
        var folder = NewFolder();
        using var certificate = TestCertificates.SelfSigned();
        var certPath = Path.Combine(folder, "relay.pem");
        var keyPath = Path.Combine(folder, "relay.key");
        var derPath = Path.Combine(folder, "relay.cer");
        File.WriteAllText(certPath, certificate.ExportCertificatePem());
        using (var key = certificate.GetECDsaPrivateKey()!)
        {
            File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        }

        File.WriteAllBytes(derPath, certificate.RawData);
        using var ctrlC = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var relay = new CliRun(
            ["relay", "--listen", "https://127.0.0.1:0", "--ports", "0,0", "--certificate", certPath, "--certificate-key", keyPath, "--max-channels-per-address", "100"],
            environment: new Dictionary<string, string> { ["CROC_PASSWORD"] = Password },
            cancellationToken: ctrlC.Token);
        var listening = await relay.WaitForLineAsync("relay listening at ", cancellationToken);
        var others = await relay.WaitForLineAsync("others use: ", cancellationToken);
        var url = listening.Split(' ')[3];
        Assert.That(listening, Does.StartWith("relay listening at https://127.0.0.1:").And.Contain("; https; private: relay password set"));
        Assert.That(others, Does.Contain("CROC_RELAY_PASSWORD").And.Contain("--relay-cert"));

        // Without trusting the certificate the client refuses the relay.
        var source = NewFolder();
        var data = WriteRandomFile(Path.Combine(source, "s.bin"), 100_000);
        var environment = new Dictionary<string, string> { ["CROC_RELAY_PASSWORD"] = Password };
        using (var untrusting = await CliRun.CompleteAsync(["send", "--relay", url, "--code", Croc.GenerateCode(), Path.Combine(source, "s.bin")], cancellationToken, environment: environment))
        {
            Assert.That(await untrusting.ExitAsync(cancellationToken), Is.EqualTo(3), untrusting.Stderr);
            Assert.That(untrusting.Stderr, Does.Contain("certificate was not accepted").And.Contain("trust it with --relay-cert <certificate file> (or CROC_RELAY_CERT)."));
        }

        // The sender trusts the PEM file, the recipient the DER one (from the environment).
        var target = NewFolder();
        var code = Croc.GenerateCode();
        using var send = new CliRun(["send", "--relay", url, "--relay-cert", certPath, "--code", code, Path.Combine(source, "s.bin")], environment: environment, cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);
        Assert.That(await send.WaitForLineAsync("The relay is private and its certificate self-signed", cancellationToken), Does.Contain("--relay-cert"));
        using var receive = await CliRun.CompleteAsync(
            ["receive", "--relay", url, "--yes", "--out", target, code], cancellationToken, environment: new Dictionary<string, string>(environment) { ["CROC_RELAY_CERT"] = derPath });

        Assert.That(await receive.ExitAsync(cancellationToken), Is.Zero, receive.Stderr);
        Assert.That(await send.ExitAsync(cancellationToken), Is.Zero, send.Stderr);
        Assert.That(File.ReadAllBytes(Path.Combine(target, "s.bin")), Is.EqualTo(data));
        await ctrlC.CancelAsync();
        Assert.That(await relay.ExitAsync(cancellationToken), Is.Zero, relay.Stderr);
        Assert.That(relay.Stderr + send.Stderr + receive.Stderr, Does.Not.Contain(Password));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task RelayCommand_PortsNone_WebSocketOnlyRelayServesTransfers(CancellationToken cancellationToken)
    {
        using var ctrlC = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var relay = new CliRun(["relay", "--listen", "http://127.0.0.1:0", "--ports", "none", "--quiet"], cancellationToken: ctrlC.Token);
        var listening = await relay.WaitForLineAsync("relay listening at ", cancellationToken);
        var url = listening.Split(' ')[3];
        Assert.That(listening, Does.Contain("(no TCP ports; WebSocket legs on /staple;"));

        var target = NewFolder();
        var code = Croc.GenerateCode();
        using var send = new CliRun(["send", "--relay", url, "--code", code, "--text", "over websockets"], cancellationToken: cancellationToken);
        await send.WaitForLineAsync("code: ", cancellationToken);
        using var receive = await CliRun.CompleteAsync(["receive", "--relay", url, "--yes", "--out", target, code], cancellationToken);

        Assert.That(await receive.ExitAsync(cancellationToken), Is.Zero, receive.Stderr);
        Assert.That(receive.StdoutText, Is.EqualTo("over websockets" + Environment.NewLine));
        await ctrlC.CancelAsync();
        Assert.That(await relay.ExitAsync(cancellationToken), Is.Zero, relay.Stderr);
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task RelayCommand_UnreadableCertificate_OneLineNamingTheFlag(CancellationToken cancellationToken)
    {
        var bogus = Path.Combine(NewFolder(), "relay.pfx");
        File.WriteAllBytes(bogus, RandomNumberGenerator.GetBytes(64));

        using var relay = await CliRun.CompleteAsync(["relay", "--listen", "https://127.0.0.1:0", "--ports", "0", "--certificate", bogus], cancellationToken);

        Assert.That(await relay.ExitAsync(cancellationToken), Is.EqualTo(1), relay.Stderr);
        Assert.That(relay.Stderr, Does.StartWith("error: The relay settings are invalid: Certificate (--certificate) '" + bogus + "' could not be read"));
        Assert.That(relay.Stderr.TrimEnd(), Does.Not.Contain("\n"));
    }

    private static Task<CrocRelayServer> StartAsync(Action<CrocRelayOptions> configure) => CrocRelayServer.StartAsync(o =>
    {
        o.Url = "http://127.0.0.1:0";
        o.Relay.Ports = [0, 0];
        o.Relay.ListenAddress = "127.0.0.1";
        o.Relay.MaxChannelsPerAddress = 1_000;
        o.Relay.MaxJoinsPerMinute = 100_000;
        o.Relay.MaxFailedLookupsPerMinute = 100_000;
        configure(o.Relay);
    });
}

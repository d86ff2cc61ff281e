using System.Reflection;
using CrocNet.Cli;
using CrocNet.Relay;

namespace CrocNet.Tests.Cli;

/// <summary>The table behind <c>croc relay</c>'s flags, environment variables and configuration file.</summary>
public sealed class RelaySettingsTests
{
    [Test]
    public void All_CoversEveryRelayOption()
    {
        // ListenAddress follows from --listen; everything else a relay operator can set must be settable here.
        var settable = typeof(CrocRelayOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && p.Name != nameof(CrocRelayOptions.ListenAddress))
            .Select(p => p.Name == nameof(CrocRelayOptions.AdvertisedHost) ? "Host" : p.Name);

        Assert.That(RelaySettings.All.Select(s => s.Name), Is.SupersetOf(settable).And.Contains("Listen").And.Contains("PathBase"));
    }

    [TestCase("MaxChannelsPerAddress", "--max-channels-per-address", "CROC_MAX_CHANNELS_PER_ADDRESS")]
    [TestCase("Listen", "--listen", "CROC_LISTEN")]
    [TestCase("IPv6PrefixLength", "--ipv6-prefix-length", "CROC_IPV6_PREFIX_LENGTH")]
    public void Setting_NamesFollowTheSettingName(string name, string flag, string variable)
    {
        var setting = RelaySettings.All.Single(s => s.Name == name);

        Assert.That(setting.Flag, Is.EqualTo(flag));
        Assert.That(setting.EnvironmentVariable, Is.EqualTo(variable));
    }

    [TestCase("90s", 90)]
    [TestCase("5min", 300)]
    [TestCase("5m", 300)]
    [TestCase("3h", 10800)]
    [TestCase("250ms", 0.25)]
    [TestCase("00:05:00", 300)]
    public void Time_AcceptsUnitsAndClockForm(string text, double seconds) =>
        Assert.That(RelaySettings.Time(text), Is.EqualTo(TimeSpan.FromSeconds(seconds)));

    [TestCase("soon")]
    [TestCase("-5s")]
    public void Time_Rejects(string text) =>
        Assert.That(() => RelaySettings.Time(text), Throws.TypeOf<FormatException>());

    [Test]
    public void Apply_TrustedProxiesAndWebSocketsFromFlags_ReachTheRelayOptions()
    {
        var options = Apply(["--trusted-proxies", "10.0.0.0/8,127.0.0.1", "--web-sockets", "false", "--ports", "0,0"]);

        Assert.That(options.Relay.TrustedProxies, Is.EqualTo(new[] { "10.0.0.0/8", "127.0.0.1" }));
        Assert.That(options.Relay.WebSockets, Is.False);
        Assert.That(() => CrocRelayOptionsValidator.ThrowIfInvalid(options.Relay), Throws.Nothing);
    }

    [TestCase("none")]
    [TestCase("")]
    public void Apply_PortsNone_WebSocketOnlyRelay(string ports) =>
        Assert.That(Apply(["--ports", ports]).Relay.Ports, Is.Empty);

    [Test]
    public void Apply_PortsNoneFromEnvironment_WebSocketOnlyRelay() =>
        Assert.That(Apply([], new Dictionary<string, string> { ["CROC_PORTS"] = "none" }).Relay.Ports, Is.Empty);

    [Test]
    public void Apply_CertificateSettings_MapToTheServerOptionsPasswordFromEnvironment()
    {
        var options = Apply(
            ["--listen", "https://127.0.0.1:0", "--certificate", "/etc/croc/relay.pem", "--certificate-key", "/etc/croc/relay.key"],
            new Dictionary<string, string> { ["CROC_CERTIFICATE_PASSWORD"] = "pfx-secret", ["CROC_PASSWORD"] = "relay-secret" });

        Assert.Multiple(() =>
        {
            Assert.That(options.Url, Is.EqualTo("https://127.0.0.1:0"));
            Assert.That(options.CertificatePath, Is.EqualTo("/etc/croc/relay.pem"));
            Assert.That(options.CertificateKeyPath, Is.EqualTo("/etc/croc/relay.key"));
            Assert.That(options.CertificatePassword, Is.EqualTo("pfx-secret"));
            Assert.That(options.Relay.Password, Is.EqualTo("relay-secret"));
        });
    }

    [Test]
    public void Apply_ReconnectSettings_FromFlagEnvironmentOrDefaults()
    {
        var defaults = Apply([]);
        var set = Apply(["--reconnect-window", "20s"], new Dictionary<string, string> { ["CROC_MAX_REATTACHMENTS"] = "0" });

        Assert.That((defaults.Relay.ReconnectWindow, defaults.Relay.MaxReattachments), Is.EqualTo((new CrocRelayOptions().ReconnectWindow, new CrocRelayOptions().MaxReattachments)));
        Assert.That((set.Relay.ReconnectWindow, set.Relay.MaxReattachments), Is.EqualTo((TimeSpan.FromSeconds(20), 0)));
        Assert.That(() => CrocRelayOptionsValidator.ThrowIfInvalid(set.Relay), Throws.Nothing);
    }

    [Test]
    public void All_CoversTheServerCertificateSettings() =>
        Assert.That(RelaySettings.All.Select(s => s.Name), Is.SupersetOf(new[] { "Certificate", "CertificateKey", "CertificatePassword" }));

    private static CrocRelayServerOptions Apply(string[] args, Dictionary<string, string>? environment = null)
    {
        var command = new System.CommandLine.Command("relay");
        RelaySettings.AddTo(command);
        var parse = command.Parse(args);
        Assert.That(parse.Errors, Is.Empty);
        var options = new CrocRelayServerOptions();
        RelaySettings.Apply(options, parse, name => environment is not null && environment.TryGetValue(name, out var value) ? value : null);
        return options;
    }
}

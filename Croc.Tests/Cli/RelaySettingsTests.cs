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
}

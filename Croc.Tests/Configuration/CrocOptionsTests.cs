using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CrocNet.Tests.Configuration;

public class CrocOptionsTests
{
    [Test]
    public void New_SeveralInvalidOptions_ThrowsOneAggregatedError()
    {
        var ex = Assert.Throws<CrocException>(() => Croc.New(o => o
            .WithCurve("p999")
            .WithRelay(new Uri("ftp://relay.example"))
            .WithPeerTimeout(TimeSpan.Zero)
            .WithCode("has space-in it")));

        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.InvalidOptions));
        Assert.That(ex.Message, Does.Contain("p999").And.Contain("ftp://").And.Contain("PeerTimeout").And.Contain("Code"));
    }

    [TestCase("PeerTimeout", 0.5)]
    [TestCase("PeerTimeout", 8 * 86400.0)]
    [TestCase("ChannelWaitTimeout", -1.0)]
    [TestCase("ChannelWaitTimeout", 2 * 86400.0)]
    [TestCase("IdleTimeout", 0.0)]
    [TestCase("IdleTimeout", 2 * 86400.0)]
    [TestCase("RetryBaseDelay", -0.001)]
    [TestCase("RetryBaseDelay", 61.0)]
    public void Validate_DurationOutOfRange_FailsNamingTheSetting(string name, double seconds)
    {
        var options = new CrocOptions();
        var value = TimeSpan.FromSeconds(seconds);
        switch (name)
        {
            case "PeerTimeout": options.PeerTimeout = value; break;
            case "ChannelWaitTimeout": options.ChannelWaitTimeout = value; break;
            case "IdleTimeout": options.IdleTimeout = value; break;
            case "RetryBaseDelay": options.RetryBaseDelay = value; break;
        }

        var result = new CrocOptionsValidator().Validate(null, options);

        Assert.That(result.Failed, Is.True);
        Assert.That(result.Failures, Has.Exactly(1).StartsWith(name + " must be between"));
    }

    [Test]
    public void Validate_Defaults_Succeed() => Assert.That(new CrocOptionsValidator().Validate(null, new CrocOptions()).Succeeded, Is.True);

    [Test]
    public void WithRelay_NotAUrl_ThrowsInvalidOptions()
    {
        Assert.That(Assert.Throws<CrocException>(() => Croc.New(o => o.WithRelay("not a url")))!.Code, Is.EqualTo(CrocErrorCode.InvalidOptions));
    }

    [Test]
    public void New_ValidOptions_KeepsACopy()
    {
        var croc = Croc.New(o => o.WithCurve("p384").WithRelay("http://127.0.0.1:1"));
        croc.Options.Curve = "p521";

        Assert.That(croc.Options.Curve, Is.EqualTo("p384"), "the instance is immutable");
    }

    [Test]
    public void AddCroc_InvalidConfiguration_ThrowsTheSameAggregatedError()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Croc:Curve"] = "p999", ["Croc:MaxRetries"] = "99" })
            .Build();
        using var provider = new ServiceCollection().AddCroc(configuration.GetSection("Croc")).BuildServiceProvider();

        var ex = Assert.Throws<CrocException>(() => provider.GetRequiredService<Croc>());

        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.InvalidOptions));
        Assert.That(ex.Message, Does.Contain("p999").And.Contain("MaxRetries"));
    }

    [Test]
    public void AddCroc_ValidConfiguration_ResolvesOneSharedInstance()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Croc:Curve"] = "siec", ["Croc:Relay"] = "http://127.0.0.1:9", ["Croc:IdleTimeout"] = "00:00:05" })
            .Build();
        using var provider = new ServiceCollection().AddCroc(configuration.GetSection("Croc"), o => o.WithOutputDirectory("/tmp")).BuildServiceProvider();

        var croc = provider.GetRequiredService<Croc>();

        Assert.That(provider.GetRequiredService<Croc>(), Is.SameAs(croc));
        Assert.That(croc.Options.Curve, Is.EqualTo("siec"));
        Assert.That(croc.Options.IdleTimeout, Is.EqualTo(TimeSpan.FromSeconds(5)));
        Assert.That(croc.Options.OutputDirectory, Is.EqualTo("/tmp"));
    }
}

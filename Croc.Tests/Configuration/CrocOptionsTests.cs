using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CrocNet.Tests.Configuration;

public class CrocOptionsTests
{
    /// <summary>The whole message every path reports for the same three problems.</summary>
    private const string ThreeProblems =
        "PeerTimeout must be between 00:00:01 and 7.00:00:00; 00:00:00 is not.; " +
        "Relay 'not a url' is not an absolute URL such as http://127.0.0.1:9009.; " +
        "Curve 'p999' is not supported; use one of: p256, p384, p521, siec.";

    private static void Misconfigure(CrocOptionsBuilder o) => o.WithCurve("p999").WithRelay("not a url").WithPeerTimeout(TimeSpan.Zero);

    [Test]
    public void New_SeveralInvalidOptions_ThrowsOneAggregatedError()
    {
        var ex = Assert.Throws<OptionsValidationException>(() => Croc.New(Misconfigure));

        Assert.That(ex!.Message, Is.EqualTo(ThreeProblems));
        Assert.That(ex.Failures.Count(), Is.EqualTo(3));
    }

    [Test]
    public void Constructor_SeveralInvalidOptions_ThrowsTheSameError()
    {
        var options = new CrocOptions { Curve = "p999", PeerTimeout = TimeSpan.Zero, Relay = new Uri("ftp://relay.example") };

        var ex = Assert.Throws<OptionsValidationException>(() => _ = new Croc(Options.Create(options)));

        Assert.That(ex!.Message, Is.EqualTo(
            "PeerTimeout must be between 00:00:01 and 7.00:00:00; 00:00:00 is not.; " +
            "Relay must be an absolute http:// or https:// URL; 'ftp://relay.example' is not.; " +
            "Curve 'p999' is not supported; use one of: p256, p384, p521, siec."));
    }

    [Test]
    public void AddCroc_SeveralInvalidOptions_ResolvingThrowsTheSameError()
    {
        using var provider = new ServiceCollection().AddCroc(Misconfigure).BuildServiceProvider();

        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<Croc>());

        Assert.That(ex!.Message, Is.EqualTo(ThreeProblems));
    }

    [Test]
    [CancelAfter(30_000)]
    public void AddCroc_SeveralInvalidOptions_HostStartThrowsTheSameError(CancellationToken cancellationToken)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddCroc(Misconfigure);
        using var host = builder.Build();

        var ex = Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(cancellationToken));

        Assert.That(ex!.Message, Is.EqualTo(ThreeProblems));
    }

    [Test]
    public void CrocOptions_EveryPublicProperty_IsBindableData()
    {
        // Services and callbacks live on the builder or in ReceiveOptions/SendOptions, never in the bindable POCO.
        Type[] bindable = [typeof(string), typeof(Uri), typeof(TimeSpan), typeof(int), typeof(CrocOverwritePolicy), typeof(CrocHashAlgorithm), typeof(CrocTransport)];
        var properties = typeof(CrocOptions).GetProperties();

        Assert.That(properties.Select(p => p.Name), Is.EquivalentTo(new[]
        {
            "Relay", "Curve", "OutputDirectory", "Overwrite", "FileHash", "PeerTimeout", "ChannelWaitTimeout", "IdleTimeout", "MaxRetries", "RetryBaseDelay",
            "Transport", "RelayPassword", "ReconnectAttempts", "ReconnectTimeout",
        }));
        Assert.That(properties.Where(p => !bindable.Contains(p.PropertyType)).Select(p => p.Name), Is.Empty);
    }

    [Test]
    public void AddCroc_BuilderSuppliesServices_OptionsInstanceIsNotTouched()
    {
        var services = new ServiceCollection().AddLogging();
        using var provider = services.AddCroc(o => o.WithRelay("http://127.0.0.1:9").UseTimeProvider(TimeProvider.System)).BuildServiceProvider();
        var before = provider.GetRequiredService<IOptions<CrocOptions>>().Value;
        var snapshot = Clone(before);

        _ = provider.GetRequiredService<Croc>();

        Assert.That(Clone(before), Is.EqualTo(snapshot), "resolving Croc changes nothing in the shared options");
        static string Clone(CrocOptions o) => string.Join("|", typeof(CrocOptions).GetProperties().Select(p => p.GetValue(o)?.ToString()));
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

    [TestCase("ftp://user:s3cret@relay.example/", "Relay must be an absolute http:// or https:// URL; 'ftp://***@relay.example/' is not.")]
    [TestCase("user:s3cret@relay example", "Relay must be an absolute http:// or https:// URL; '***@relay example' is not.")]
    [TestCase("http://user:s3cret@relay example", "Relay 'http://***@relay example' is not an absolute URL such as http://127.0.0.1:9009.")]
    public void Validate_RelayWithCredentials_NeverQuotesThem(string relay, string expected)
    {
        var ex = Assert.Throws<OptionsValidationException>(() => Croc.New(o => o.WithRelay(relay)));

        Assert.That(ex!.Message, Is.EqualTo(expected));
    }

    [Test]
    public void AddCroc_Twice_BothBuildersServicesAreKept()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var services = new ServiceCollection();
        services.AddCroc(o => o.WithRelay("http://127.0.0.1:9"));
        services.AddCroc(o => o.UseTimeProvider(time).WithCurve("p384"));
        using var provider = services.BuildServiceProvider();

        var croc = provider.GetRequiredService<Croc>();

        Assert.That(croc.Options.Curve, Is.EqualTo("p384"));
        Assert.That(croc.Options.Relay, Is.EqualTo(new Uri("http://127.0.0.1:9")));
        Assert.That(croc.Runtime.Time, Is.SameAs(time), "the second call's service is not dropped");
    }

    [Test]
    public void WithRelay_NotAUrl_ReportedByValidationNotByTheBuilder()
    {
        var builderReturned = false;

        var ex = Assert.Throws<OptionsValidationException>(() => Croc.New(o => builderReturned = o.WithRelay("not a url") is not null));

        Assert.That(builderReturned, Is.True, "the chain is not interrupted");
        Assert.That(ex!.Message, Is.EqualTo("Relay 'not a url' is not an absolute URL such as http://127.0.0.1:9009."));
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

        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<Croc>());

        Assert.That(ex!.Message, Is.EqualTo(
            "MaxRetries: The field CrocOptions.MaxRetries must be between 0 and 20.; Curve 'p999' is not supported; use one of: p256, p384, p521, siec."));
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

    [TestCase("")]
    [TestCase(" leading-space")]
    [TestCase("trailing-space ")]
    [TestCase("tab\there")]
    [TestCase("n\u00e4ive")]
    public void Validate_UnusableRelayPassword_FailsWithoutQuotingIt(string password)
    {
        var ex = Assert.Throws<OptionsValidationException>(() => Croc.New(o => o.WithRelayPassword(password)));

        Assert.That(ex!.Message, Does.StartWith("RelayPassword must be"));
        if (password.Trim().Length > 0)
        {
            Assert.That(ex.Message, Does.Not.Contain(password.Trim()));
        }
    }

    [Test]
    public void Validate_LongestPrintablePassword_Accepted() =>
        Assert.That(Croc.New(o => o.WithRelayPassword(new string('~', 256)).WithTransport(CrocTransport.WebSocket)).Options.RelayPassword, Has.Length.EqualTo(256));

    [Test]
    public void Validate_UnknownTransport_FailsNamingTheChoices()
    {
        var ex = Assert.Throws<OptionsValidationException>(() => Croc.New(o => o.WithTransport((CrocTransport)7)));

        Assert.That(ex!.Message, Is.EqualTo("Transport '7' is not a known transport; use Auto, Tcp or WebSocket."));
    }

    [Test]
    public void AddCroc_Configuration_BindsTransportAndRelayPassword()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Croc:Transport"] = "WebSocket", ["Croc:RelayPassword"] = "from config" })
            .Build();
        using var provider = new ServiceCollection().AddCroc(configuration.GetSection("Croc")).BuildServiceProvider();

        var croc = provider.GetRequiredService<Croc>();

        Assert.That((croc.Options.Transport, croc.Options.RelayPassword), Is.EqualTo((CrocTransport.WebSocket, "from config")));
    }

    [Test]
    public void Defaults_TransportAutoAndNoPassword() =>
        Assert.That((new CrocOptions().Transport, new CrocOptions().RelayPassword), Is.EqualTo((CrocTransport.Auto, (string?)null)));
}

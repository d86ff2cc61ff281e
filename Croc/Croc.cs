using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CrocNet;

/// <summary>
/// Sends and receives files end to end encrypted through a Croc relay. Build one with
/// <see cref="New(Action{CrocOptionsBuilder})"/> or from DI (<c>services.AddCroc(...)</c>).
/// An instance is immutable and thread-safe: every call runs its own session, so one instance
/// can serve a whole application.
/// </summary>
public sealed class Croc
{
    private readonly CrocOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;

    /// <summary>Creates an instance from DI-style options; invalid options throw one aggregated <see cref="CrocException"/>.</summary>
    public Croc(IOptions<CrocOptions> options, ILogger<Croc> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value.Clone();
        CrocOptionsValidator.ThrowIfInvalid(_options);
        _loggerFactory = _options.LoggerFactory ?? NullLoggerFactory.Instance;
        _logger = logger ?? (ILogger)_loggerFactory.CreateLogger<Croc>();
    }

    /// <summary>Builds an instance with the fluent options builder, for example
    /// <c>Croc.New(o =&gt; o.WithCurve("p256").WithRelay(url))</c>.</summary>
    /// <exception cref="CrocException">The options are invalid (code <see cref="CrocErrorCode.InvalidOptions"/>); the message lists every problem.</exception>
    public static Croc New(Action<CrocOptionsBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var options = new CrocOptions();
        configure(new CrocOptionsBuilder(options));
        var factory = options.LoggerFactory ?? NullLoggerFactory.Instance;
        return new Croc(Microsoft.Extensions.Options.Options.Create(options), factory.CreateLogger<Croc>());
    }

    /// <summary>Generates a fresh code (<c>&lt;channel&gt;-&lt;word&gt;-&lt;word&gt;-&lt;word&gt;</c>) to pass to <see cref="CrocOptionsBuilder.WithCode(string)"/>.</summary>
    public static string GenerateCode() => Codes.CodePhrase.Generate().Code;

    /// <summary>A copy of the validated options this instance runs with.</summary>
    public CrocOptions Options => _options.Clone();
}

using Microsoft.Extensions.Options;

namespace CrocNet;

/// <summary>Checks the DataAnnotations on <see cref="CrocOptions"/> (source-generated, no reflection).</summary>
[OptionsValidator]
internal sealed partial class CrocOptionsAnnotationsValidator : IValidateOptions<CrocOptions>;

/// <summary>The rules attributes cannot say: known curve, usable relay URL, duration bounds, known enum values.</summary>
internal sealed class CrocOptionsValidator : IValidateOptions<CrocOptions>
{
    private static readonly CrocOptionsAnnotationsValidator Annotations = new();

    private readonly CrocServices? _services;

    public CrocOptionsValidator()
    {
    }

    /// <summary>Also checks the services the builder supplied against the options (they are reported together).</summary>
    public CrocOptionsValidator(CrocServices? services) => _services = services;

    public ValidateOptionsResult Validate(string? name, CrocOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        var annotations = Annotations.Validate(name, options);
        if (annotations.Failed)
        {
            failures.AddRange(annotations.Failures);
        }

        // Duration ranges are checked here rather than by [Range(typeof(TimeSpan), ...)]: that attribute parses its
        // bounds by reflection, which trimming and native AOT cannot guarantee.
        CheckRange(failures, nameof(CrocOptions.PeerTimeout), options.PeerTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromDays(7));
        CheckRange(failures, nameof(CrocOptions.ChannelWaitTimeout), options.ChannelWaitTimeout, TimeSpan.Zero, TimeSpan.FromDays(1));
        CheckRange(failures, nameof(CrocOptions.IdleTimeout), options.IdleTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromDays(1));
        CheckRange(failures, nameof(CrocOptions.RetryBaseDelay), options.RetryBaseDelay, TimeSpan.Zero, TimeSpan.FromMinutes(1));
        CheckRange(failures, nameof(CrocOptions.ReconnectTimeout), options.ReconnectTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));

        if (options.UnparsedRelay is { } text)
        {
            failures.Add($"Relay '{Redact(text)}' is not an absolute URL such as http://127.0.0.1:9009.");
        }
        else if (options.Relay is { } relay && (!relay.IsAbsoluteUri || (relay.Scheme != Uri.UriSchemeHttp && relay.Scheme != Uri.UriSchemeHttps)))
        {
            failures.Add($"Relay must be an absolute http:// or https:// URL; '{Redact(relay.OriginalString)}' is not.");
        }

        if (!Pake.Spake2Suite.TryGet(options.Curve, out _))
        {
            failures.Add($"Curve '{options.Curve}' is not supported; use one of: {string.Join(", ", Pake.Spake2Suite.Names)}.");
        }

        if (options.OutputDirectory is { } output && (output.Length == 0 || output.AsSpan().IndexOfAny(Path.GetInvalidPathChars()) >= 0))
        {
            failures.Add("OutputDirectory must be a non-empty, valid path.");
        }

        if (!Enum.IsDefined(options.Overwrite))
        {
            failures.Add($"Overwrite '{options.Overwrite}' is not a known policy.");
        }

        if (!Enum.IsDefined(options.FileHash))
        {
            failures.Add($"FileHash '{options.FileHash}' is not a known algorithm.");
        }

        if (!Enum.IsDefined(options.Transport))
        {
            failures.Add($"Transport '{options.Transport}' is not a known transport; use Auto, Tcp or WebSocket.");
        }

        if (options.RelayPassword is { } password && !IsUsablePassword(password))
        {
            // Never quote the password, not even a part of it.
            failures.Add("RelayPassword must be 1-256 printable ASCII characters without leading or trailing spaces (it travels in an HTTP header), or unset.");
        }

        if (_services is { HttpHandler: not null, TrustedRelayCertificate: not null })
        {
            failures.Add(
                "TrustRelayCertificate cannot apply to a handler given with UseHttpMessageHandler: the instance would not own its certificate checks. " +
                "Either trust the certificate in that handler (SslOptions.RemoteCertificateValidationCallback) or drop UseHttpMessageHandler.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static bool IsUsablePassword(string password) =>
        password.Length is > 0 and <= 256 && password[0] != ' ' && password[^1] != ' ' && password.All(c => c is >= ' ' and <= '~');

    /// <summary>A relay address for a message: any credentials in it (<c>user:password@</c>) become <c>***@</c>.</summary>
    internal static string Redact(string address)
    {
        var at = address.LastIndexOf('@');
        if (at < 0)
        {
            return address;
        }

        var scheme = address.IndexOf("://", StringComparison.Ordinal);
        var start = scheme >= 0 && scheme < at ? scheme + 3 : 0;
        return string.Concat(address.AsSpan(0, start), "***", address.AsSpan(at));
    }

    private static void CheckRange(List<string> failures, string name, TimeSpan value, TimeSpan min, TimeSpan max)
    {
        if (value < min || value > max)
        {
            failures.Add(FormattableString.Invariant($"{name} must be between {min} and {max}; {value} is not."));
        }
    }

    /// <summary>Validates and throws the one error every path throws: an <see cref="OptionsValidationException"/> listing every problem.</summary>
    public static void ThrowIfInvalid(CrocOptions options, CrocServices? services = null)
    {
        var result = new CrocOptionsValidator(services).Validate(Microsoft.Extensions.Options.Options.DefaultName, options);
        if (result.Failed)
        {
            throw new OptionsValidationException(Microsoft.Extensions.Options.Options.DefaultName, typeof(CrocOptions), result.Failures);
        }
    }
}

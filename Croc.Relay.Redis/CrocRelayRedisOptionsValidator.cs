using Microsoft.Extensions.Options;

namespace CrocNet.Relay.Redis;

/// <summary>The rules of <see cref="CrocRelayRedisOptions"/>, each failure naming its setting.</summary>
internal sealed class CrocRelayRedisOptionsValidator : IValidateOptions<CrocRelayRedisOptions>
{
    public const int MaxLength = 64;

    public ValidateOptionsResult Validate(string? name, CrocRelayRedisOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (string.IsNullOrEmpty(options.KeyPrefix) || options.KeyPrefix.Length > MaxLength
            || options.KeyPrefix.Any(c => c is '{' or '}' or '*' or '?' or '[' or ']' or '\\' || char.IsWhiteSpace(c) || char.IsControl(c)))
        {
            failures.Add(FormattableString.Invariant($"KeyPrefix must be 1-{MaxLength} characters without braces, glob characters (* ? [ ] \\), spaces or control characters (e.g. \"croc:\")."));
        }

        if (string.IsNullOrEmpty(options.NodeId) || options.NodeId.Length > MaxLength
            || !options.NodeId.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            failures.Add(FormattableString.Invariant($"NodeId must be 1-{MaxLength} characters of letters, digits, '-', '_' and '.'."));
        }

        if (options.CommandTimeout < TimeSpan.FromMilliseconds(100) || options.CommandTimeout > TimeSpan.FromSeconds(30))
        {
            failures.Add(FormattableString.Invariant($"CommandTimeout must be between 00:00:00.1 and 00:00:30; {options.CommandTimeout} is not."));
        }

        if (options.KeyTtlMargin < TimeSpan.FromSeconds(10) || options.KeyTtlMargin > TimeSpan.FromDays(1))
        {
            failures.Add(FormattableString.Invariant($"KeyTtlMargin must be between 00:00:10 and 1.00:00:00; {options.KeyTtlMargin} is not."));
        }

        return failures.Count > 0 ? ValidateOptionsResult.Fail(failures) : ValidateOptionsResult.Success;
    }
}

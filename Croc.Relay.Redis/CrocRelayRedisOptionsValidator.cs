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

        if (options.MeshSecret is { } secret && (secret.Length < 16 || secret.Length > 1024 || secret.Any(char.IsControl)))
        {
            // Never echo the secret.
            failures.Add("MeshSecret must be 16-1024 characters without control characters (e.g. 32 random bytes in base64), or unset.");
        }

        if (!System.Net.IPAddress.TryParse(options.MeshListenAddress, out var listen))
        {
            failures.Add(FormattableString.Invariant($"MeshListenAddress must be an IP address (e.g. \"10.0.0.5\" or \"0.0.0.0\"); '{options.MeshListenAddress}' is not."));
        }
        else if (options.MeshSecret is not null && options.MeshAdvertisedHost is null && (listen.Equals(System.Net.IPAddress.Any) || listen.Equals(System.Net.IPAddress.IPv6Any)))
        {
            failures.Add("MeshListenAddress is a wildcard: set MeshAdvertisedHost to the name or address other nodes dial.");
        }

        if (options.MeshPort is < 0 or > 65535)
        {
            failures.Add(FormattableString.Invariant($"MeshPort must be between 0 and 65535; {options.MeshPort} is not."));
        }

        if (options.MeshAdvertisedHost is { } host && (host.Length is 0 or > 253 || host.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '/' or '[' or ']')))
        {
            failures.Add("MeshAdvertisedHost must be a host name or address (1-253 characters, no spaces, slashes or brackets), or unset.");
        }

        return failures.Count > 0 ? ValidateOptionsResult.Fail(failures) : ValidateOptionsResult.Success;
    }
}

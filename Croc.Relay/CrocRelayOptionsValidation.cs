using System.Net;
using Microsoft.Extensions.Options;

namespace CrocNet.Relay;

/// <summary>Checks the DataAnnotations on <see cref="CrocRelayOptions"/> (source-generated, no reflection).</summary>
[OptionsValidator]
internal sealed partial class CrocRelayOptionsAnnotationsValidator : IValidateOptions<CrocRelayOptions>;

/// <summary>The rules attributes cannot say: port ranges and uniqueness, a parsable listen address, a usable host.</summary>
internal sealed class CrocRelayOptionsValidator : IValidateOptions<CrocRelayOptions>
{
    private const int MaxPorts = 64;
    private static readonly CrocRelayOptionsAnnotationsValidator Annotations = new();

    public ValidateOptionsResult Validate(string? name, CrocRelayOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        var annotations = Annotations.Validate(name, options);
        if (annotations.Failed)
        {
            failures.AddRange(annotations.Failures);
        }

        // Duration ranges and the list length are checked here rather than by [Range(typeof(TimeSpan), ...)] and
        // [MinLength]/[MaxLength]: those attributes work by reflection, which trimming and native AOT cannot guarantee.
        // At least 10 s: a key exchange can take over a second on a cold, busy machine, and a shorter channel lifetime
        // would refuse real clients (found by running the client against relays at the edge of every setting).
        CheckRange(failures, nameof(CrocRelayOptions.ChannelExpiry), options.ChannelExpiry, TimeSpan.FromSeconds(10), TimeSpan.FromDays(30));
        CheckRange(failures, nameof(CrocRelayOptions.HandshakeExpiry), options.HandshakeExpiry, TimeSpan.FromSeconds(10), TimeSpan.FromDays(30));
        CheckRange(failures, nameof(CrocRelayOptions.ClosedRetention), options.ClosedRetention, TimeSpan.Zero, TimeSpan.FromDays(1));
        CheckRange(failures, nameof(CrocRelayOptions.HelloTimeout), options.HelloTimeout, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(10));
        CheckRange(failures, nameof(CrocRelayOptions.WaitingTimeout), options.WaitingTimeout, TimeSpan.FromMilliseconds(10), TimeSpan.FromDays(1));
        CheckRange(failures, nameof(CrocRelayOptions.MaxWait), options.MaxWait, TimeSpan.Zero, TimeSpan.FromMinutes(5));
        CheckRange(failures, nameof(CrocRelayOptions.PipeIdleTimeout), options.PipeIdleTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromDays(1));

        if (options.ReconnectWindow <= TimeSpan.Zero || options.ReconnectWindow > options.ChannelExpiry)
        {
            failures.Add(FormattableString.Invariant($"ReconnectWindow must be longer than zero and at most ChannelExpiry ({options.ChannelExpiry}); {options.ReconnectWindow} is not."));
        }

        if (options.MaxConnections is < 1 or > 1_000_000)
        {
            failures.Add(FormattableString.Invariant($"MaxConnections must be between 1 and 1000000, or unset; {options.MaxConnections} is not."));
        }

        if (options.Ports is { } ports)
        {
            if (ports.Count > MaxPorts)
            {
                failures.Add(FormattableString.Invariant($"Ports must list at most {MaxPorts} ports; it lists {ports.Count}."));
            }

            if (ports.Count == 0 && !options.WebSockets)
            {
                failures.Add("Ports is empty and WebSockets is off: legs could not reach the relay at all; list ports, or turn WebSockets on.");
            }

            if (ports.Count > 0 && options.Lanes is { } lanes && lanes != ports.Count)
            {
                failures.Add(FormattableString.Invariant($"Lanes ({lanes}) must equal the number of ports ({ports.Count}), or be unset: lane i is served by Ports[i]."));
            }

            foreach (var port in ports)
            {
                if (port is < 0 or > IPEndPoint.MaxPort)
                {
                    failures.Add($"Ports: {port} is not a TCP port; use 1-65535, or 0 for an ephemeral port.");
                }
            }

            var duplicates = ports.Where(p => p != 0).GroupBy(p => p).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
            if (duplicates.Count > 0)
            {
                failures.Add($"Ports: {string.Join(", ", duplicates)} listed more than once; each port can be offered once.");
            }
        }

        if (options.Lanes is < 1 or > MaxPorts)
        {
            failures.Add(FormattableString.Invariant($"Lanes must be between 1 and {MaxPorts}, or unset; {options.Lanes} is not."));
        }

        CheckRange(failures, nameof(CrocRelayOptions.WebSocketKeepAliveInterval), options.WebSocketKeepAliveInterval, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(10));

        if (options.TrustedProxies is { } proxies)
        {
            foreach (var proxy in proxies)
            {
                if (!Net.IPNetworkList.TryParseEntry(proxy, out _))
                {
                    failures.Add($"TrustedProxies: '{proxy}' is not an IP address or a network in CIDR form (e.g. 10.0.0.0/8, ::1).");
                }
            }
        }

        if (options.ForwardedHeader is not ("X-Forwarded-For" or "Forwarded"))
        {
            failures.Add($"ForwardedHeader must be X-Forwarded-For or Forwarded; '{options.ForwardedHeader}' is not.");
        }

        if (options.TrustedProxies is null)
        {
            failures.Add("TrustedProxies must be a list (empty for none), not null.");
        }

        if (options.Password is { } password
            && (password.Length is 0 or > 256 || password.Any(c => c is < ' ' or > '~') || password[0] == ' ' || password[^1] == ' '))
        {
            // Never quote the password itself. It travels in an HTTP header, which carries printable ASCII and loses
            // outer spaces.
            failures.Add("Password must be 1-256 printable ASCII characters, without leading or trailing spaces, or unset.");
        }

        if (options.ListenAddress is { } address && !IPAddress.TryParse(address, out _))
        {
            failures.Add($"ListenAddress '{address}' is not an IP address; use e.g. 0.0.0.0, ::, or 127.0.0.1.");
        }

        if (options.AdvertisedHost is { } host && Uri.CheckHostName(host) == UriHostNameType.Unknown)
        {
            failures.Add($"AdvertisedHost '{host}' is not a valid host name or address.");
        }

        // One transfer waits on every port at once, and both participants may connect from one address: limits below
        // that would refuse every transfer.
        // The lanes a transfer uses: one per port, or Lanes (default 4) on a relay without TCP listeners.
        var portCount = options.Ports is { Count: > 0 } listed ? listed.Count : options.Lanes ?? 4;
        if (options.MaxWaitingConnections < portCount || options.MaxWaitingConnectionsPerAddress < portCount)
        {
            failures.Add(FormattableString.Invariant($"MaxWaitingConnections and MaxWaitingConnectionsPerAddress must be at least the number of ports ({portCount}): one transfer waits on every port (lane)."));
        }

        if (options.MaxConnections < 2 * portCount || options.MaxConnectionsPerAddress < 2 * portCount)
        {
            failures.Add(FormattableString.Invariant($"MaxConnections and MaxConnectionsPerAddress must be at least twice the number of ports ({2 * portCount}): both participants may connect from one address."));
        }

        if (options.HelloTimeout >= options.ChannelExpiry)
        {
            failures.Add("HelloTimeout must be shorter than ChannelExpiry.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void CheckRange(List<string> failures, string name, TimeSpan value, TimeSpan min, TimeSpan max)
    {
        if (value < min || value > max)
        {
            failures.Add(FormattableString.Invariant($"{name} must be between {min} and {max}; {value} is not."));
        }
    }

    /// <summary>Validates and throws one aggregated, readable <see cref="OptionsValidationException"/>.</summary>
    public static void ThrowIfInvalid(CrocRelayOptions options)
    {
        var result = new CrocRelayOptionsValidator().Validate(Options.DefaultName, options);
        if (result.Failed)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(CrocRelayOptions), result.Failures);
        }
    }
}

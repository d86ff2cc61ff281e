using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using CrocNet.Relay;

namespace CrocNet.Cli;

/// <summary>
/// Every setting of <c>croc relay</c>, each from three places: a flag (<c>--max-channels</c>), an environment
/// variable (<c>CROC_MAX_CHANNELS</c>) and a key of the optional JSON configuration file (<c>"MaxChannels"</c>,
/// case-insensitive), in that order of precedence over the relay's defaults.
/// </summary>
/// <remarks>One table drives the flags, the help, the environment and the file, so none of them can forget a setting.</remarks>
internal static class RelaySettings
{
    /// <summary>Names the configuration file; also <c>CROC_CONFIG</c>.</summary>
    public static readonly Option<string?> ConfigOption = new("--config")
    {
        Description = "A JSON file of settings, e.g. {\"Listen\": \"http://0.0.0.0:9009\", \"MaxChannels\": 500} (env CROC_CONFIG). Flags and environment variables win over it.",
    };

    /// <summary>The settings, in help order.</summary>
    public static readonly IReadOnlyList<Setting> All =
    [
        new("Listen", "url", "The address to listen on: http://, or https:// with --certificate (http://[::]:port listens on IPv6 and IPv4).", LocalRelay.DefaultUrl, (s, v) => s.Url = ListenUrl(v), Alias: "--url"),
        new("Ports", "ports", "The TCP ports for the data connections: a range (9010-9013) or a list (9010,9011); \"none\" (or empty) for a WebSocket-only relay.", LocalRelay.DefaultPorts, (s, v) => s.Relay.Ports = Ports(v)),
        new("Host", "host", "The host name or address clients should use for the TCP ports (default: the relay URL's host).", null, (s, v) => s.Relay.AdvertisedHost = v),
        new("PathBase", "path", "A path prefix the relay is served under, e.g. /croc (default: none).", null, (s, v) => s.PathBase = v),
        new("ChannelExpiry", "duration", "How long a channel may live in all.", "3h", (s, v) => s.Relay.ChannelExpiry = Time(v)),
        new("HandshakeExpiry", "duration", "How long a channel may take to complete its handshake.", "10min", (s, v) => s.Relay.HandshakeExpiry = Time(v)),
        new("ClosedRetention", "duration", "How long a closed channel is remembered (so late requests hear 'closed').", "1min", (s, v) => s.Relay.ClosedRetention = Time(v)),
        new("HelloTimeout", "duration", "How long a new TCP connection has to send its hello.", "5s", (s, v) => s.Relay.HelloTimeout = Time(v)),
        new("MaxPendingHellos", "n", "The most TCP connections that have not yet sent their hello, relay-wide.", "1000", (s, v) => s.Relay.MaxPendingHellos = Count(v)),
        new("MaxPendingHellosPerAddress", "n", "The same, per client address.", "32", (s, v) => s.Relay.MaxPendingHellosPerAddress = Count(v)),
        new("WaitingTimeout", "duration", "How long a TCP connection may wait for its peer.", "5min", (s, v) => s.Relay.WaitingTimeout = Time(v)),
        new("MaxChannels", "n", "The most channels kept at once.", "10000", (s, v) => s.Relay.MaxChannels = Count(v)),
        new("MaxChannelsPerAddress", "n", "The most open channels one client address may create.", "16", (s, v) => s.Relay.MaxChannelsPerAddress = Count(v)),
        new("MaxBodySize", "bytes", "The largest HTTP request body.", "16384", (s, v) => s.Relay.MaxBodySize = Count(v)),
        new("MaxWaitingConnections", "n", "The most TCP connections waiting for their peer, relay-wide.", "1000", (s, v) => s.Relay.MaxWaitingConnections = Count(v)),
        new("MaxWait", "duration", "The longest long-poll a client may ask for.", "30s", (s, v) => s.Relay.MaxWait = Time(v)),
        new("PipeIdleTimeout", "duration", "How long a joined pair of connections may stay silent.", "30min", (s, v) => s.Relay.PipeIdleTimeout = Time(v)),
        new("ReconnectWindow", "duration", "How long a lane whose pair of connections broke (or finished) may take new ones from the same participants.", "60s", (s, v) => s.Relay.ReconnectWindow = Time(v)),
        new("MaxReattachments", "n", "How often one channel may reconnect its lanes; 0 turns reconnecting off.", "16", (s, v) => s.Relay.MaxReattachments = Count(v)),
        new("PipeBufferSize", "bytes", "The size of each copy buffer.", "131072", (s, v) => s.Relay.PipeBufferSize = Count(v)),
        new("MaxConnections", "n", "The most TCP data connections open at once, relay-wide (default: derived from the file-descriptor limit).", null, (s, v) => s.Relay.MaxConnections = Count(v)),
        new("MaxConnectionsPerAddress", "n", "The most TCP data connections from one client address (an IPv6 /64 counts as one).", "256", (s, v) => s.Relay.MaxConnectionsPerAddress = Count(v)),
        new("MaxWaitingConnectionsPerAddress", "n", "The most TCP connections one client address may keep waiting for their peer.", "16", (s, v) => s.Relay.MaxWaitingConnectionsPerAddress = Count(v)),
        new("IPv6PrefixLength", "bits", "How many leading bits of an IPv6 address name one client for the per-address limits.", "64", (s, v) => s.Relay.IPv6PrefixLength = Count(v)),
        new("MaxJoinsPerMinute", "n", "The most joins one client address may make per minute.", "120", (s, v) => s.Relay.MaxJoinsPerMinute = Count(v)),
        new("MaxFailedLookupsPerMinute", "n", "The most requests naming an unknown channel or a wrong token one client address may make per minute.", "120", (s, v) => s.Relay.MaxFailedLookupsPerMinute = Count(v)),
        new("Lanes", "n", "How many data connections each side opens; with TCP ports it must equal their number (default: the number of ports, or 4 without any).", null, (s, v) => s.Relay.Lanes = Count(v)),
        new("WebSockets", "bool", "Accept data connections as WebSockets on {path}/staple too (for hosts only HTTP(S) reaches).", "true", (s, v) => s.Relay.WebSockets = Flag(v)),
        new("WebSocketKeepAliveInterval", "duration", "How often a WebSocket data connection is pinged, so idle proxies keep it.", "15s", (s, v) => s.Relay.WebSocketKeepAliveInterval = Time(v)),
        new("TrustedProxies", "list", "Reverse proxies trusted to forward the client's address (X-Forwarded-For, Forwarded, PROXY protocol): addresses or CIDR networks, comma-separated (default: none).", null, (s, v) => s.Relay.TrustedProxies = List(v)),
        new("ProxyProtocol", "bool", "The TCP ports sit behind a PROXY-protocol load balancer listed in TrustedProxies: its connections must start with a PROXY header naming the client.", "false", (s, v) => s.Relay.ProxyProtocol = Flag(v)),
        new("ForwardedHeader", "header", "Which forwarded header the trusted proxies write: X-Forwarded-For or Forwarded (only that one is read).", "X-Forwarded-For", (s, v) => s.Relay.ForwardedHeader = v),
        new("Password", "secret", "Make the relay private: clients must give this password (prefer the environment variable to the flag; default: an open relay).", null, (s, v) => s.Relay.Password = v, Alias: "--pass"),
        new("Certificate", "file", "The TLS certificate of an https:// --listen: a .pfx (with its key), or a PEM certificate (its key in the same file or in --certificate-key).", null, (s, v) => s.CertificatePath = v),
        new("CertificateKey", "file", "The PEM private key of a PEM --certificate, when it is in a file of its own.", null, (s, v) => s.CertificateKeyPath = v),
        new("CertificatePassword", "secret", "The password of a .pfx --certificate or of an encrypted PEM key (prefer the environment variable to the flag).", null, (s, v) => s.CertificatePassword = v),
        new("HttpMaxConnections", "n", "The most HTTP connections open at once (default: derived from the file-descriptor limit).", null, (s, v) => s.MaxConnections = Count(v)),
        new("HttpMaxConnectionsPerAddress", "n", "The most HTTP connections from one client address.", "64", (s, v) => s.MaxConnectionsPerAddress = Count(v)),
        new("KeepAliveTimeout", "duration", "How long an idle HTTP connection is kept open.", "10s", (s, v) => s.KeepAliveTimeout = Time(v)),
    ];

    /// <summary>Adds a flag per setting (and <c>--config</c>) to <paramref name="command"/>.</summary>
    public static void AddTo(Command command)
    {
        command.Options.Add(ConfigOption);
        foreach (var setting in All)
        {
            command.Options.Add(setting.Option);
        }
    }

    /// <summary>
    /// Applies the file, then the environment, then the flags to <paramref name="options"/>. A bad value is a usage
    /// error naming where it came from; nothing starts.
    /// </summary>
    public static void Apply(CrocRelayServerOptions options, ParseResult parse, Func<string, string?> environment)
    {
        var file = parse.GetValue(ConfigOption) is { Length: > 0 } path ? ("--config", path)
            : environment("CROC_CONFIG") is { Length: > 0 } fromEnv ? ("CROC_CONFIG", fromEnv)
            : (null, null);
        var fromFile = file.Item2 is { } configPath ? ReadFile(configPath, file.Item1!) : new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var setting in All)
        {
            var result = parse.GetResult(setting.Option);
            var (source, value) = result is { Implicit: false } && parse.GetValue(setting.Option) is { } flag ? (setting.Flag, flag)
                : environment(setting.EnvironmentVariable) is { Length: > 0 } env ? (setting.EnvironmentVariable, env)
                : fromFile.TryGetValue(setting.Name, out var configured) ? ($"\"{setting.Name}\" in {file.Item2}", configured)
                : (null, setting.Default);
            if (value is null)
            {
                continue;
            }

            try
            {
                setting.Apply(options, value);
            }
            catch (Exception ex) when (ex is FormatException or OverflowException)
            {
                throw new CliException(ExitCodes.Usage, $"{source ?? setting.Flag} '{value}' is not valid: {ex.Message}");
            }
        }
    }

    /// <summary>The environment variables, for the help text.</summary>
    public static string EnvironmentHelp() =>
        string.Join(Environment.NewLine, All.Select(s => $"  {s.EnvironmentVariable,-38} {s.Flag}").Prepend($"  {"CROC_CONFIG",-38} --config"));

    /// <summary>A duration: 90s, 5min (or 5m), 3h, 2d, 250ms, or hh:mm:ss.</summary>
    internal static TimeSpan Time(string text)
    {
        text = text.Trim();
        (string Suffix, double Seconds)[] units = [("ms", 0.001), ("min", 60), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)];
        foreach (var (suffix, seconds) in units)
        {
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(text[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && number >= 0)
            {
                return TimeSpan.FromSeconds(number * seconds);
            }
        }

        return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var span)
            ? span
            : throw new FormatException("expected a duration such as 90s, 5min, 3h or 00:05:00");
    }

    private static string ListenUrl(string text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Host.Length == 0)
        {
            throw new FormatException("expected an address such as http://0.0.0.0:9009");
        }

        return text;
    }

    private static List<int> Ports(string text)
    {
        if (text.Trim() is "" or "none")
        {
            // No TCP listeners: data connections come as WebSockets only (the relay checks that they are on).
            return [];
        }

        try
        {
            return LocalRelay.ParsePorts(text, "ports");
        }
        catch (CliException)
        {
            throw new FormatException("expected a port range such as 9010-9013 or a list such as 9010,9011");
        }
    }

    private static int Count(string text) =>
        int.TryParse(text.Replace("_", string.Empty, StringComparison.Ordinal), NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new FormatException("expected a whole number");

    private static bool Flag(string text) => text.Trim().ToLowerInvariant() switch
    {
        "true" or "yes" or "on" or "1" => true,
        "false" or "no" or "off" or "0" => false,
        _ => throw new FormatException("expected true or false"),
    };

    private static List<string> List(string text) =>
        [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(e => e.Trim('"'))];

    private static Dictionary<string, string> ReadFile(string path, string source)
    {
        try
        {
            using var json = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            if (json.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new CliException(ExitCodes.Usage, $"{source} '{path}' must hold one JSON object of settings.");
            }

            var values = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var property in json.RootElement.EnumerateObject())
            {
                if (!All.Any(s => string.Equals(s.Name, property.Name, StringComparison.OrdinalIgnoreCase)))
                {
                    throw new CliException(ExitCodes.Usage, $"{source} '{path}': unknown setting \"{property.Name}\"; the settings are {string.Join(", ", All.Select(s => s.Name))}.");
                }

                values[property.Name] = property.Value.ValueKind switch
                {
                    JsonValueKind.String => property.Value.GetString()!,
                    JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => property.Value.GetRawText(),
                    JsonValueKind.Array => string.Join(",", property.Value.EnumerateArray().Select(e => e.GetRawText())),
                    _ => throw new CliException(ExitCodes.Usage, $"{source} '{path}': \"{property.Name}\" must be a string, a number, true/false or a list."),
                };
            }

            return values;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException)
        {
            throw new CliException(ExitCodes.Usage, $"{source} '{path}' cannot be read: {ex.Message}");
        }
    }

    /// <summary>One setting: its name in the file, and the flag and environment variable derived from it.</summary>
    internal sealed record Setting(string Name, string HelpName, string Description, string? Default, Action<CrocRelayServerOptions, string> Apply, string? Alias = null)
    {
        public string Flag => "--" + Words(Name, '-').ToLowerInvariant();

        public string EnvironmentVariable => "CROC_" + Words(Name, '_').ToUpperInvariant();

        public Option<string?> Option { get; } = CreateOption(Name, HelpName, Description, Default, Alias);

        private static Option<string?> CreateOption(string name, string helpName, string description, string? @default, string? alias)
        {
            var flag = "--" + Words(name, '-').ToLowerInvariant();
            var option = alias is null ? new Option<string?>(flag) : new Option<string?>(flag, alias);
            option.Description = $"{description} (env CROC_{Words(name, '_').ToUpperInvariant()}{(@default is null ? string.Empty : $"; default {@default}")})";
            option.HelpName = helpName;
            return option;
        }

        private static string Words(string name, char separator) =>
            // "IPv6" is one word: --ipv6-prefix-length, CROC_IPV6_PREFIX_LENGTH.
            string.Concat(name.Replace("IPv6", "Ipv6", StringComparison.Ordinal).Select((c, i) => i > 0 && char.IsUpper(c) ? $"{separator}{c}" : c.ToString()));
    }
}

using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text.Json;
using CrocNet.Relay;
using Microsoft.Extensions.Logging;

namespace CrocNet.Cli;

/// <summary>The relay on this machine: the one <c>send</c> embeds, and the one <c>receive</c> looks for.</summary>
internal static class LocalRelay
{
    /// <summary>Where the embedded relay listens by default.</summary>
    public const string DefaultUrl = "http://0.0.0.0:9009";

    /// <summary>The embedded relay's default TCP ports.</summary>
    public const string DefaultPorts = "9010-9013";

    /// <summary>The relay this send started (null when --relay named one), its address, and what to tell the other side.</summary>
    /// <param name="Server">The relay this process runs, stopped when the send ends.</param>
    /// <param name="Relay">Where this process reaches it.</param>
    /// <param name="Advertised">Where the other machine reaches it.</param>
    /// <param name="MovedFrom">The address that was asked for, when it was taken and the relay moved to free ports.</param>
    public sealed record Found(CrocRelayServer? Server, Uri Relay, Uri Advertised, Uri? MovedFrom = null);

    /// <summary>
    /// Starts this send's own relay on <paramref name="url"/>. If a port it needs is taken (another <c>croc send</c>
    /// or relay on this machine, or any other program), it starts on free ports instead: a send never borrows a
    /// relay it does not own, which would stop when its owner's transfer ends.
    /// </summary>
    /// <remarks>With <paramref name="password"/> the relay is private: the recipient must give the same password.</remarks>
    public static async Task<Found> StartOwnAsync(string url, IList<int> ports, string? password, ILoggerFactory? loggerFactory, CancellationToken cancellationToken)
    {
        var bind = ParseUrl(url, "--embedded-url");
        try
        {
            var server = await StartAsync(url, ports, bind, password, loggerFactory, cancellationToken);
            return new Found(server, server.BaseAddress, Advertise(bind, server.BaseAddress));
        }
        catch (Exception ex) when (IsAddressInUse(ex))
        {
            var free = new UriBuilder(bind) { Port = 0 }.Uri.GetLeftPart(UriPartial.Authority);
            try
            {
                var server = await StartAsync(free, [.. ports.Select(_ => 0)], bind, password, loggerFactory, cancellationToken);
                return new Found(server, server.BaseAddress, Advertise(bind, server.BaseAddress), bind);
            }
            catch (Exception again) when (IsAddressInUse(again))
            {
                throw new CliException(
                    ExitCodes.Relay,
                    $"Cannot start the built-in relay on {url}, nor on free ports: {again.Message} Pass --relay <url> to use another relay.");
            }
        }
    }

    private static Task<CrocRelayServer> StartAsync(string url, IList<int> ports, Uri bind, string? password, ILoggerFactory? loggerFactory, CancellationToken cancellationToken) =>
        CrocRelayServer.StartAsync(
            o =>
            {
                o.Url = url;
                o.Relay.Ports = ports;
                o.Relay.ListenAddress = ListenAddressFor(bind);
                o.Relay.Password = password;
                o.LoggerFactory = loggerFactory;
            },
            cancellationToken);

    /// <summary>The loopback address of the relay that <c>send</c> would embed at <paramref name="url"/>.</summary>
    public static Uri LoopbackOf(string url) => LoopbackOf(ParseUrl(url, "--embedded-url"));

    /// <summary>Whether a croc relay answers at <paramref name="relay"/> (it rejects an empty request with its JSON error).</summary>
    public static async Task<bool> AnswersAsync(Uri relay, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            using var content = new StringContent("{}", System.Text.Encoding.UTF8, "application/json");
            using var response = await http.PostAsync(new Uri(relay, "channel"), content, cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            using var json = JsonDocument.Parse(body);
            return json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("code", out _);
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>
    /// The address another machine should use: the bound one, except that a wildcard bind is named by this
    /// machine's LAN address (loopback if it has none).
    /// </summary>
    public static Uri Advertise(Uri bind, Uri bound)
    {
        if (!IsWildcard(bind.Host))
        {
            return bound;
        }

        var lan = LanAddress();
        return new UriBuilder(bound) { Host = lan?.ToString() ?? "127.0.0.1" }.Uri;
    }

    /// <summary>The first IPv4 address of an interface that is up and not loopback, preferring one with a gateway.</summary>
    public static IPAddress? LanAddress()
    {
        try
        {
            var candidates = NetworkInterface.GetAllNetworkInterfaces()
                .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback)
                .Select(n => (Props: n.GetIPProperties(), Iface: n))
                .SelectMany(x => x.Props.UnicastAddresses
                    .Where(a => a.Address.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a.Address))
                    .Select(a => (a.Address, HasGateway: x.Props.GatewayAddresses.Any(g => !g.Address.Equals(IPAddress.Any)))))
                .OrderByDescending(x => x.HasGateway)
                .ToList();
            return candidates.Count > 0 ? candidates[0].Address : null;
        }
        catch (NetworkInformationException)
        {
            return null;
        }
    }

    /// <summary>Parses <c>9010-9013</c> or <c>9010,9011,9012</c>.</summary>
    public static List<int> ParsePorts(string text, string option)
    {
        var ports = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var range = part.Split('-', StringSplitOptions.TrimEntries);
            if (range.Length == 2 && int.TryParse(range[0], out var from) && int.TryParse(range[1], out var to) && from <= to && to - from < 64)
            {
                for (var port = from; port <= to; port++)
                {
                    ports.Add(CheckPort(port, text, option));
                }
            }
            else if (range.Length == 1 && int.TryParse(range[0], out var single))
            {
                ports.Add(CheckPort(single, text, option));
            }
            else
            {
                throw Bad(text, option);
            }
        }

        return ports.Count > 0 ? ports : throw Bad(text, option);
    }

    /// <summary>A relay to use (--relay, CROC_RELAY): a URL, or host:port meaning http://host:port.</summary>
    public static Uri ParseRelay(string relay)
    {
        var url = relay.Contains("://", StringComparison.Ordinal) ? relay : "http://" + relay;
        return Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && uri.Host.Length > 0
            ? uri
            : throw new CliException(ExitCodes.Usage, $"--relay '{relay}' is not a relay address such as http://192.168.1.20:9009 or relay.example:9009.");
    }

    public static Uri ParseUrl(string url, string option) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw new CliException(ExitCodes.Usage, $"{option} '{url}' is not an http URL such as http://0.0.0.0:9009.");

    public static string ListenAddressFor(Uri bind) => bind.Host switch
    {
        "localhost" => "127.0.0.1",
        // [::] is dual-stack for the HTTP listener (Kestrel), so the TCP listeners take IPv6 and IPv4 alike too.
        "[::]" or "::" => "::",
        _ when IsWildcard(bind.Host) => "0.0.0.0",
        _ => bind.Host.Trim('[', ']'),
    };

    private static Uri LoopbackOf(Uri bind) =>
        new UriBuilder(bind.Scheme, IsWildcard(bind.Host) ? "127.0.0.1" : bind.Host, bind.Port, "/").Uri;

    private static bool IsWildcard(string host) => host is "0.0.0.0" or "[::]" or "::" or "*" or "+";

    private static int CheckPort(int port, string text, string option) =>
        port is >= 0 and <= 65535 ? port : throw Bad(text, option);

    private static CliException Bad(string text, string option) =>
        new(ExitCodes.Usage, $"{option} '{text}' is not a port list such as 9010-9013 or 9010,9011.");

    private static bool IsAddressInUse(Exception? ex)
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            if (ex is SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse } || ex.GetType().Name == "AddressInUseException")
            {
                return true;
            }
        }

        return false;
    }
}

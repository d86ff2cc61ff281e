using System.Security.Cryptography.X509Certificates;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CrocNet.Relay;

namespace CrocNet.Tests.Relay;

/// <summary>A reply from the relay: status and parsed JSON body.</summary>
internal sealed record RelayReply(HttpStatusCode Status, JsonObject Body)
{
    public string? Code => (string?)Body["code"];

    public long Rev => (long)Body["rev"]!;

    public string Str(string name) => (string)Body[name]!;
}

/// <summary>Helpers for driving a real relay over real HTTP and TCP on loopback.</summary>
internal static class RelayTestKit
{
    public static readonly IPAddress Second = IPAddress.Parse("127.0.0.2");
    public static readonly IPAddress Third = IPAddress.Parse("127.0.0.3");

    public static Task<CrocRelayServer> StartRelayAsync(CancellationToken cancellationToken, Action<CrocRelayServerOptions>? configure = null)
        => CrocRelayServer.StartAsync(
            o =>
            {
                o.Url = "http://127.0.0.1:0";
                o.Relay.Ports = [0, 0, 0, 0];
                o.Relay.ListenAddress = "127.0.0.1";
                configure?.Invoke(o);
            },
            cancellationToken);

    /// <summary>An HTTP client whose connections come from <paramref name="source"/> (any 127/8 address works on Linux).</summary>
    public static HttpClient Client(Uri baseAddress, IPAddress? source = null) => new(Handler(source)) { BaseAddress = baseAddress };

    /// <summary>
    /// A handler whose connections come from <paramref name="source"/> (default 127.0.0.1); with <paramref name="trusted"/>,
    /// TLS accepts exactly that certificate and nothing else.
    /// </summary>
    public static SocketsHttpHandler Handler(IPAddress? source, X509Certificate2? trusted = null) => new()
    {
        ConnectCallback = async (context, token) =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                socket.Bind(new IPEndPoint(source ?? IPAddress.Loopback, 0));
                await socket.ConnectAsync(context.DnsEndPoint, token);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
        SslOptions = trusted is null ? new() : new()
        {
            RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null && certificate.GetRawCertData().AsSpan().SequenceEqual(trusted.RawData),
        },
    };

    public static async Task<RelayReply> PostRawAsync(HttpClient client, string route, string body, CancellationToken cancellationToken)
    {
        using var content = new StringContent(body, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await client.PostAsync(route, content, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/json"), text);
        return new RelayReply(response.StatusCode, JsonNode.Parse(text)!.AsObject());
    }

    public static Task<RelayReply> PostAsync(HttpClient client, string route, object body, CancellationToken cancellationToken)
        => PostRawAsync(client, route, JsonSerializer.Serialize(body), cancellationToken);

    public static async Task<RelayReply> OkAsync(Task<RelayReply> request)
    {
        var reply = await request;
        Assert.That(reply.Status, Is.EqualTo(HttpStatusCode.OK), reply.Body.ToJsonString());
        return reply;
    }

    public static void AssertError(RelayReply reply, HttpStatusCode status, string code)
    {
        Assert.That(reply.Status, Is.EqualTo(status), reply.Body.ToJsonString());
        Assert.That(reply.Code, Is.EqualTo(code));
        Assert.That((string?)reply.Body["error"], Is.Not.Null.And.Not.Empty);
    }

    public static string B64(int seed, int length = 33)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return Convert.ToBase64String(bytes);
    }

    /// <summary>
    /// A real transfer with the library's client through <paramref name="relay"/>: sends a short text and returns what
    /// the recipient got. The one place relay tests call the client library.
    /// </summary>
    public static async Task<string?> TransferTextAsync(Uri relay, string text, CancellationToken cancellationToken)
    {
        var sender = Croc.New(o => o.WithRelay(relay).WithIdleTimeout(TimeSpan.FromSeconds(20)).WithRetries(2, TimeSpan.FromMilliseconds(20)));
        var recipient = Croc.New(o => o.WithRelay(relay).WithIdleTimeout(TimeSpan.FromSeconds(20)).WithRetries(2, TimeSpan.FromMilliseconds(20)));
        await using var operation = await sender.StartSendAsync(SendContent.FromText(text), cancellationToken: cancellationToken);
        var received = recipient.ReceiveAsync(operation.Code, cancellationToken);
        await Task.WhenAll(received, operation.Completion).WaitAsync(cancellationToken);
        return (await received).Text;
    }

    /// <summary>Polls <paramref name="condition"/> every 20 ms until it holds or <paramref name="within"/> passes; returns whether it held.</summary>
    public static async Task<bool> EventuallyAsync(Func<bool> condition, TimeSpan within, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + within;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(20, cancellationToken);
        }

        return true;
    }

    /// <summary>Two participants of one channel.</summary>
    internal sealed record Pair(string Channel, string SenderUuid, string RecipientUuid);

    /// <summary>Joins a sender and a recipient; optionally runs x, y/hh_k and h_k so TCP is accepted.</summary>
    public static async Task<Pair> OpenAsync(HttpClient sender, HttpClient recipient, CancellationToken cancellationToken, bool confirm = true)
    {
        var joined = await OkAsync(PostAsync(sender, "join", new { role = "sender" }, cancellationToken));
        var channel = joined.Str("channel");
        var senderUuid = joined.Str("uuid");
        var recipientUuid = (await OkAsync(PostAsync(recipient, "join", new { role = "recipient", channel }, cancellationToken))).Str("uuid");
        if (confirm)
        {
            await OkAsync(PostAsync(sender, "channel", new { channel, uuid = senderUuid, x = B64(1) }, cancellationToken));
            await OkAsync(PostAsync(recipient, "channel", new { channel, uuid = recipientUuid, y = B64(2), hh_k = B64(3, 32) }, cancellationToken));
            await OkAsync(PostAsync(sender, "channel", new { channel, uuid = senderUuid, h_k = B64(4, 32) }, cancellationToken));
        }

        return new Pair(channel, senderUuid, recipientUuid);
    }

    public static async Task<Socket> ConnectAsync(int port, CancellationToken cancellationToken, IPAddress? source = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        socket.Bind(new IPEndPoint(source ?? IPAddress.Loopback, 0));
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken);
        return socket;
    }

    public static string HelloLine(string channel, string uuid) => $"{{\"channel\":\"{channel}\",\"uuid\":\"{uuid}\"}}\n";

    public static async Task SendAsync(Socket socket, string text, CancellationToken cancellationToken)
        => await SendAsync(socket, Encoding.UTF8.GetBytes(text), cancellationToken);

    public static async Task SendAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            data = data[await socket.SendAsync(data, SocketFlags.None, cancellationToken)..];
        }
    }

    /// <summary>Reads one line byte by byte (so nothing after it is consumed); null at end of stream.</summary>
    public static async Task<string?> ReadLineAsync(Socket socket, CancellationToken cancellationToken)
    {
        var line = new List<byte>();
        var one = new byte[1];
        while (true)
        {
            if (await socket.ReceiveAsync(one, SocketFlags.None, cancellationToken) == 0)
            {
                return line.Count == 0 ? null : Encoding.UTF8.GetString([.. line]);
            }

            if (one[0] == '\n')
            {
                return Encoding.UTF8.GetString([.. line]);
            }

            line.Add(one[0]);
        }
    }

    /// <summary>Connects, says hello and returns the socket with the relay's answer line.</summary>
    public static async Task<(Socket Socket, string? Answer)> HelloAsync(int port, string channel, string uuid, CancellationToken cancellationToken, IPAddress? source = null)
    {
        var socket = await ConnectAsync(port, cancellationToken, source);
        await SendAsync(socket, HelloLine(channel, uuid), cancellationToken);
        return (socket, await ReadLineAsync(socket, cancellationToken));
    }

    /// <summary>Reads until end of stream; a reset also counts as the end. Returns the bytes read.</summary>
    public static async Task<byte[]> ReadToEndAsync(Socket socket, CancellationToken cancellationToken)
    {
        var all = new MemoryStream();
        var buffer = new byte[64 * 1024];
        try
        {
            int read;
            while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken)) > 0)
            {
                all.Write(buffer, 0, read);
            }
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
        {
        }

        return all.ToArray();
    }

    public static async Task<byte[]> ReadExactlyAsync(Socket socket, int count, CancellationToken cancellationToken)
    {
        var buffer = new byte[count];
        var offset = 0;
        while (offset < count)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(offset), SocketFlags.None, cancellationToken);
            if (read == 0)
            {
                throw new EndOfStreamException($"Got {offset} of {count} bytes.");
            }

            offset += read;
        }

        return buffer;
    }
}

/// <summary>A real relay for a whole fixture, with a client from 127.0.0.1 (A) and one from 127.0.0.2 (B).</summary>
public abstract class RelayFixture
{
    protected CrocRelayServer RelayServer { get; private set; } = null!;

    protected HttpClient A { get; private set; } = null!;

    protected HttpClient B { get; private set; } = null!;

    [OneTimeSetUp]
    public async Task StartRelayFixtureAsync()
    {
        // One relay serves a whole class of tests, all from the same two addresses: lift the per-address channel limit.
        RelayServer = await RelayTestKit.StartRelayAsync(CancellationToken.None, o => o.Relay.MaxChannelsPerAddress = 100_000);
        A = RelayTestKit.Client(RelayServer.BaseAddress);
        B = RelayTestKit.Client(RelayServer.BaseAddress, RelayTestKit.Second);
    }

    [OneTimeTearDown]
    public async Task StopRelayFixtureAsync()
    {
        A.Dispose();
        B.Dispose();
        await RelayServer.DisposeAsync();
    }
}

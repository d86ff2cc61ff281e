using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Polly;

namespace CrocNet.Transport;

/// <summary>
/// Opens the data connections: one TCP connection to every port the relay offers, each introduced by
/// the hello line <c>{"channel":"…","uuid":"…"}\n</c> and accepted with <c>ok\n</c>.
/// </summary>
internal static class StapleConnector
{
    private const int MaxReplyLength = 128;

    /// <summary>The most data connections a relay may ask for.</summary>
    public const int MaxPorts = 16;

    /// <summary>How long connecting and the hello exchange may take on one port.</summary>
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(30);
    private const int SocketBufferSize = 4 * 1024 * 1024;

    public static async Task<Stream[]> ConnectAllAsync(
        string host, IReadOnlyList<int> ports, string channel, string uuid, ResiliencePipeline pipeline, Func<Stream, int, Stream>? interceptor, CancellationToken cancellationToken)
    {
        if (ports.Count is 0 or > MaxPorts)
        {
            // Each port costs a connection, socket buffers and a frame buffer: a relay does not get to choose thousands.
            throw new CrocProtocolException($"The relay offered {ports.Count} data ports; between 1 and {MaxPorts} are allowed.");
        }

        var hello = BuildHello(channel, uuid);
        var tasks = new Task<Stream>[ports.Count];
        for (var i = 0; i < ports.Count; i++)
        {
            var port = ports[i];
            if (port is <= 0 or > 65535)
            {
                throw new CrocProtocolException($"The relay offered an invalid port {port}.");
            }

            var index = i;
            tasks[i] = pipeline.ExecuteAsync(
                async token =>
                {
                    using var attempt = CancellationTokenSource.CreateLinkedTokenSource(token);
                    attempt.CancelAfter(ConnectTimeout);
                    try
                    {
                        return await ConnectOneAsync(host, port, index, hello, interceptor, attempt.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException ex) when (!token.IsCancellationRequested)
                    {
                        throw new TimeoutException($"Data connection {index + 1} was not accepted within {ConnectTimeout}.", ex);
                    }
                },
                cancellationToken).AsTask();
        }

        try
        {
            return await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch
        {
            foreach (var task in tasks)
            {
                if (task.IsCompletedSuccessfully)
                {
                    await task.Result.DisposeAsync().ConfigureAwait(false);
                }
            }

            var failure = tasks.Select(t => t.Exception?.InnerException).FirstOrDefault(e => e is not null);
            if (failure is SocketException or IOException or TimeoutException)
            {
                throw new CrocRelayException(
                    CrocErrorCode.RelayUnreachable,
                    $"Could not open the data connections to {host}: {failure.Message}",
                    innerException: failure);
            }

            throw;
        }
    }

    private static byte[] BuildHello(string channel, string uuid)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("channel", channel);
            writer.WriteString("uuid", uuid);
            writer.WriteEndObject();
        }

        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    private static async Task<Stream> ConnectOneAsync(string host, int port, int index, byte[] hello, Func<Stream, int, Stream>? interceptor, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp)
        {
            NoDelay = true,
            SendBufferSize = SocketBufferSize,
            ReceiveBufferSize = SocketBufferSize,
        };
        try
        {
            await socket.ConnectAsync(host, port, cancellationToken).ConfigureAwait(false);
            Stream stream = new NetworkStream(socket, ownsSocket: true);
            if (interceptor is { } intercept)
            {
                stream = intercept(stream, index);
            }

            await stream.WriteAsync(hello, cancellationToken).ConfigureAwait(false);
            var reply = await ReadLineAsync(stream, cancellationToken).ConfigureAwait(false);
            if (reply == "ok")
            {
                return stream;
            }

            await stream.DisposeAsync().ConfigureAwait(false);
            var code = (reply.StartsWith("error ", StringComparison.Ordinal) ? Channel.RelayChannelClient.SafeCode(reply[6..].Trim()) : null) ?? "bad_reply";
            throw new CrocRelayException(CrocErrorCode.RelayRefused, $"The relay refused data connection {index + 1} ({code}).", code);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Reads the relay's one-line reply byte by byte so no peer data behind it is consumed.</summary>
    private static async Task<string> ReadLineAsync(Stream stream, CancellationToken cancellationToken)
    {
        var line = new byte[MaxReplyLength];
        var length = 0;
        var one = new byte[1];
        while (true)
        {
            var read = await stream.ReadAsync(one, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                throw new IOException("The relay closed the data connection before answering its hello.");
            }

            if (one[0] == (byte)'\n')
            {
                return Encoding.ASCII.GetString(line, 0, length);
            }

            if (length == line.Length)
            {
                throw new CrocProtocolException("The relay's reply to the data-connection hello is too long.");
            }

            line[length++] = one[0];
        }
    }
}

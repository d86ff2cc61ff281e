using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;

namespace CrocNet.Tests.Relay.WebSocket;

/// <summary>WebSocket legs from a real <see cref="ClientWebSocket"/>, connecting from a chosen loopback address.</summary>
internal static class WebSocketTestKit
{
    /// <summary>The relay's <c>/staple</c> URL for <paramref name="baseAddress"/> (<c>ws://</c> for <c>http://</c>).</summary>
    public static Uri StapleUri(Uri baseAddress) => new UriBuilder(baseAddress) { Scheme = baseAddress.Scheme == "https" ? "wss" : "ws", Path = baseAddress.AbsolutePath.TrimEnd('/') + "/staple" }.Uri;

    /// <summary>Opens a WebSocket to <c>/staple</c> from <paramref name="source"/>; the response details are kept (a refused upgrade's status).</summary>
    public static async Task<ClientWebSocket> ConnectAsync(Uri baseAddress, CancellationToken cancellationToken, IPAddress? source = null, Action<ClientWebSocketOptions>? configure = null)
    {
        var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        configure?.Invoke(socket.Options);
        using var invoker = new HttpMessageInvoker(RelayTestKit.Handler(source));
        try
        {
            await socket.ConnectAsync(StapleUri(baseAddress), invoker, cancellationToken);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return socket;
    }

    /// <summary>Tries to open a WebSocket and returns the HTTP status of the refusal (or 101 when it opened; the socket is then closed).</summary>
    public static async Task<(HttpStatusCode Status, IReadOnlyDictionary<string, IEnumerable<string>>? Headers)> RefusedStatusAsync(Uri baseAddress, CancellationToken cancellationToken, IPAddress? source = null, Action<ClientWebSocketOptions>? configure = null)
    {
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        configure?.Invoke(socket.Options);
        using var invoker = new HttpMessageInvoker(RelayTestKit.Handler(source));
        try
        {
            await socket.ConnectAsync(StapleUri(baseAddress), invoker, cancellationToken);
            socket.Abort();
            return (HttpStatusCode.SwitchingProtocols, socket.HttpResponseHeaders);
        }
        catch (WebSocketException)
        {
            return (socket.HttpStatusCode, socket.HttpResponseHeaders);
        }
    }

    /// <summary>Sends the hello and returns the relay's text answer (<c>ok</c> or <c>error …</c>).</summary>
    public static async Task<string?> HelloAsync(ClientWebSocket socket, string channel, string uuid, int lane, CancellationToken cancellationToken)
    {
        await SendTextAsync(socket, $"{{\"channel\":\"{channel}\",\"uuid\":\"{uuid}\",\"lane\":{lane}}}", cancellationToken);
        return await ReceiveTextAsync(socket, cancellationToken);
    }

    /// <summary>Connects and says hello; returns the socket and the answer.</summary>
    public static async Task<(ClientWebSocket Socket, string? Answer)> LegAsync(Uri baseAddress, string channel, string uuid, int lane, CancellationToken cancellationToken, IPAddress? source = null, Action<ClientWebSocketOptions>? configure = null)
    {
        var socket = await ConnectAsync(baseAddress, cancellationToken, source, configure);
        return (socket, await HelloAsync(socket, channel, uuid, lane, cancellationToken));
    }

    public static Task SendTextAsync(ClientWebSocket socket, string text, CancellationToken cancellationToken)
        => socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, cancellationToken);

    /// <summary>Reads one text message; null when the relay closed instead.</summary>
    public static async Task<string?> ReceiveTextAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[4096];
        var length = 0;
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return null;
            }

            Assert.That(result.MessageType, Is.EqualTo(WebSocketMessageType.Text), "the relay answers in text");
            length += result.Count;
            if (result.EndOfMessage)
            {
                return Encoding.UTF8.GetString(buffer, 0, length);
            }
        }
    }

    /// <summary>Sends <paramref name="data"/> as binary messages of at most <paramref name="messageSize"/> bytes.</summary>
    public static async Task SendBytesAsync(ClientWebSocket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken, int messageSize = 64 * 1024)
    {
        while (!data.IsEmpty)
        {
            var chunk = data[..Math.Min(messageSize, data.Length)];
            await socket.SendAsync(chunk, WebSocketMessageType.Binary, true, cancellationToken);
            data = data[chunk.Length..];
        }
    }

    /// <summary>Reads binary messages until the relay's close; returns the bytes and asserts no message is over 64 KiB.</summary>
    public static async Task<byte[]> ReadToCloseAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        var all = new MemoryStream();
        var buffer = new byte[256 * 1024];
        var message = 0;
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer.AsMemory(), cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return all.ToArray();
            }

            Assert.That(result.MessageType, Is.EqualTo(WebSocketMessageType.Binary));
            all.Write(buffer, 0, result.Count);
            message += result.Count;
            if (result.EndOfMessage)
            {
                Assert.That(message, Is.LessThanOrEqualTo(64 * 1024), "the relay's messages are at most 64 KiB");
                message = 0;
            }
        }
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes from binary messages.</summary>
    public static async Task<byte[]> ReadExactlyAsync(ClientWebSocket socket, int count, CancellationToken cancellationToken)
    {
        var buffer = new byte[count];
        var offset = 0;
        while (offset < count)
        {
            var result = await socket.ReceiveAsync(buffer.AsMemory(offset), cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                throw new EndOfStreamException($"Got {offset} of {count} bytes.");
            }

            offset += result.Count;
        }

        return buffer;
    }

    /// <summary>Waits for the relay to end the WebSocket (a close or a cut); true when it did.</summary>
    public static async Task<bool> EndedAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer.AsMemory(), cancellationToken);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return true;
                }
            }
        }
        catch (WebSocketException)
        {
            return true;
        }
    }
}

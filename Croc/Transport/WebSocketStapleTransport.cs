using System.Net.WebSockets;
using System.Security.Authentication;
using System.Text;
using System.Text.Json;
using CrocNet.Protocol;

namespace CrocNet.Transport;

/// <summary>
/// A leg over a WebSocket on the relay's own HTTP address (protocol 1.1): <c>GET {base}/staple</c> upgraded, <c>ws://</c>
/// for an <c>http://</c> relay and <c>wss://</c> for <c>https://</c>. The upgrade goes through the instance's HTTP invoker,
/// so its handler (a proxy, a source address, trusted certificates) applies as it does to the HTTP requests, and carries
/// the relay password as <c>Authorization: Bearer</c>. The first messages are the text hello
/// <c>{"channel":"…","uuid":"…","lane":i}</c> and the relay's text <c>ok</c> or <c>error &lt;code&gt;</c>.
/// </summary>
internal sealed class WebSocketStapleTransport(HttpMessageInvoker http, TimeProvider time) : IStapleTransport
{
    /// <summary>How often an idle leg sends a keep-alive, so proxies that cut quiet connections leave a waiting leg alone.</summary>
    public static readonly TimeSpan KeepAliveInterval = TimeSpan.FromSeconds(15);

    /// <summary>The leg URL for a relay base address: the base's path (a prefix such as <c>/croc/</c> kept) plus <c>staple</c>.</summary>
    public static Uri LegUri(Uri relay)
    {
        var text = relay.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped);
        var leg = new UriBuilder(new Uri(new Uri(text.EndsWith('/') ? text : text + "/"), CrocWire.StapleRoute))
        {
            Scheme = relay.Scheme == Uri.UriSchemeHttps ? Uri.UriSchemeWss : Uri.UriSchemeWs,
        };
        return leg.Uri;
    }

    public async ValueTask<Stream> ConnectAsync(StapleTarget target, int lane, StapleTicket ticket, CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        try
        {
            socket.Options.KeepAliveInterval = KeepAliveInterval;
            // The data is ciphertext: compression would cost CPU for nothing (and the protocol negotiates none).
            socket.Options.DangerousDeflateOptions = null;
            socket.Options.CollectHttpResponseDetails = true;
            // Buffers the size of a message: one read or write per message rather than many small ones.
            socket.Options.SetBuffer(CrocWire.MaxWebSocketMessage, CrocWire.MaxWebSocketMessage);
            if (ticket.RelayPassword is { } password)
            {
                socket.Options.SetRequestHeader("Authorization", CrocWire.AuthorizationScheme + " " + password);
            }

            try
            {
                await socket.ConnectAsync(LegUri(target.Relay), http, cancellationToken).ConfigureAwait(false);
            }
            catch (WebSocketException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw UpgradeFailure(socket, ex, lane, ticket);
            }

            try
            {
                await socket.SendAsync(BuildHello(ticket, lane), WebSocketMessageType.Text, endOfMessage: true, cancellationToken).ConfigureAwait(false);
                var reply = await ReadReplyAsync(socket, cancellationToken).ConfigureAwait(false);
                if (reply == CrocWire.HelloOkAgain)
                {
                    return new ReattachedLeg(new WebSocketLegStream(socket, time));
                }

                if (reply != CrocWire.HelloOk)
                {
                    throw TcpStapleTransport.Refusal(reply, lane, ticket);
                }
            }
            catch (WebSocketException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw new IOException($"Data connection {lane + 1} broke during its hello: {ex.Message}", ex);
            }

            return new WebSocketLegStream(socket, time);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    internal static byte[] BuildHello(StapleTicket ticket, int lane)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString(CrocWire.HelloChannel, ticket.Channel);
            writer.WriteString(CrocWire.HelloUuid, ticket.Uuid);
            writer.WriteNumber(CrocWire.HelloLane, lane);
            if (ticket.Again)
            {
                writer.WriteBoolean(CrocWire.HelloAgain, true);
            }

            writer.WriteEndObject();
        }

        return buffer.ToArray();
    }

    /// <summary>What a failed upgrade means: a private relay's 401, a relay without WebSocket legs, a fault worth a retry.</summary>
    private static Exception UpgradeFailure(ClientWebSocket socket, WebSocketException ex, int lane, StapleTicket ticket)
    {
        var status = (int)socket.HttpStatusCode;
        if (status == 401)
        {
            return TcpStapleTransport.AccessDenied($"the relay refused WebSocket data connection {lane + 1}", ticket.RelayPassword is not null, null, status);
        }

        if (status >= 500)
        {
            // Retried by the pipeline, like a 5xx from the HTTP routes.
            return new CrocRelayException(CrocErrorCode.RelayUnreachable, $"The relay answered {status} to WebSocket data connection {lane + 1}.", "http_" + status, status, ex);
        }

        if (status != 0)
        {
            return new CrocRelayException(
                CrocErrorCode.RelayRefused,
                $"The relay answered {status} instead of accepting WebSocket data connection {lane + 1}; a proxy in front of it may not forward WebSockets.",
                "http_" + status,
                status,
                ex);
        }

        if (FindInner<AuthenticationException>(ex) is { } tls)
        {
            return new CrocRelayException(CrocErrorCode.RelayUnreachable, CertificateMessage(tls), innerException: ex);
        }

        return new IOException($"WebSocket data connection {lane + 1} could not be opened: {ex.Message}", ex);
    }

    /// <summary>What to say when the relay's TLS certificate is not accepted (the HTTP routes say the same).</summary>
    internal static string CertificateMessage(AuthenticationException ex) =>
        $"The relay's TLS certificate was not accepted ({ex.Message}). For a relay with a self-signed or private certificate, trust it with TrustRelayCertificate.";

    internal static T? FindInner<T>(Exception? ex)
        where T : Exception
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            if (ex is T found)
            {
                return found;
            }
        }

        return null;
    }

    private static async Task<string> ReadReplyAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[CrocWire.MaxHelloReplyLength];
        var length = 0;
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                throw new IOException("The relay closed the data connection before answering its hello.");
            }

            if (result.MessageType != WebSocketMessageType.Text)
            {
                throw new CrocProtocolException("The relay answered a WebSocket hello with binary data.");
            }

            length += result.Count;
            if (result.EndOfMessage)
            {
                return Encoding.ASCII.GetString(buffer, 0, length);
            }

            if (length == buffer.Length)
            {
                throw new CrocProtocolException("The relay's reply to the data-connection hello is too long.");
            }
        }
    }
}

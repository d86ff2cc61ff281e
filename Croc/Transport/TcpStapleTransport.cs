using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using CrocNet.Protocol;

namespace CrocNet.Transport;

/// <summary>
/// A leg over TCP: connect to the lane's port, send the hello line <c>{"channel":"…","uuid":"…"}\n</c> (with
/// <c>"auth"</c> for a private relay), expect <c>ok\n</c>. TCP legs stay plain TCP even for an <c>https://</c> relay:
/// everything on them is already end-to-end encrypted and authenticated.
/// </summary>
internal sealed class TcpStapleTransport : IStapleTransport
{
    public static readonly TcpStapleTransport Instance = new();

    private const int SocketBufferSize = 4 * 1024 * 1024;

    public async ValueTask<Stream> ConnectAsync(StapleTarget target, int lane, StapleTicket ticket, CancellationToken cancellationToken)
    {
        var socket = await OpenAsync(target, lane, null, TimeProvider.System, cancellationToken).ConfigureAwait(false);
        return await HelloAsync(socket, lane, ticket, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Connects the socket of lane <paramref name="lane"/>, within <paramref name="bound"/> if one is given.</summary>
    /// <exception cref="SocketException">The port could not be reached.</exception>
    /// <exception cref="TcpConnectTimeoutException">The bound passed first.</exception>
    public static async Task<Socket> OpenAsync(StapleTarget target, int lane, TimeSpan? bound, TimeProvider time, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp)
        {
            NoDelay = true,
            SendBufferSize = SocketBufferSize,
            ReceiveBufferSize = SocketBufferSize,
        };
        try
        {
            if (bound is not { } limit)
            {
                await socket.ConnectAsync(target.Host, target.Ports[lane], cancellationToken).ConfigureAwait(false);
                return socket;
            }

            using var deadline = ProtocolTimings.After(limit, time, cancellationToken);
            try
            {
                await socket.ConnectAsync(target.Host, target.Ports[lane], deadline.Token).ConfigureAwait(false);
                return socket;
            }
            catch (OperationCanceledException ex) when (deadline.Expired && !cancellationToken.IsCancellationRequested)
            {
                throw new TcpConnectTimeoutException($"Data port {target.Ports[lane]} did not accept a connection within {limit}.", ex);
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Says hello on a connected socket (which it then owns) and returns the leg once the relay said <c>ok</c>.</summary>
    public static async Task<Stream> HelloAsync(Socket socket, int lane, StapleTicket ticket, CancellationToken cancellationToken)
    {
        var stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            await stream.WriteAsync(BuildHello(ticket), cancellationToken).ConfigureAwait(false);
            var reply = await ReadLineAsync(stream, cancellationToken).ConfigureAwait(false);
            if (reply == CrocWire.HelloOk)
            {
                return stream;
            }

            if (reply == CrocWire.HelloOkAgain)
            {
                return new ReattachedLeg(stream);
            }

            throw Refusal(reply, lane, ticket);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>base64 of HMAC-SHA256(password, "croc leg\n" + channel + "\n" + uuid): what a private relay checks in a TCP hello.</summary>
    internal static string LegProof(string password, string channel, string uuid)
        => Convert.ToBase64String(System.Security.Cryptography.HMACSHA256.HashData(
            System.Text.Encoding.UTF8.GetBytes(password), System.Text.Encoding.UTF8.GetBytes("croc leg\n" + channel + "\n" + uuid)));

    internal static byte[] BuildHello(StapleTicket ticket)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString(CrocWire.HelloChannel, ticket.Channel);
            writer.WriteString(CrocWire.HelloUuid, ticket.Uuid);
            if (ticket.RelayPassword is { } password)
            {
                // A TCP leg is plain TCP: the password itself never goes there, only a proof bound to this leg.
                writer.WriteString(CrocWire.HelloAuth, LegProof(password, ticket.Channel, ticket.Uuid));
            }

            if (ticket.Again)
            {
                writer.WriteBoolean(CrocWire.HelloAgain, true);
            }

            writer.WriteEndObject();
        }

        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    /// <summary>The error for a hello reply other than <c>ok</c> (TCP and WebSocket legs alike); never retried.</summary>
    internal static CrocRelayException Refusal(string reply, int lane, StapleTicket ticket)
    {
        var code = (reply.StartsWith(CrocWire.HelloErrorPrefix, StringComparison.Ordinal)
            ? CrocWire.SafeCode(reply[CrocWire.HelloErrorPrefix.Length..].Trim())
            : null) ?? "bad_reply";
        return code == CrocWire.Errors.Unauthorized
            ? AccessDenied($"the relay refused data connection {lane + 1}", ticket.RelayPassword is not null, code, null)
            : new CrocRelayException(CrocErrorCode.RelayRefused, $"The relay refused data connection {lane + 1} ({code}).", code);
    }

    /// <summary>The one message for a private relay's refusal; it never quotes the password.</summary>
    internal static CrocRelayException AccessDenied(string what, bool passwordGiven, string? code, int? status) => new(
        CrocErrorCode.RelayAccessDenied,
        passwordGiven
            ? $"The relay is private and the relay password given is wrong ({what}). Check RelayPassword with the relay's operator."
            : $"The relay is private: it needs a relay password and none was given ({what}). Set RelayPassword (WithRelayPassword).",
        code ?? CrocWire.Errors.Unauthorized,
        status);

    /// <summary>Reads the relay's one-line reply byte by byte so no peer data behind it is consumed.</summary>
    private static async Task<string> ReadLineAsync(Stream stream, CancellationToken cancellationToken)
    {
        var line = new byte[CrocWire.MaxHelloReplyLength];
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

/// <summary>A TCP data port did not accept a connection within the bound <see cref="CrocTransport.Auto"/> gives it.</summary>
internal sealed class TcpConnectTimeoutException(string message, Exception innerException) : TimeoutException(message, innerException);

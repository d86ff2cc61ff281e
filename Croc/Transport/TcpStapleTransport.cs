using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using CrocNet.Protocol;

namespace CrocNet.Transport;

/// <summary>
/// A data connection over TCP: connect to the lane's port, send the hello line <c>{"channel":"…","uuid":"…"}\n</c>,
/// expect <c>ok\n</c>.
/// </summary>
internal sealed class TcpStapleTransport : IStapleTransport
{
    public static readonly TcpStapleTransport Instance = new();

    private const int SocketBufferSize = 4 * 1024 * 1024;

    public async ValueTask<Stream> ConnectAsync(StapleTarget target, int lane, StapleTicket ticket, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp)
        {
            NoDelay = true,
            SendBufferSize = SocketBufferSize,
            ReceiveBufferSize = SocketBufferSize,
        };
        try
        {
            await socket.ConnectAsync(target.Host, target.Ports[lane], cancellationToken).ConfigureAwait(false);
            var stream = new NetworkStream(socket, ownsSocket: true);
            try
            {
                await stream.WriteAsync(BuildHello(ticket), cancellationToken).ConfigureAwait(false);
                var reply = await ReadLineAsync(stream, cancellationToken).ConfigureAwait(false);
                if (reply == CrocWire.HelloOk)
                {
                    return stream;
                }

                var code = (reply.StartsWith(CrocWire.HelloErrorPrefix, StringComparison.Ordinal)
                    ? CrocWire.SafeCode(reply[CrocWire.HelloErrorPrefix.Length..].Trim())
                    : null) ?? "bad_reply";
                throw new CrocRelayException(CrocErrorCode.RelayRefused, $"The relay refused data connection {lane + 1} ({code}).", code);
            }
            catch
            {
                await stream.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    internal static byte[] BuildHello(StapleTicket ticket)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString(CrocWire.HelloChannel, ticket.Channel);
            writer.WriteString(CrocWire.HelloUuid, ticket.Uuid);
            writer.WriteEndObject();
        }

        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

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

using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text.Json;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Protocol;

namespace CrocNet.Relay.Staple;

/// <summary>
/// A parsed hello. Holds secrets (the uuid, the relay password): never log it. <see cref="Lane"/> is given by WebSocket
/// legs (a TCP leg's lane is its port's); <see cref="Auth"/> is the relay password a TCP hello carries.
/// </summary>
internal sealed record Hello(string Channel, string Uuid, int? Lane = null, string? Auth = null, bool Again = false)
{
    public override string ToString() => $"Hello {{ Channel = {Channel} }}";
}

/// <summary>
/// Reads exactly one hello line from a socket and not one byte more: it peeks, then consumes only up to the newline,
/// so payload a client sends right after its hello stays in the socket for the pipe.
/// </summary>
internal static class HelloReader
{
    /// <summary>The longest hello line, newline included.</summary>
    public const int MaxLength = RelayWire.Hello.MaxLength;

    /// <summary>Reads the hello; the caller times it out through <paramref name="cancellationToken"/>.</summary>
    public static async ValueTask<(Hello? Hello, RelayError Error)> ReadAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxLength];
        var length = 0;
        while (true)
        {
            var peeked = await socket.ReceiveAsync(buffer.AsMemory(length), SocketFlags.Peek, cancellationToken).ConfigureAwait(false);
            if (peeked == 0)
            {
                return (null, RelayErrors.BadRequest("The connection ended before the hello line."));
            }

            var newline = buffer.AsSpan(length, peeked).IndexOf((byte)'\n');
            var take = newline >= 0 ? newline + 1 : peeked;
            await ConsumeAsync(socket, buffer.AsMemory(length, take), cancellationToken).ConfigureAwait(false);
            length += take;
            if (newline >= 0)
            {
                return Parse(buffer.AsSpan(0, length - 1));
            }

            if (length == MaxLength)
            {
                return (null, RelayErrors.BadRequest($"The hello line is longer than {MaxLength} bytes."));
            }
        }
    }

    /// <summary>
    /// Reads the hello from a pipe, taking only the line: what follows stays in the pipe for the leg's payload. The
    /// caller times it out through <paramref name="cancellationToken"/>.
    /// </summary>
    public static async ValueTask<(Hello? Hello, RelayError Error)> ReadAsync(PipeReader reader, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            var window = buffer.Slice(0, Math.Min(buffer.Length, MaxLength));
            if (window.PositionOf((byte)'\n') is { } newline)
            {
                var line = window.Slice(0, newline);
                var parsed = line.IsSingleSegment ? Parse(line.FirstSpan) : Parse(line.ToArray());
                reader.AdvanceTo(buffer.GetPosition(1, newline));
                return parsed;
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
            if (buffer.Length >= MaxLength)
            {
                return (null, RelayErrors.BadRequest($"The hello line is longer than {MaxLength} bytes."));
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                return (null, RelayErrors.BadRequest("The connection ended before the hello line."));
            }
        }
    }

    /// <summary>Parses <c>{"channel":"…","uuid":"…"}</c> (a trailing carriage return is tolerated).</summary>
    public static (Hello? Hello, RelayError Error) Parse(ReadOnlySpan<byte> line)
    {
        if (line.Length > 0 && line[^1] == (byte)'\r')
        {
            line = line[..^1];
        }

        HelloDto? dto;
        try
        {
            dto = JsonSerializer.Deserialize(line, StapleJsonContext.Default.HelloDto);
        }
        catch (JsonException)
        {
            return (null, RelayErrors.BadRequest("The hello line is not the JSON object {\"channel\":…,\"uuid\":…}."));
        }

        if (dto?.Channel is not { } channel || !ChannelNames.IsValid(channel))
        {
            return (null, RelayErrors.BadRequest("The hello line needs a valid channel."));
        }

        if (dto.Uuid is not { Length: > 0 and <= 128 } uuid)
        {
            return (null, RelayErrors.BadRequest("The hello line needs the participant's uuid."));
        }

        if (dto.Lane is < 0)
        {
            return (null, RelayErrors.BadRequest("The hello's lane must not be negative."));
        }

        return (new Hello(channel, uuid, dto.Lane, dto.Auth, dto.Again == true), default);
    }

    private static async ValueTask ConsumeAsync(Socket socket, Memory<byte> target, CancellationToken cancellationToken)
    {
        // The bytes were peeked, so they are in the socket buffer: these receives complete at once.
        while (!target.IsEmpty)
        {
            var read = await socket.ReceiveAsync(target, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                throw new SocketException((int)SocketError.ConnectionReset);
            }

            target = target[read..];
        }
    }
}

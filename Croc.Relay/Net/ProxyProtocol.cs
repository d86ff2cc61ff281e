using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CrocNet.Relay.Net;

/// <summary>Why a PROXY protocol header was refused.</summary>
internal enum ProxyHeaderError
{
    /// <summary>Not refused.</summary>
    None = 0,

    /// <summary>The connection ended (or the time ran out) inside the header.</summary>
    Truncated,

    /// <summary>The bytes are not a header of version 1 or 2.</summary>
    Malformed,

    /// <summary>The header is longer than the relay reads (<see cref="ProxyProtocol.MaxV1Length"/>, <see cref="ProxyProtocol.MaxV2Length"/>).</summary>
    TooLong,

    /// <summary>A well-formed header of a kind the relay does not serve (UDP, a UNIX socket, an unknown command).</summary>
    Unsupported,

    /// <summary>A connection from a trusted proxy that must carry a header (<see cref="CrocRelayOptions.ProxyProtocol"/>) does not.</summary>
    Missing,
}

/// <summary>
/// A parsed PROXY protocol header. <see cref="Source"/> is the client's address; <see langword="null"/> for a version 2
/// <c>LOCAL</c> command or a version 1 <c>UNKNOWN</c> header (the proxy's own connection, e.g. a health check: the
/// peer's address stands).
/// </summary>
internal readonly record struct ProxyHeader(IPAddress? Source, int Length);

/// <summary>
/// The PROXY protocol (HAProxy's, versions 1 and 2) in front of a TCP leg from a trusted proxy. The header is optional
/// but detected: a connection that starts with <c>P</c> (version 1, <c>PROXY </c>) or with <c>\r</c> (the version 2
/// signature) must carry a complete, valid header; anything else (a hello starts with <c>{</c>) carries none. Reading
/// consumes exactly the header, never a byte of what follows.
/// </summary>
internal static class ProxyProtocol
{
    /// <summary>The longest version 1 header, <c>\r\n</c> included (the specification's bound).</summary>
    public const int MaxV1Length = 107;

    /// <summary>
    /// The longest version 2 header read: 16 bytes, then at most 512 of addresses and TLVs (an IPv6 address block is 36
    /// bytes; proxies add TLVs such as a VPC endpoint id or a unique id of up to 128 bytes).
    /// </summary>
    public const int MaxV2Length = 16 + 512;

    /// <summary>The version 2 signature.</summary>
    public static ReadOnlySpan<byte> V2Signature => "\r\n\r\n\0\r\nQUIT\n"u8;

    private static ReadOnlySpan<byte> V1Prefix => "PROXY "u8;

    /// <summary>What the bytes so far say.</summary>
    internal enum Status
    {
        /// <summary>No header: the stream does not start like one.</summary>
        Absent,

        /// <summary>A header so far; <see cref="Parse"/> says how many more bytes may be read without passing its end.</summary>
        Incomplete,

        /// <summary>A whole header.</summary>
        Complete,

        /// <summary>Refused (see the error).</summary>
        Invalid,
    }

    /// <summary>
    /// Parses the start of a stream. <paramref name="more"/> is, for <see cref="Status.Incomplete"/>, the most bytes that
    /// may be read next without reading past the header (version 1 can end at any <c>\n</c>, so the reader stops there).
    /// </summary>
    public static Status Parse(ReadOnlySpan<byte> data, out ProxyHeader header, out ProxyHeaderError error, out int more)
    {
        header = default;
        error = ProxyHeaderError.None;
        more = 0;
        if (data.IsEmpty)
        {
            more = 1;
            return Status.Incomplete;
        }

        return data[0] switch
        {
            (byte)'P' => ParseV1(data, out header, out error, out more),
            (byte)'\r' => ParseV2(data, out header, out error, out more),
            _ => Status.Absent,
        };
    }

    /// <summary>
    /// Reads the header, if any, through <paramref name="peek"/> (returns the bytes available without consuming them; 0 at
    /// the end of the stream) and <paramref name="consume"/> (takes exactly that many bytes, already peeked). The caller
    /// times it out through <paramref name="cancellationToken"/>.
    /// </summary>
    public static async ValueTask<(ProxyHeader? Header, ProxyHeaderError Error)> ReadAsync(
        Func<Memory<byte>, CancellationToken, ValueTask<int>> peek,
        Func<Memory<byte>, CancellationToken, ValueTask> consume,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(peek);
        ArgumentNullException.ThrowIfNull(consume);
        var buffer = new byte[MaxV2Length];
        var length = 0;
        var more = 1;
        while (true)
        {
            var peeked = await peek(buffer.AsMemory(length, more), cancellationToken).ConfigureAwait(false);
            if (peeked == 0)
            {
                // Nothing at all is a connection without a header (it closed before its hello: the session says so).
                return length == 0 ? (null, ProxyHeaderError.None) : (null, ProxyHeaderError.Truncated);
            }

            var window = buffer.AsSpan(0, length + peeked);
            var status = Parse(window, out var header, out var error, out var next);
            if (status == Status.Absent)
            {
                return (null, ProxyHeaderError.None);
            }

            // Take only what belongs to the header: through its end when complete, else all that was peeked (the peek
            // was bounded by what may be read, and an incomplete version 1 line has no '\n' yet).
            var take = status switch
            {
                Status.Complete => header.Length - length,
                Status.Incomplete => peeked,
                _ => 0,
            };
            if (take > 0)
            {
                await consume(buffer.AsMemory(length, take), cancellationToken).ConfigureAwait(false);
                length += take;
            }

            switch (status)
            {
                case Status.Complete:
                    return (header, ProxyHeaderError.None);
                case Status.Invalid:
                    return (null, error);
            }

            more = next;
        }
    }

    /// <summary>Reads the header from a socket (peeking, like the hello reader), consuming nothing past it.</summary>
    public static ValueTask<(ProxyHeader? Header, ProxyHeaderError Error)> ReadAsync(Socket socket, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(socket);
        return ReadAsync(
            (target, token) => socket.ReceiveAsync(target, SocketFlags.Peek, token),
            async (target, token) =>
            {
                while (!target.IsEmpty)
                {
                    var read = await socket.ReceiveAsync(target, SocketFlags.None, token).ConfigureAwait(false);
                    if (read == 0)
                    {
                        throw new SocketException((int)SocketError.ConnectionReset);
                    }

                    target = target[read..];
                }
            },
            cancellationToken);
    }

    /// <summary>
    /// The client address of a leg from trusted proxy <paramref name="peer"/>, whose connections must carry a header: the
    /// header's source, or the peer itself for a <c>LOCAL</c>/<c>UNKNOWN</c> one. <see langword="null"/> with the reason
    /// when the header is missing or refused, also when it does not arrive within <paramref name="timeout"/>. Never throws for the
    /// connection's failure (it reads as <see cref="ProxyHeaderError.Truncated"/>).
    /// </summary>
    public static async ValueTask<(IPAddress? Address, ProxyHeaderError Error)> ReadSourceAsync(
        Socket socket, IPAddress peer, TimeSpan timeout, TimeProvider timeProvider, CancellationToken evicted, CancellationToken stopping)
    {
        using var deadline = new CancellationTokenSource(timeout, timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, evicted, stopping);
        try
        {
            var (header, error) = await ReadAsync(socket, linked.Token).ConfigureAwait(false);
            return error != ProxyHeaderError.None ? (null, error)
                : header is null ? (null, ProxyHeaderError.Missing)
                : (header.Value.Source ?? peer, ProxyHeaderError.None);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            return (null, ProxyHeaderError.Truncated);
        }
    }

    private static Status ParseV1(ReadOnlySpan<byte> data, out ProxyHeader header, out ProxyHeaderError error, out int more)
    {
        header = default;
        error = ProxyHeaderError.None;
        more = 0;
        var prefix = Math.Min(data.Length, V1Prefix.Length);
        if (!data[..prefix].SequenceEqual(V1Prefix[..prefix]))
        {
            return Invalid(ProxyHeaderError.Malformed, out error);
        }

        var newline = data.IndexOf((byte)'\n');
        if (newline < 0)
        {
            if (data.Length >= MaxV1Length)
            {
                return Invalid(ProxyHeaderError.TooLong, out error);
            }

            more = MaxV1Length - data.Length;
            return Status.Incomplete;
        }

        if (newline + 1 > MaxV1Length)
        {
            return Invalid(ProxyHeaderError.TooLong, out error);
        }

        if (newline < V1Prefix.Length + 1 || data[newline - 1] != (byte)'\r')
        {
            return Invalid(ProxyHeaderError.Malformed, out error);
        }

        var line = data[V1Prefix.Length..(newline - 1)];
        foreach (var b in line)
        {
            if (b is < 0x20 or > 0x7E)
            {
                return Invalid(ProxyHeaderError.Malformed, out error);
            }
        }

        Span<char> chars = stackalloc char[line.Length];
        Encoding.ASCII.GetChars(line, chars);
        ReadOnlySpan<char> text = chars;
        if (text.StartsWith("UNKNOWN", StringComparison.Ordinal) && (text.Length == 7 || text[7] == ' '))
        {
            // The proxy could not tell: whatever follows is ignored, and the peer's address stands.
            header = new ProxyHeader(null, newline + 1);
            return Status.Complete;
        }

        Span<Range> fields = stackalloc Range[6];
        if (text.Split(fields, ' ') != 5)
        {
            return Invalid(ProxyHeaderError.Malformed, out error);
        }

        var family = text[fields[0]];
        var v4 = family.SequenceEqual("TCP4");
        if (!v4 && !family.SequenceEqual("TCP6"))
        {
            return Invalid(ProxyHeaderError.Malformed, out error);
        }

        if (!TryParseV1Address(text[fields[1]], v4, out var source) || !TryParseV1Address(text[fields[2]], v4, out _)
            || !TryParsePort(text[fields[3]]) || !TryParsePort(text[fields[4]]))
        {
            return Invalid(ProxyHeaderError.Malformed, out error);
        }

        header = new ProxyHeader(RelayAddress.Normalize(source), newline + 1);
        return Status.Complete;
    }

    private static bool TryParseV1Address(ReadOnlySpan<char> text, bool v4, out IPAddress address)
    {
        if (v4)
        {
            return ClientAddresses.TryParseIPv4(text, out address);
        }

        address = IPAddress.None;
        if (text.IsEmpty || text.Length > 45 || !text.Contains(':') || text.ContainsAny('%', '[', ']') || !IPAddress.TryParse(text, out var parsed) || parsed.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return false;
        }

        address = parsed;
        return true;
    }

    private static bool TryParsePort(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty || text.Length > 5 || (text.Length > 1 && text[0] == '0'))
        {
            return false;
        }

        var port = 0;
        foreach (var c in text)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }

            port = (port * 10) + (c - '0');
        }

        return port <= 65535;
    }

    private static Status ParseV2(ReadOnlySpan<byte> data, out ProxyHeader header, out ProxyHeaderError error, out int more)
    {
        header = default;
        error = ProxyHeaderError.None;
        more = 0;
        var signature = Math.Min(data.Length, V2Signature.Length);
        if (!data[..signature].SequenceEqual(V2Signature[..signature]))
        {
            return Invalid(ProxyHeaderError.Malformed, out error);
        }

        if (data.Length < 16)
        {
            more = 16 - data.Length;
            return Status.Incomplete;
        }

        var versionCommand = data[12];
        if (versionCommand >> 4 != 2)
        {
            return Invalid(ProxyHeaderError.Malformed, out error);
        }

        var command = versionCommand & 0x0F;
        if (command > 1)
        {
            return Invalid(ProxyHeaderError.Unsupported, out error);
        }

        var total = 16 + BinaryPrimitives.ReadUInt16BigEndian(data[14..16]);
        if (total > MaxV2Length)
        {
            return Invalid(ProxyHeaderError.TooLong, out error);
        }

        if (data.Length < total)
        {
            more = total - data.Length;
            return Status.Incomplete;
        }

        var family = data[13];
        var block = data[16..total];
        if (command == 0)
        {
            // LOCAL: the proxy's own connection (a health check); the address block, if any, is ignored.
            header = new ProxyHeader(null, total);
            return Status.Complete;
        }

        switch (family)
        {
            case 0x11 when block.Length >= 12:
                // TCP over IPv4: source address, destination address, source port, destination port.
                header = new ProxyHeader(new IPAddress(block[..4]), total);
                return Status.Complete;
            case 0x21 when block.Length >= 36:
                // TCP over IPv6.
                header = new ProxyHeader(RelayAddress.Normalize(new IPAddress(block[..16])), total);
                return Status.Complete;
            case 0x11 or 0x21:
                return Invalid(ProxyHeaderError.Malformed, out error);
            case 0x00:
                // PROXY with an unspecified family: the proxy could not tell; the peer's address stands.
                header = new ProxyHeader(null, total);
                return Status.Complete;
            default:
                return Invalid(family >> 4 > 3 || (family & 0x0F) > 2 ? ProxyHeaderError.Malformed : ProxyHeaderError.Unsupported, out error);
        }
    }

    private static Status Invalid(ProxyHeaderError reason, out ProxyHeaderError error)
    {
        error = reason;
        return Status.Invalid;
    }
}

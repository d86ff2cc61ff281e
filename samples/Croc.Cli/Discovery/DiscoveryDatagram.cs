using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace CrocNet.Cli.Discovery;

/// <summary>
/// The two LAN discovery datagrams, one ASCII line each:
/// <c>croc-discover/1 &lt;channel&gt;\n</c> (the receiver's query) and
/// <c>croc-relay/1 &lt;channel&gt; &lt;relay url&gt;\n</c> (the sender's answer).
/// </summary>
/// <remarks>
/// Only the channel travels: it is public (the relay sees it too); the secret never leaves the process.
/// Anything else (wrong prefix, a missing or extra field, a byte outside printable ASCII, no final newline,
/// more than <see cref="MaxLength"/> bytes) is not a datagram of this protocol and is ignored.
/// </remarks>
internal static class DiscoveryDatagram
{
    /// <summary>The UDP port the sender's responder listens on, the same number as the relay's HTTP port.</summary>
    public const int DefaultPort = 9009;

    /// <summary>The longest datagram either side accepts or sends.</summary>
    public const int MaxLength = 512;

    private const string QueryPrefix = "croc-discover/1 ";
    private const string ReplyPrefix = "croc-relay/1 ";
    private const int MaxChannelLength = 64;

    /// <summary>The receiver's query for <paramref name="channel"/>.</summary>
    public static byte[] Query(string channel) =>
        IsChannel(channel)
            ? Encoding.ASCII.GetBytes(QueryPrefix + channel + "\n")
            : throw new ArgumentException("A channel is 1-64 characters of a-z and 0-9.", nameof(channel));

    /// <summary>The sender's answer: the channel it serves and where its relay is.</summary>
    public static byte[] Reply(string channel, Uri relay)
    {
        ArgumentNullException.ThrowIfNull(relay);
        if (!IsChannel(channel))
        {
            throw new ArgumentException("A channel is 1-64 characters of a-z and 0-9.", nameof(channel));
        }

        var url = relay.AbsoluteUri;
        var bytes = Encoding.ASCII.GetBytes(ReplyPrefix + channel + " " + url + "\n");
        return IsRelayUrl(url, out _) && bytes.Length <= MaxLength
            ? bytes
            : throw new ArgumentException($"'{url}' is not an http(s) URL that fits a discovery reply.", nameof(relay));
    }

    /// <summary>Reads a query; false for anything that is not exactly one.</summary>
    public static bool TryParseQuery(ReadOnlySpan<byte> datagram, [NotNullWhen(true)] out string? channel)
    {
        channel = null;
        if (!TryReadLine(datagram, QueryPrefix, out var rest) || !IsChannel(rest))
        {
            return false;
        }

        channel = rest;
        return true;
    }

    /// <summary>Reads an answer; false for anything that is not exactly one.</summary>
    public static bool TryParseReply(ReadOnlySpan<byte> datagram, [NotNullWhen(true)] out string? channel, [NotNullWhen(true)] out Uri? relay)
    {
        channel = null;
        relay = null;
        if (!TryReadLine(datagram, ReplyPrefix, out var rest))
        {
            return false;
        }

        var fields = rest.Split(' ');
        if (fields.Length != 2 || !IsChannel(fields[0]) || !IsRelayUrl(fields[1], out var url))
        {
            return false;
        }

        channel = fields[0];
        relay = url;
        return true;
    }

    private static bool TryReadLine(ReadOnlySpan<byte> datagram, string prefix, [NotNullWhen(true)] out string? rest)
    {
        rest = null;
        if (datagram.Length > MaxLength || datagram.Length <= prefix.Length || datagram[^1] != (byte)'\n')
        {
            return false;
        }

        var line = datagram[..^1];
        foreach (var b in line)
        {
            // Printable ASCII and the space only: no control characters, nothing that needs decoding.
            if (b is < 0x20 or > 0x7E)
            {
                return false;
            }
        }

        var text = Encoding.ASCII.GetString(line);
        if (!text.StartsWith(prefix, StringComparison.Ordinal))
        {
            return false;
        }

        rest = text[prefix.Length..];
        return true;
    }

    private static bool IsChannel(string? channel) =>
        channel is { Length: > 0 and <= MaxChannelLength } && channel.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c));

    private static bool IsRelayUrl(string text, [NotNullWhen(true)] out Uri? url) =>
        Uri.TryCreate(text, UriKind.Absolute, out url)
        && url.Scheme is "http" or "https"
        && url.UserInfo.Length == 0
        && url.Query.Length == 0
        && url.Fragment.Length == 0;
}

using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace CrocNet.Codes;

/// <summary>
/// A code phrase <c>&lt;channel&gt;-&lt;secret&gt;</c>: the channel names the relay channel, the secret is the PAKE
/// password. The channel is the text before the first '-', the secret everything after it.
/// </summary>
/// <remarks>
/// Codes are compared case-insensitively: parsing trims surrounding whitespace, applies Unicode NFC and lowercases.
/// <see cref="ToString"/> hides the secret so a code can be logged safely; <see cref="Code"/> is the full text.
/// </remarks>
public sealed class CodePhrase
{
    /// <summary>The lowercase Crockford base32 alphabet of generated channels (no i, l, o, u).</summary>
    public const string ChannelAlphabet = "0123456789abcdefghjkmnpqrstvwxyz";

    /// <summary>Characters in a generated channel (8 × 5 = 40 random bits).</summary>
    public const int GeneratedChannelLength = 8;

    /// <summary>The longest channel a code may have.</summary>
    public const int MaxChannelLength = 64;

    /// <summary>The longest secret a code may have.</summary>
    public const int MaxSecretLength = 256;

    /// <summary>The fewest words <see cref="Generate"/> accepts (3 × 11 = 33 random bits).</summary>
    public const int MinWords = 3;

    /// <summary>The most words <see cref="Generate"/> accepts; 24 words of at most 8 letters fit <see cref="MaxSecretLength"/>.</summary>
    public const int MaxWords = 24;

    private CodePhrase(string channel, string secret)
    {
        Channel = channel;
        Secret = secret;
    }

    /// <summary>The relay channel: 1–64 characters of a–z and 0–9.</summary>
    public string Channel { get; }

    /// <summary>The PAKE password: 1–256 characters, lowercase, no whitespace or control characters.</summary>
    public string Secret { get; }

    /// <summary>The full code text, <c>&lt;channel&gt;-&lt;secret&gt;</c>. It contains the secret: never log it.</summary>
    public string Code => Channel + "-" + Secret;

    /// <summary>Generates a fresh code: a random channel and <paramref name="words"/> random words from the BIP-39 English list.</summary>
    /// <param name="words">How many words the secret has, from <see cref="MinWords"/> to <see cref="MaxWords"/>; each adds 11 bits.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="words"/> is outside [<see cref="MinWords"/>, <see cref="MaxWords"/>].</exception>
    public static CodePhrase Generate(int words = MinWords)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(words, MinWords);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(words, MaxWords);

        var list = WordList.Words;
        var chosen = new string[words];
        for (var i = 0; i < words; i++)
        {
            chosen[i] = list[RandomNumberGenerator.GetInt32(list.Count)];
        }

        return new CodePhrase(GenerateChannel(), string.Join('-', chosen));
    }

    /// <summary>Generates a channel name: <see cref="GeneratedChannelLength"/> random characters of <see cref="ChannelAlphabet"/>.</summary>
    public static string GenerateChannel()
    {
        Span<char> channel = stackalloc char[GeneratedChannelLength];
        for (var i = 0; i < channel.Length; i++)
        {
            channel[i] = ChannelAlphabet[RandomNumberGenerator.GetInt32(ChannelAlphabet.Length)];
        }

        return new string(channel);
    }

    /// <summary>Parses a code or throws.</summary>
    /// <param name="code">The code as typed, e.g. <c>k7f2q9xm-autumn-rocket-violin</c>.</param>
    /// <exception cref="CrocInvalidCodeException">The code is malformed; the message says what is wrong.</exception>
    public static CodePhrase Parse(string code) =>
        TryParse(code, out var phrase, out var error) ? phrase : throw new CrocInvalidCodeException(error);

    /// <summary>Parses a code.</summary>
    /// <param name="code">The code as typed.</param>
    /// <param name="phrase">The parsed code, when valid.</param>
    /// <param name="error">What is wrong, when invalid; it never quotes the secret.</param>
    /// <returns>Whether the code is valid.</returns>
    public static bool TryParse(string? code, [NotNullWhen(true)] out CodePhrase? phrase, [NotNullWhen(false)] out string? error)
    {
        phrase = null;
        error = Validate(code, out var channel, out var secret);
        if (error is not null)
        {
            return false;
        }

        phrase = new CodePhrase(channel!, secret!);
        return true;
    }

    /// <summary>The channel followed by <c>-***</c>: the secret is never shown.</summary>
    public override string ToString() => Channel + "-***";

    private static string? Validate(string? code, out string? channel, out string? secret)
    {
        channel = null;
        secret = null;
        if (string.IsNullOrWhiteSpace(code))
        {
            return "The code is empty; expected <channel>-<secret>, for example 7k2mq9xd-autumn-rocket-violin.";
        }

        var normalized = code.Trim().Normalize(NormalizationForm.FormC).ToLowerInvariant();
        var dash = normalized.IndexOf('-', StringComparison.Ordinal);
        if (dash < 0)
        {
            return "The code has no '-'; expected <channel>-<secret>, for example 7k2mq9xd-autumn-rocket-violin.";
        }

        var channelPart = normalized[..dash];
        var secretPart = normalized[(dash + 1)..];
        if (channelPart.Length == 0)
        {
            return "The code starts with '-': the channel (the text before the first '-') is empty.";
        }

        if (channelPart.Length > MaxChannelLength)
        {
            return $"The channel (the text before the first '-') is {channelPart.Length} characters; at most {MaxChannelLength} are allowed.";
        }

        foreach (var c in channelPart)
        {
            if (!char.IsAsciiLetterLower(c) && !char.IsAsciiDigit(c))
            {
                return "The channel (the text before the first '-') may contain only the letters a-z and the digits 0-9.";
            }
        }

        if (secretPart.Length == 0)
        {
            return "The code ends after the channel: the secret (the text after the first '-') is empty.";
        }

        if (secretPart.Length > MaxSecretLength)
        {
            return $"The secret (the text after the first '-') is {secretPart.Length} characters; at most {MaxSecretLength} are allowed.";
        }

        foreach (var c in secretPart)
        {
            // Invisible characters (whitespace, controls, zero-width format marks) would make two codes that look equal differ.
            if (char.IsWhiteSpace(c) || char.IsControl(c) || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.Format)
            {
                return "The secret (the text after the first '-') contains a space, a control or an invisible character; only visible characters are allowed.";
            }
        }

        if (secretPart.StartsWith('-') || secretPart.EndsWith('-') || secretPart.Contains("--", StringComparison.Ordinal))
        {
            return "The secret (the text after the first '-') has an empty word: a '-' at its start or end, or two '-' in a row.";
        }

        channel = channelPart;
        secret = secretPart;
        return null;
    }
}

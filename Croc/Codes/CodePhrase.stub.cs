// CONTRACT STUB — to be replaced by the real implementation (see issue 2). Signatures are fixed.
using System.Diagnostics.CodeAnalysis;

namespace CrocNet.Codes;

/// <summary>A code phrase: channel and secret.</summary>
public sealed class CodePhrase
{
    private CodePhrase(string channel, string secret) { Channel = channel; Secret = secret; }

    /// <summary>The relay channel.</summary>
    public string Channel { get; }

    /// <summary>The PAKE password.</summary>
    public string Secret { get; }

    /// <summary>Generates a fresh code.</summary>
    public static CodePhrase Generate(int words = 3) => throw new NotImplementedException();

    /// <summary>Generates a channel name.</summary>
    public static string GenerateChannel() => throw new NotImplementedException();

    /// <summary>Parses or throws.</summary>
    public static CodePhrase Parse(string code) => TryParse(code, out var p, out var e) ? p : throw new CrocException(CrocErrorCode.InvalidCode, e);

    /// <summary>Parses.</summary>
    public static bool TryParse(string? code, [NotNullWhen(true)] out CodePhrase? phrase, [NotNullWhen(false)] out string? error)
    {
        var i = code?.IndexOf('-', StringComparison.Ordinal) ?? -1;
        if (code is null || i <= 0 || i == code.Length - 1) { phrase = null; error = "bad"; return false; }
        phrase = new CodePhrase(code[..i], code[(i + 1)..]); error = null; return true;
    }

    /// <summary>The full code text.</summary>
    public string Code => Channel + "-" + Secret;
}

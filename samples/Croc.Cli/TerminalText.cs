using System.Globalization;
using System.Text;

namespace CrocNet.Cli;

/// <summary>Text from the other side made harmless for a terminal.</summary>
internal static class TerminalText
{
    /// <summary>
    /// Keeps the text readable but inert: line breaks (LF, CRLF) and tabs stay; every other control character
    /// (ESC starting an escape sequence that could retitle the window, clear the screen or forge a status line;
    /// a lone CR that could overwrite a line; C1 controls), and invisible or direction-changing formatting
    /// characters, are shown as <c>\uXXXX</c>.
    /// </summary>
    public static string Neutralise(string text)
    {
        var builder = new StringBuilder(text.Length);
        var runes = text.EnumerateRunes().ToList();
        for (var i = 0; i < runes.Count; i++)
        {
            var rune = runes[i];
            if (rune.Value == '\r' && i + 1 < runes.Count && runes[i + 1].Value == '\n')
            {
                continue;
            }

            if (rune.Value is '\n' or '\t' || !IsDangerous(rune))
            {
                builder.Append(rune.ToString());
            }
            else
            {
                builder.Append(CultureInfo.InvariantCulture, $"\\u{rune.Value:X4}");
            }
        }

        return builder.ToString();
    }

    private static bool IsDangerous(Rune rune) =>
        Rune.IsControl(rune)
        || rune.Value is >= 0x200B and <= 0x200F
        || rune.Value is >= 0x202A and <= 0x202E
        || rune.Value is >= 0x2066 and <= 0x2069
        || rune.Value == 0xFEFF
        || Rune.GetUnicodeCategory(rune) is UnicodeCategory.PrivateUse;
}

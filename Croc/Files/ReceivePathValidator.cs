using System.Text;

namespace CrocNet.Files;

/// <summary>
/// Decides whether a path a sender proposes may be written under the recipient's output folder.
/// The rules are deliberately portable: a name refused on any major platform is refused everywhere,
/// so a transfer never behaves differently depending on who receives it.
/// </summary>
internal static class ReceivePathValidator
{
    public const int MaxPathLength = 4096;
    public const int MaxSegmentBytes = 255;

    private static readonly System.Buffers.SearchValues<char> WindowsForbidden = System.Buffers.SearchValues.Create("<>\"|?*");

    private static readonly HashSet<string> ReservedDeviceNames = new(StringComparer.OrdinalIgnoreCase)
    {
        "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
        "COM0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9", "COM¹", "COM²", "COM³",
        "LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "LPT¹", "LPT²", "LPT³",
    };

    /// <summary>The most folder levels a path may have (a file nested 128 deep has 128 segments).</summary>
    public const int MaxDepth = 128;

    /// <summary>Splits a proposed relative path into its segments, or throws <see cref="CrocTransferException"/> (UnsafePath).</summary>
    public static string[] Validate(string? path)
    {
        Check(path);
        return path!.Split('/');
    }

    /// <summary>Checks a proposed relative path without allocating, in time linear in its length, or throws <see cref="CrocTransferException"/> (UnsafePath).</summary>
    public static void Check(string? path)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw Unsafe(path, "it is empty");
        }

        if (path.Length > MaxPathLength)
        {
            throw Unsafe(path, $"it is longer than {MaxPathLength} characters");
        }

        for (var i = 0; i < path.Length;)
        {
            // Decoded by hand: enumerating runes would turn a lone surrogate into U+FFFD and let it through, and a
            // name that is not valid Unicode can be neither normalised (for the duplicate check) nor stored everywhere.
            if (Rune.DecodeFromUtf16(path.AsSpan(i), out var rune, out var used) != System.Buffers.OperationStatus.Done)
            {
                throw Unsafe(path, $"it contains a lone surrogate U+{(int)path[i]:X4}, which is not valid Unicode");
            }

            if (IsDangerous(rune))
            {
                throw Unsafe(path, $"it contains the control or formatting character U+{rune.Value:X4} (terminal escapes and look-alike tricks are refused)");
            }

            i += used;
        }

        if (path.Contains('\\', StringComparison.Ordinal))
        {
            throw Unsafe(path, "it contains a backslash");
        }

        if (path[0] == '/')
        {
            throw Unsafe(path, "it is absolute");
        }

        if (path.Length >= 2 && path[1] == ':' && char.IsAsciiLetter(path[0]))
        {
            throw Unsafe(path, "it starts with a drive letter");
        }

        if (path.AsSpan().Count('/') >= MaxDepth)
        {
            throw Unsafe(path, $"it is nested deeper than {MaxDepth} levels");
        }

        var rest = path.AsSpan();
        while (true)
        {
            var slash = rest.IndexOf('/');
            CheckSegment(path, slash < 0 ? rest : rest[..slash]);
            if (slash < 0)
            {
                return;
            }

            rest = rest[(slash + 1)..];
        }
    }

    private static void CheckSegment(string path, ReadOnlySpan<char> segment)
    {
        if (segment.IsEmpty)
        {
            throw Unsafe(path, "it has an empty segment ('//' or a trailing '/')");
        }

        if (segment is "." or "..")
        {
            throw Unsafe(path, "it contains '.' or '..'");
        }

        if (segment.Contains(':'))
        {
            throw Unsafe(path, "a segment contains ':' (drive letters and alternate data streams are refused)");
        }

        if (segment.IndexOfAny(WindowsForbidden) >= 0)
        {
            throw Unsafe(path, "a segment contains a character Windows forbids in names");
        }

        if (segment[^1] is '.' or ' ')
        {
            throw Unsafe(path, "a segment ends with a dot or a space");
        }

        var dot = segment.IndexOf('.');
        var stem = (dot < 0 ? segment : segment[..dot]).TrimEnd(' ');
        if (stem.Length <= 7 && ReservedDeviceNames.GetAlternateLookup<ReadOnlySpan<char>>().Contains(stem))
        {
            throw Unsafe(path, $"'{segment}' is a reserved device name");
        }

        if (Encoding.UTF8.GetByteCount(segment) > MaxSegmentBytes)
        {
            throw Unsafe(path, $"a segment is longer than {MaxSegmentBytes} bytes");
        }
    }

    private static bool IsDangerous(Rune rune) =>
        Rune.IsControl(rune) // C0, DEL, C1 — including ESC, which starts terminal escape sequences
        || rune.Value is >= 0x200B and <= 0x200F // zero-width characters, LRM/RLM
        || rune.Value is >= 0x202A and <= 0x202E // bidirectional embeddings and overrides
        || rune.Value is >= 0x2066 and <= 0x2069 // bidirectional isolates
        || rune.Value == 0xFEFF
        || Rune.GetUnicodeCategory(rune) is System.Globalization.UnicodeCategory.Surrogate or System.Globalization.UnicodeCategory.PrivateUse;

    private static CrocTransferException Unsafe(string? path, string reason) => new(
        CrocErrorCode.UnsafePath,
        $"Refused the sender's path {Describe(path)}: {reason}. Nothing was written.");

    /// <summary>A printable, escaped, quoted rendering of an untrusted path for messages (never echoes control characters).</summary>
    public static string Describe(string? path) => path is null ? "(none)" : "\"" + Escape(path) + "\"";

    /// <summary>Untrusted text made safe for a terminal: control and formatting characters become <c>\uXXXX</c>; at most 200 characters.</summary>
    public static string Escape(string text)
    {
        var builder = new StringBuilder();
        foreach (var rune in text.EnumerateRunes().Take(200))
        {
            if (IsDangerous(rune))
            {
                builder.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\u{rune.Value:X4}");
            }
            else
            {
                builder.Append(rune.ToString());
            }
        }

        return builder.Append(text.Length > 200 ? "…" : "").ToString();
    }
}

using System.Globalization;

namespace CrocNet.Relay.Net;

/// <summary>
/// How many connections the process can afford: derived from the soft limit on open file descriptors
/// (<c>RLIMIT_NOFILE</c>), keeping a reserve for everything else the runtime opens (files, pipes, epoll, timers).
/// A process that runs out of descriptors can be aborted by the runtime, so connection limits stay below it.
/// </summary>
internal static class FileDescriptorBudget
{
    /// <summary>The limit assumed where it cannot be read (not Linux, or <c>/proc</c> not mounted).</summary>
    public const int AssumedLimit = 65_536;

    private static readonly Lazy<int> Soft = new(ReadSoftLimit);

    /// <summary>The process's soft descriptor limit, or <see cref="AssumedLimit"/>.</summary>
    public static int Limit => Soft.Value;

    /// <summary>Descriptors kept free of connections: 128 plus a tenth of the limit, at most half of it.</summary>
    public static int Reserve(int limit) => Math.Min(limit / 2, 128 + (limit / 10));

    /// <summary>The default relay-wide connection limit for one of the relay's two kinds of connections (HTTP, stapling).</summary>
    public static int DefaultConnections(int limit, int cap) => Math.Clamp((limit - Reserve(limit)) / 2, 8, cap);

    /// <summary>Parses the soft "Max open files" of <c>/proc/self/limits</c>; "unlimited" counts as <see cref="int.MaxValue"/>.</summary>
    internal static int? ParseLimits(string text)
    {
        foreach (var line in text.Split('\n'))
        {
            if (!line.StartsWith("Max open files", StringComparison.Ordinal))
            {
                continue;
            }

            var fields = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 0)
            {
                return null;
            }

            if (fields[0] == "unlimited")
            {
                return int.MaxValue;
            }

            return long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var soft) && soft > 0
                ? (int)Math.Min(soft, int.MaxValue)
                : null;
        }

        return null;
    }

    private static int ReadSoftLimit()
    {
        if (!OperatingSystem.IsLinux())
        {
            return AssumedLimit;
        }

        try
        {
            return ParseLimits(File.ReadAllText("/proc/self/limits")) ?? AssumedLimit;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return AssumedLimit;
        }
    }
}

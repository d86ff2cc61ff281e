using System.Net;

namespace CrocNet.Cli.Discovery;

/// <summary>
/// How often the responder may answer: a few times a second per source address and a few dozen times a second
/// in all, so a spoofed source cannot turn it into a reflector. Fixed one-second windows; not thread-safe (the
/// responder answers from one loop).
/// </summary>
internal sealed class DiscoveryRateLimiter(TimeProvider timeProvider, int perSourcePerSecond = 3, int totalPerSecond = 30, int maxSources = 256)
{
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(1);
    private readonly Dictionary<IPAddress, (long Start, int Count)> _sources = [];
    private (long Start, int Count) _total = (long.MinValue, 0);

    /// <summary>Whether an answer to <paramref name="source"/> may be sent now (and counts it if so).</summary>
    public bool TryAcquire(IPAddress source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var now = timeProvider.GetTimestamp();
        if (Expired(_total.Start, now))
        {
            _total = (now, 0);
        }

        if (_total.Count >= totalPerSecond)
        {
            return false;
        }

        if (!_sources.TryGetValue(source, out var entry) || Expired(entry.Start, now))
        {
            if (!_sources.ContainsKey(source) && _sources.Count >= maxSources)
            {
                // Forget the sources whose window has passed; if all are recent, a new one waits its turn.
                foreach (var stale in _sources.Where(s => Expired(s.Value.Start, now)).Select(s => s.Key).ToList())
                {
                    _sources.Remove(stale);
                }

                if (_sources.Count >= maxSources)
                {
                    return false;
                }
            }

            entry = (now, 0);
        }

        if (entry.Count >= perSourcePerSecond)
        {
            return false;
        }

        _sources[source] = (entry.Start, entry.Count + 1);
        _total = (_total.Start, _total.Count + 1);
        return true;
    }

    private bool Expired(long start, long now) => start == long.MinValue || timeProvider.GetElapsedTime(start, now) >= Window;
}

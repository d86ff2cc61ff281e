using System.Net;
using CrocNet.Relay.Protocol;

namespace CrocNet.Relay.Net;

/// <summary>
/// A token bucket per address key on the relay's clock: <c>perMinute</c> tokens at once, refilled evenly over a minute.
/// Thread-safe. Keys whose bucket has refilled are dropped when the table grows, so memory stays bounded by the
/// addresses active within about a minute (at most 65,536).
/// </summary>
internal sealed class AddressRateLimit
{
    private const int PruneAbove = 4_096;

    /// <summary>Beyond this many limited addresses a new one is not tracked (the limit fails open rather than grow).</summary>
    private const int MaxEntries = 65_536;

    private readonly Dictionary<IPAddress, Bucket> _buckets = [];
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly double _capacity;
    private readonly double _perSecond;
    private long _lastPrune;

    public AddressRateLimit(int perMinute, TimeProvider time)
    {
        _capacity = perMinute;
        _perSecond = perMinute / 60.0;
        _time = time;
    }

    /// <summary>Whether <paramref name="key"/> has a whole token left (nothing is taken).</summary>
    public bool HasToken(IPAddress key)
    {
        lock (_lock)
        {
            return Refilled(key) >= 1;
        }
    }

    /// <summary>Takes a token when one is left.</summary>
    public bool TryTake(IPAddress key)
    {
        lock (_lock)
        {
            var tokens = Refilled(key);
            if (tokens < 1)
            {
                return false;
            }

            Store(key, tokens - 1);
            return true;
        }
    }

    /// <summary>Takes a token, or what is left of one (a failure is counted even when the bucket is empty).</summary>
    public void Take(IPAddress key)
    {
        lock (_lock)
        {
            Store(key, Math.Max(0, Refilled(key) - 1));
        }
    }

    /// <summary>Gives back a token taken for something that did not happen.</summary>
    public void Refund(IPAddress key)
    {
        lock (_lock)
        {
            Store(key, Math.Min(_capacity, Refilled(key) + 1));
        }
    }

    private double Refilled(IPAddress key)
    {
        if (!_buckets.TryGetValue(key, out var bucket))
        {
            return _capacity;
        }

        var seconds = _time.GetElapsedTime(bucket.Stamp).TotalSeconds;
        return Math.Min(_capacity, bucket.Tokens + (seconds * _perSecond));
    }

    private void Store(IPAddress key, double tokens)
    {
        var now = _time.GetTimestamp();
        if (tokens >= _capacity)
        {
            _buckets.Remove(key);
            return;
        }

        if (_buckets.Count >= PruneAbove && !_buckets.ContainsKey(key) && _time.GetElapsedTime(_lastPrune, now) >= RelayTimings.PruneInterval)
        {
            // At most once a second, so a flood of new addresses costs linear work, not quadratic.
            _lastPrune = now;
            foreach (var (other, bucket) in _buckets.ToList())
            {
                if (bucket.Tokens + (_time.GetElapsedTime(bucket.Stamp, now).TotalSeconds * _perSecond) >= _capacity)
                {
                    _buckets.Remove(other);
                }
            }
        }

        if (_buckets.Count < MaxEntries || _buckets.ContainsKey(key))
        {
            _buckets[key] = new Bucket(tokens, now);
        }
    }

    private readonly record struct Bucket(double Tokens, long Stamp);
}

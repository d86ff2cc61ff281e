using System.Net;
using CrocNet.Relay.Net;

namespace CrocNet.Relay.Staple;

/// <summary>
/// The one budget every leg draws on, whatever its transport (a TCP socket, a WebSocket): open connections relay-wide
/// (<see cref="CrocRelayOptions.MaxConnections"/>) and per address, and slots for connections that have not sent
/// their hello yet (<see cref="CrocRelayOptions.MaxPendingHellos"/>, relay-wide and per address, with the fair
/// eviction). Thread-safe.
/// </summary>
internal sealed class StapleAdmission
{
    private readonly CrocRelayOptions _options;
    private readonly AddressCounter _open = new();
    private readonly Dictionary<IPAddress, LinkedList<PendingHello>> _pendingByAddress = [];
    private readonly Lock _pendingLock = new();
    private int _pending;

    public StapleAdmission(CrocRelayOptions options, int maxConnections)
    {
        _options = options;
        MaxConnections = maxConnections;
    }

    /// <summary>The relay-wide limit on open legs in force (configured or derived).</summary>
    public int MaxConnections { get; }

    /// <summary>How many legs are open now, every transport together.</summary>
    public int OpenConnections => _open.Total;

    /// <summary>How many accepted legs have not sent their hello yet, every transport together.</summary>
    public int PendingHellos
    {
        get
        {
            lock (_pendingLock)
            {
                return _pending;
            }
        }
    }

    /// <summary>
    /// Takes a connection slot for the address key <paramref name="key"/>; <see langword="false"/> past either limit. A
    /// trusted proxy carries many clients, so only the relay-wide limit applies to it.
    /// </summary>
    public bool TryOpen(IPAddress key, bool trustedProxy = false) =>
        _open.TryAcquire(key, trustedProxy ? int.MaxValue : _options.MaxConnectionsPerAddress, MaxConnections);

    /// <summary>Gives a connection slot back (once per successful <see cref="TryOpen"/>).</summary>
    public void Close(IPAddress key) => _open.Release(key);

    /// <summary>
    /// Reserves a pre-hello slot for <paramref name="key"/>; returns <see langword="null"/> and which limit refused it
    /// when none is free. When the relay-wide slots are all taken, an address that holds fewer than the address holding
    /// the most (by more than one) takes that address's oldest slot: <paramref name="evicted"/> is the leg to close.
    /// A trusted proxy is held only to the relay-wide limit.
    /// </summary>
    public PendingHello? TryReservePending(IPAddress key, out string? scope, out PendingHello? evicted, bool trustedProxy = false)
    {
        evicted = null;
        lock (_pendingLock)
        {
            _pendingByAddress.TryGetValue(key, out var mine);
            var count = mine?.Count ?? 0;
            if (!trustedProxy && count >= _options.MaxPendingHellosPerAddress)
            {
                scope = "per address";
                return null;
            }

            if (_pending >= _options.MaxPendingHellos)
            {
                LinkedList<PendingHello>? heaviest = null;
                foreach (var list in _pendingByAddress.Values)
                {
                    if (heaviest is null || list.Count > heaviest.Count)
                    {
                        heaviest = list;
                    }
                }

                if (heaviest is null || heaviest.Count <= count + 1)
                {
                    scope = "relay-wide";
                    return null;
                }

                evicted = heaviest.First!.Value;
                RemoveLocked(evicted);
            }

            if (mine is null)
            {
                mine = new LinkedList<PendingHello>();
                _pendingByAddress[key] = mine;
            }

            var entry = new PendingHello(key);
            entry.Node = mine.AddLast(entry);
            _pending++;
            scope = null;
            return entry;
        }
    }

    /// <summary>Frees a pre-hello slot (its hello was read, or not); nothing happens when it was already freed or taken over.</summary>
    public void ReleasePending(PendingHello entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        lock (_pendingLock)
        {
            RemoveLocked(entry);
        }
    }

    private void RemoveLocked(PendingHello entry)
    {
        if (entry.Node is not { List: { } list } node)
        {
            return;
        }

        list.Remove(node);
        entry.Node = null;
        _pending--;
        if (list.Count == 0)
        {
            _pendingByAddress.Remove(entry.Key);
        }
    }
}

/// <summary>A leg's pre-hello slot; cancelled when another address takes the slot over.</summary>
internal sealed class PendingHello(IPAddress key) : IDisposable
{
    private readonly CancellationTokenSource _evicted = new();

    public IPAddress Key { get; } = key;

    /// <summary>Where the entry sits in its address's list (oldest first); <see langword="null"/> once released.</summary>
    public LinkedListNode<PendingHello>? Node { get; set; }

    public CancellationToken Evicted => _evicted.Token;

    public void Evict()
    {
        try
        {
            _evicted.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Its connection already finished its hello.
        }
    }

    public void Dispose() => _evicted.Dispose();
}

using System.Security.Cryptography;

namespace CrocNet.Relay.Redis;

/// <summary>
/// Settings of the Redis channel store and limits (<c>AddCrocRelay().AddRedisChannelStore(...)</c>). Validated when the
/// host starts.
/// </summary>
public sealed class CrocRelayRedisOptions
{
    /// <summary>
    /// The prefix of every key and of the change-notification channel, so several relays (or other applications) can
    /// share one Redis: 1-64 characters, no braces (the store puts each channel's name in a <c>{hash tag}</c>), no glob
    /// characters (<c>* ? [ ] \</c>: the store scans by pattern), no spaces.
    /// </summary>
    /// <value>Default <c>croc:</c>.</value>
    public string KeyPrefix { get; set; } = "croc:";

    /// <summary>
    /// This node's name among the nodes sharing the store, recorded as the owner of each channel it creates (where the
    /// channel's data connections are to be piped). 1-64 characters of letters, digits, <c>-</c>, <c>_</c> and <c>.</c>;
    /// unique per running node.
    /// </summary>
    /// <value>Default: a random id per process (<c>node-</c> and 16 hex digits).</value>
    public string NodeId { get; set; } = "node-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    /// <summary>
    /// How long one Redis command may take before the relay gives up on it and answers <c>503 unavailable</c>; also
    /// the connect timeout when the store makes its own connection. Short, so an unreachable Redis never holds a
    /// request for long.
    /// </summary>
    /// <value>Default 2 seconds (100 ms to 30 s).</value>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How much longer than a channel can live a key stays in Redis: a backstop that removes the channels of a node
    /// that died. Nodes piping a channel's data keep refreshing it, so it never cuts a live transfer.
    /// </summary>
    /// <value>Default 5 minutes (10 s to 1 day).</value>
    public TimeSpan KeyTtlMargin { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// The secret every node of the mesh shares: nodes prove knowledge of it to each other (HMAC-SHA256 over fresh
    /// nonces, mutual) before one forwards a data connection to another. Set the same value on every node; 16 to 1024
    /// characters, random (e.g. 32 random bytes in base64). Never logged. Without it the node runs alone: it refuses to
    /// start while another node shares the store.
    /// </summary>
    /// <value>Default <see langword="null"/> (one node only).</value>
    public string? MeshSecret { get; set; }

    /// <summary>
    /// The address the node-to-node link listener binds (only with <see cref="MeshSecret"/>). Use an address of the
    /// private network the nodes share; the link is authenticated but not encrypted (the data is end-to-end ciphertext).
    /// </summary>
    /// <value>Default <c>127.0.0.1</c>.</value>
    public string MeshListenAddress { get; set; } = "127.0.0.1";

    /// <summary>The port of the node-to-node link listener; 0 picks a free one (announced as bound).</summary>
    /// <value>Default 9100.</value>
    public int MeshPort { get; set; } = 9100;

    /// <summary>
    /// The host (name or address) other nodes dial to reach this node's link listener; needed when
    /// <see cref="MeshListenAddress"/> is a wildcard (<c>0.0.0.0</c>, <c>::</c>).
    /// </summary>
    /// <value>Default <see langword="null"/>: the listen address.</value>
    public string? MeshAdvertisedHost { get; set; }
}

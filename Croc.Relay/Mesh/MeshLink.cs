using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace CrocNet.Relay.Mesh;

/// <summary>
/// The node-to-node link's handshake, mutual and constant-time. The dialing (forwarding) node sends
/// <c>croc-mesh/1 &lt;nonce&gt; &lt;id&gt;</c>; the owner answers <c>&lt;nonce&gt; &lt;id&gt; &lt;proof&gt;</c>; the forwarding node
/// checks that proof and answers its own <c>&lt;proof&gt;</c>. Each proof is HMAC-SHA256 under the mesh secret over the
/// prover's role, both fresh nonces and both node ids, so a proof is good for one link only (a replay meets a new
/// nonce) and one role only (the owner's proof cannot be reflected as the forwarder's). Proofs are compared with
/// <see cref="CryptographicOperations.FixedTimeEquals"/>. Lines are short and bounded; every read is bounded by the
/// caller's token. Failures throw <see cref="MeshLinkException"/> with a reason that never holds the secret.
/// </summary>
internal static class MeshLink
{
    public const string Greeting = "croc-mesh/1";

    /// <summary>The longest handshake line, newline included.</summary>
    public const int MaxHandshakeLine = 256;

    /// <summary>The longest forwarded-hello line, newline included.</summary>
    public const int MaxHelloLine = 1024;

    /// <summary>The longest answer line (<c>ok</c> or <c>error &lt;code&gt;</c>), newline included.</summary>
    public const int MaxAnswerLine = 64;

    public const int NonceLength = 32;

    private const string ForwarderRole = "forwarder";
    private const string OwnerRole = "owner";

    /// <summary>The forwarding node's side: proves itself to the owner and checks the owner's proof; returns the owner's id.</summary>
    public static async Task<string> ConnectAsync(Socket link, byte[] secret, string nodeId, string? expectedOwner, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(link);
        ArgumentNullException.ThrowIfNull(secret);
        var mine = RandomNumberGenerator.GetBytes(NonceLength);
        await WriteLineAsync(link, $"{Greeting} {Convert.ToBase64String(mine)} {nodeId}", cancellationToken).ConfigureAwait(false);
        var answer = (await ReadLineAsync(link, MaxHandshakeLine, cancellationToken).ConfigureAwait(false)).Split(' ');
        if (answer.Length != 3 || Nonce(answer[0]) is not { } theirs || !IsNodeId(answer[1]) || Decode(answer[2]) is not { } proof)
        {
            throw new MeshLinkException("the owner's handshake line is malformed");
        }

        var owner = answer[1];
        if (!CryptographicOperations.FixedTimeEquals(proof, Proof(secret, OwnerRole, mine, theirs, nodeId, owner)))
        {
            throw new MeshLinkException("the owner's proof is wrong (a different mesh secret?)");
        }

        if (expectedOwner is not null && !string.Equals(owner, expectedOwner, StringComparison.Ordinal))
        {
            throw new MeshLinkException("another node answers at the owner's endpoint");
        }

        await WriteLineAsync(link, Convert.ToBase64String(Proof(secret, ForwarderRole, mine, theirs, nodeId, owner)), cancellationToken).ConfigureAwait(false);
        return owner;
    }

    /// <summary>The owner's side: checks the forwarding node's greeting and proof, proving itself in between; returns the forwarder's id.</summary>
    public static async Task<string> AcceptAsync(Socket link, byte[] secret, string nodeId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(link);
        ArgumentNullException.ThrowIfNull(secret);
        var greeting = (await ReadLineAsync(link, MaxHandshakeLine, cancellationToken).ConfigureAwait(false)).Split(' ');
        if (greeting.Length != 3 || greeting[0] != Greeting || Nonce(greeting[1]) is not { } theirs || !IsNodeId(greeting[2]))
        {
            throw new MeshLinkException("the greeting is malformed");
        }

        var forwarder = greeting[2];
        var mine = RandomNumberGenerator.GetBytes(NonceLength);
        var proof = Proof(secret, OwnerRole, theirs, mine, forwarder, nodeId);
        await WriteLineAsync(link, $"{Convert.ToBase64String(mine)} {nodeId} {Convert.ToBase64String(proof)}", cancellationToken).ConfigureAwait(false);
        string answer;
        try
        {
            answer = await ReadLineAsync(link, MaxHandshakeLine, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            // A forwarding node that rejected this node's proof resets the link.
            throw new MeshLinkException("the forwarding node closed the link before its proof (a different mesh secret?)", e);
        }

        if (Decode(answer) is not { } theirProof
            || !CryptographicOperations.FixedTimeEquals(theirProof, Proof(secret, ForwarderRole, theirs, mine, forwarder, nodeId)))
        {
            throw new MeshLinkException("the forwarding node's proof is wrong (a different mesh secret, or a replay)");
        }

        return forwarder;
    }

    /// <summary>HMAC-SHA256 under the secret over the role, both nonces and both ids (each length-prefixed).</summary>
    internal static byte[] Proof(byte[] secret, string role, byte[] forwarderNonce, byte[] ownerNonce, string forwarder, string owner)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, secret);
        Span<byte> length = stackalloc byte[4];
        foreach (var part in new[] { Encoding.ASCII.GetBytes(role), forwarderNonce, ownerNonce, Encoding.ASCII.GetBytes(forwarder), Encoding.ASCII.GetBytes(owner) })
        {
            BinaryPrimitives.WriteInt32BigEndian(length, part.Length);
            hmac.AppendData(length);
            hmac.AppendData(part);
        }

        return hmac.GetHashAndReset();
    }

    /// <summary>Whether <paramref name="id"/> is a node id: 1-64 letters, digits, <c>-</c>, <c>_</c> or <c>.</c>.</summary>
    public static bool IsNodeId(string? id)
        => id is { Length: > 0 and <= 64 } && id.All(static c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    public static async Task WriteLineAsync(Socket link, string line, CancellationToken cancellationToken)
    {
        ReadOnlyMemory<byte> data = Encoding.ASCII.GetBytes(line + "\n");
        while (!data.IsEmpty)
        {
            var sent = await link.SendAsync(data, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            data = data[sent..];
        }
    }

    /// <summary>
    /// Reads one line of at most <paramref name="max"/> bytes (newline included) and not one byte more (it peeks, then
    /// takes only up to the newline: the bytes after it stay for the pipe). Throws when the link ends first, the line is
    /// longer, or it is not ASCII.
    /// </summary>
    public static async Task<string> ReadLineAsync(Socket link, int max, CancellationToken cancellationToken)
    {
        var buffer = new byte[max];
        var length = 0;
        while (true)
        {
            var peeked = await link.ReceiveAsync(buffer.AsMemory(length), SocketFlags.Peek, cancellationToken).ConfigureAwait(false);
            if (peeked == 0)
            {
                throw new MeshLinkException("the link ended before a complete line");
            }

            var newline = buffer.AsSpan(length, peeked).IndexOf((byte)'\n');
            var take = newline >= 0 ? newline + 1 : peeked;
            for (var target = buffer.AsMemory(length, take); !target.IsEmpty;)
            {
                var read = await link.ReceiveAsync(target, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    throw new MeshLinkException("the link ended before a complete line");
                }

                target = target[read..];
            }

            length += take;
            if (newline >= 0)
            {
                var line = buffer.AsSpan(0, length - 1);
                if (!Ascii.IsValid(line))
                {
                    throw new MeshLinkException("a line is not ASCII");
                }

                return Encoding.ASCII.GetString(line);
            }

            if (length == max)
            {
                throw new MeshLinkException(FormattableString.Invariant($"a line is longer than {max} bytes"));
            }
        }
    }

    private static byte[]? Nonce(string text) => Decode(text) is { Length: NonceLength } nonce ? nonce : null;

    private static byte[]? Decode(string text)
    {
        var bytes = new byte[64];
        return Convert.TryFromBase64String(text, bytes, out var written) ? bytes[..written] : null;
    }
}

/// <summary>A mesh link failed its handshake or its framing; the message names why, never the secret.</summary>
internal sealed class MeshLinkException : IOException
{
    public MeshLinkException()
    {
    }

    public MeshLinkException(string message)
        : base(message)
    {
    }

    public MeshLinkException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

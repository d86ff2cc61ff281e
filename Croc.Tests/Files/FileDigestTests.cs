using System.Security.Cryptography;
using CrocNet.Files;

namespace CrocNet.Tests.Files;

public class FileDigestTests
{
    [TestCase(CrocHashAlgorithm.XxHash128)]
    [TestCase(CrocHashAlgorithm.Sha256)]
    public void Finish_ChunksInAnyOrder_GiveTheSameHash(CrocHashAlgorithm algorithm)
    {
        var data = RandomNumberGenerator.GetBytes(10_000);
        var inOrder = new FileDigest(algorithm);
        var reversed = new FileDigest(algorithm);
        for (var i = 0; i < 3; i++)
        {
            inOrder.AddChunk(i, data.AsSpan(i * 4096, Math.Min(4096, data.Length - (i * 4096))));
        }

        for (var i = 2; i >= 0; i--)
        {
            reversed.AddChunk(i, data.AsSpan(i * 4096, Math.Min(4096, data.Length - (i * 4096))));
        }

        Assert.That(reversed.Finish(data.Length, 4096), Is.EqualTo(inOrder.Finish(data.Length, 4096)));
        Assert.That(inOrder.HasExactly(3), Is.True);
    }

    [Test]
    public void Finish_DifferentContentOrLength_GivesDifferentHash()
    {
        var a = new FileDigest(CrocHashAlgorithm.XxHash128);
        a.AddChunk(0, [1, 2, 3, 4]);
        var b = new FileDigest(CrocHashAlgorithm.XxHash128);
        b.AddChunk(0, [1, 2, 3, 5]);

        Assert.That(a.Finish(4, 4096), Is.Not.EqualTo(b.Finish(4, 4096)));
        Assert.That(new FileDigest(CrocHashAlgorithm.XxHash128).Finish(0, 4096), Is.Not.EqualTo(a.Finish(4, 4096)));
    }

    [Test]
    public void AddChunk_SameChunkTwice_ReturnsFalse()
    {
        var digest = new FileDigest(CrocHashAlgorithm.Sha256);

        Assert.That(digest.AddChunk(9, [1]), Is.True);
        Assert.That(digest.AddChunk(9, [1]), Is.False);
        Assert.That(digest.HasExactly(1), Is.False, "chunk 0 is missing");
    }

    [TestCase(CrocHashAlgorithm.XxHash128, "xxh128", 16)]
    [TestCase(CrocHashAlgorithm.Sha256, "sha256", 32)]
    public void Finish_MatchesTheDocumentedConstruction(CrocHashAlgorithm algorithm, string name, int digestSize)
    {
        // docs/protocol.md: SHA-256(label || size (8, big-endian) || digest(chunk 0) || digest(chunk 1) ...)
        var data = RandomNumberGenerator.GetBytes(9000);
        var digest = new FileDigest(algorithm);
        var expected = new List<byte>(System.Text.Encoding.ASCII.GetBytes($"croc/1 file {name}-chunks\0"));
        var size = new byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(size, data.Length);
        expected.AddRange(size);
        for (var i = 0; i * 4096 < data.Length; i++)
        {
            var chunk = data.AsSpan(i * 4096, Math.Min(4096, data.Length - (i * 4096)));
            digest.AddChunk(i, chunk);
            var chunkDigest = new byte[digestSize];
            if (algorithm == CrocHashAlgorithm.Sha256)
            {
                SHA256.HashData(chunk, chunkDigest);
            }
            else
            {
                System.IO.Hashing.XxHash128.Hash(chunk, chunkDigest);
            }

            expected.AddRange(chunkDigest);
        }

        Assert.That(digest.Finish(data.Length, 4096), Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(expected.ToArray()))));
    }
}

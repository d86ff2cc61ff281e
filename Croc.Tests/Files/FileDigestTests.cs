using System.Security.Cryptography;
using CrocNet.Files;

namespace CrocNet.Tests.Files;

public class FileDigestTests
{
    [Test]
    public void Finish_ChunksInAnyOrder_GiveTheSameHash()
    {
        var data = RandomNumberGenerator.GetBytes(10_000);
        var inOrder = new FileDigest(data.Length, 4096);
        var reversed = new FileDigest(data.Length, 4096);
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
        var a = new FileDigest(4, 4096);
        a.AddChunk(0, [1, 2, 3, 4]);
        var b = new FileDigest(4, 4096);
        b.AddChunk(0, [1, 2, 3, 5]);

        Assert.That(a.Finish(4, 4096), Is.Not.EqualTo(b.Finish(4, 4096)));
        Assert.That(new FileDigest(0, 4096).Finish(0, 4096), Is.Not.EqualTo(a.Finish(4, 4096)));
    }

    [Test]
    public void AddChunk_SameChunkTwice_ReturnsFalse()
    {
        var digest = new FileDigest(-1, 4096);

        Assert.That(digest.AddChunk(9, [1]), Is.True);
        Assert.That(digest.AddChunk(9, [1]), Is.False);
        Assert.That(digest.HasExactly(1), Is.False, "chunk 0 is missing");
    }
}

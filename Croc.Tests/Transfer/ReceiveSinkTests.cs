using System.Security.Cryptography;
using CrocNet.Files;
using CrocNet.Transfer;

namespace CrocNet.Tests.Transfer;

/// <summary>
/// The receive sinks' bookkeeping of what arrived. (Two lanes racing to put a file's digest in place is reasoned
/// about in <c>ReceiveSinkBase.Accept</c>: its window is a few instructions wide, too narrow for a test to hit at will.)
/// </summary>
public class ReceiveSinkTests
{
    private const int Chunk = 64 * 1024;

    [Test]
    public void Accept_ChunksOfAFileInAnyOrder_TakenOnce()
    {
        var sink = new ProbeSink(new Manifest { ChunkSize = Chunk, Hash = "xxh128", Entries = [new ManifestEntry { Path = "f.bin", Size = (2 * Chunk) + 1 }] });

        // The last (short) chunk first, as a second lane may deliver it: it puts the digest in place for the others.
        sink.Take(0, 2 * Chunk, [7]);
        sink.Take(0, 0, RandomNumberGenerator.GetBytes(Chunk));

        Assert.DoesNotThrow(() => sink.Take(0, Chunk, RandomNumberGenerator.GetBytes(Chunk)));
    }

    [Test]
    public void Accept_AChunkAfterTheFileIsComplete_TheSameChunkTwice()
    {
        var sink = new ProbeSink(new Manifest { ChunkSize = Chunk, Hash = "xxh128", Entries = [new ManifestEntry { Path = "f.bin", Size = Chunk + 1 }] });
        var first = RandomNumberGenerator.GetBytes(Chunk);
        sink.Take(0, 0, first);
        sink.Take(0, Chunk, [7]);

        var again = Assert.Throws<CrocProtocolException>(() => sink.Take(0, 0, first));
        var twice = Assert.Throws<CrocProtocolException>(() => sink.Take(0, Chunk, [7]));

        Assert.That((again!.Message, twice!.Message), Is.EqualTo(("The sender sent the same chunk twice.", "The sender sent the same chunk twice.")));
    }

    /// <summary>The sinks' shared bookkeeping alone, with nothing written anywhere.</summary>
    private sealed class ProbeSink(Manifest manifest) : ReceiveSinkBase(manifest)
    {
        public void Take(int entry, long offset, ReadOnlySpan<byte> data) => Accept(entry, offset, data);

        public override ValueTask WriteAsync(int entry, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => default;

        public override ValueTask<IReadOnlyList<TransferredFile>> CompleteAsync(CancellationToken cancellationToken) => new([]);

        public override void Abort()
        {
        }
    }
}

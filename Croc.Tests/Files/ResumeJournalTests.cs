using System.Security.Cryptography;
using CrocNet.Files;
using Microsoft.Extensions.Time.Testing;
using Microsoft.Win32.SafeHandles;

namespace CrocNet.Tests.Files;

public class ResumeJournalTests
{
    private const int Chunk = 64 * 1024;
    private string _folder = null!;

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("croc-journal-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    [Test]
    public void TryRead_RecordsWritten_ReadBackWithTheirDigests()
    {
        var identity = PartialNames.Identity("a/b.bin", 10 * Chunk, 1_764_120_000_000);
        var header = ResumeJournal.Header(identity, 10 * Chunk, Chunk, CrocHashAlgorithm.XxHash128);
        var size = ResumeJournal.RecordSize(CrocHashAlgorithm.XxHash128);
        var journal = new byte[ResumeJournal.HeaderSize + (3 * size)];
        header.CopyTo(journal, 0);
        var digests = new[] { RandomNumberGenerator.GetBytes(16), RandomNumberGenerator.GetBytes(16), RandomNumberGenerator.GetBytes(16) };
        long[] chunks = [7, 0, 9];
        for (var i = 0; i < 3; i++)
        {
            ResumeJournal.WriteRecord(header, chunks[i], digests[i], journal.AsSpan(ResumeJournal.HeaderSize + (i * size), size));
        }

        Assert.That(ResumeJournal.TryRead(journal, header, 10, CrocHashAlgorithm.XxHash128, out var read), Is.True);
        Assert.That(read.Keys, Is.EqualTo(new long[] { 0, 7, 9 }));
        Assert.That(read[7], Is.EqualTo(digests[0]));
        Assert.That(read[9], Is.EqualTo(digests[2]));
    }

    [Test]
    public void TryRead_TornOrDamagedRecords_SkippedOthersKept()
    {
        var identity = PartialNames.Identity("x.bin", 4 * Chunk, null);
        var header = ResumeJournal.Header(identity, 4 * Chunk, Chunk, CrocHashAlgorithm.Sha256);
        var size = ResumeJournal.RecordSize(CrocHashAlgorithm.Sha256);
        var journal = new byte[ResumeJournal.HeaderSize + (3 * size)];
        header.CopyTo(journal, 0);
        for (var i = 0; i < 3; i++)
        {
            ResumeJournal.WriteRecord(header, i, SHA256.HashData([(byte)i]), journal.AsSpan(ResumeJournal.HeaderSize + (i * size), size));
        }

        journal[ResumeJournal.HeaderSize + size + 9] ^= 1; // the second record's digest damaged
        var torn = journal.AsSpan(0, journal.Length - 5); // the third cut short, as by a crash while appending

        Assert.That(ResumeJournal.TryRead(torn, header, 4, CrocHashAlgorithm.Sha256, out var read), Is.True);
        Assert.That(read.Keys, Is.EqualTo(new long[] { 0 }), "only the whole, checked record counts");
    }

    [TestCase("other.bin", 4 * Chunk, Chunk, CrocHashAlgorithm.XxHash128)]
    [TestCase("x.bin", 5 * Chunk, Chunk, CrocHashAlgorithm.XxHash128)]
    [TestCase("x.bin", 4 * Chunk, 2 * Chunk, CrocHashAlgorithm.XxHash128)]
    [TestCase("x.bin", 4 * Chunk, Chunk, CrocHashAlgorithm.Sha256)]
    public void TryRead_JournalOfAnotherFile_Refused(string path, long size, int chunkSize, CrocHashAlgorithm algorithm)
    {
        var header = ResumeJournal.Header(PartialNames.Identity("x.bin", 4 * Chunk, 5), 4 * Chunk, Chunk, CrocHashAlgorithm.XxHash128);
        var other = ResumeJournal.Header(PartialNames.Identity(path, size, 5), size, chunkSize, algorithm);

        Assert.That(ResumeJournal.TryRead(header, other, 8, algorithm, out _), Is.False);
    }

    [Test]
    public void Identity_DiffersByPathSizeAndTime_NamesAreOurs()
    {
        var a = PartialNames.Stem(PartialNames.Identity("a.bin", 100, 1));
        Assert.That(PartialNames.Stem(PartialNames.Identity("a.bin", 100, 1)), Is.EqualTo(a), "deterministic");
        Assert.That(new[] { PartialNames.Stem(PartialNames.Identity("b.bin", 100, 1)), PartialNames.Stem(PartialNames.Identity("a.bin", 101, 1)), PartialNames.Stem(PartialNames.Identity("a.bin", 100, 2)), PartialNames.Stem(PartialNames.Identity("a.bin", 100, null)) }, Has.None.EqualTo(a));
        Assert.That(PartialNames.IsOurs(a + ".partial"), Is.True);
        Assert.That(PartialNames.IsOurs(a + ".journal"), Is.True);
        Assert.That(PartialNames.IsOurs(".croc-0123456789abcdef-12.partial"), Is.True);
        Assert.That(PartialNames.IsOurs(".croc-0123456789abcdef.partial.txt"), Is.False);
        Assert.That(PartialNames.IsOurs(".croc-notours.partial"), Is.False);
        Assert.That(PartialNames.IsOurs(".croc-0123456789ABCDEF.partial"), Is.False);
        Assert.That(PartialNames.IsOurs(".croc-0123456789abcdef-.partial"), Is.False);
    }

    [Test]
    public void Recover_ChunkChangedOnDisk_DroppedAndJournalRewritten()
    {
        var time = new FakeTimeProvider();
        var partial = NewPartial(8, time, flush: null);
        var data = WriteChunks(partial, [0, 1, 2, 3]);
        partial.FlushPending();
        Assert.That(partial.Journaled, Is.EqualTo(4));

        // Someone changes a byte of chunk 2 on disk between the transfers.
        using (var handle = File.OpenHandle(partial.PartialPath, FileMode.Open, FileAccess.Write))
        {
            RandomAccess.Write(handle, new byte[] { (byte)(data[(2 * Chunk) + 5] ^ 0xFF) }, (2 * Chunk) + 5);
        }

        var again = NewPartial(8, time, flush: null);
        var kept = again.Recover(discard: false, budget: 100);

        Assert.That(kept.Keys, Is.EqualTo(new long[] { 0, 1, 3 }), "the changed chunk is fetched again");
        Assert.That(NewPartial(8, time, flush: null).Recover(discard: false, budget: 100).Keys, Is.EqualTo(new long[] { 0, 1, 3 }), "the journal now names only what matched");
    }

    [Test]
    public void Recover_NoJournalOrDiscard_DeletesThePartial()
    {
        var partial = NewPartial(4, new FakeTimeProvider(), flush: null);
        File.WriteAllBytes(partial.PartialPath, new byte[Chunk]);

        Assert.That(partial.Recover(discard: false, budget: 10), Is.Empty);
        Assert.That(File.Exists(partial.PartialPath), Is.False, "a partial without a journal proves nothing: it goes");

        WriteChunks(partial, [0, 1]);
        partial.FlushPending();
        Assert.That(NewPartial(4, new FakeTimeProvider(), flush: null).Recover(discard: true, budget: 10), Is.Empty);
        Assert.That(Directory.GetFiles(_folder), Is.Empty, "discarded: partial and journal deleted");
    }

    [Test]
    public void Written_FlushFailsAsInACrash_JournalNamesNothingOfThatBatch()
    {
        var time = new FakeTimeProvider();
        var crash = false;
        var partial = NewPartial(8, time, flush: _ =>
        {
            if (crash)
            {
                throw new IOException("power lost during the flush");
            }
        });
        WriteChunks(partial, [0, 1]);
        time.Advance(PartialFile.BatchInterval);
        WriteChunks(partial, [2]); // the batch (0, 1, 2) is due: flushed, then journaled
        Assert.That(JournaledChunks(partial), Is.EqualTo(new long[] { 0, 1, 2 }));

        crash = true;
        WriteChunks(partial, [3]);
        time.Advance(PartialFile.BatchInterval);
        Assert.Throws<IOException>(() => WriteChunks(partial, [4]));

        Assert.That(JournaledChunks(partial), Is.EqualTo(new long[] { 0, 1, 2 }), "records are appended only after a successful flush");
    }

    [Test]
    public void Written_EveryJournaledChunk_WasWrittenBeforeAFlush()
    {
        var time = new FakeTimeProvider();
        var written = new HashSet<long>();
        var flushed = new HashSet<long>();
        var partial = NewPartial(40, time, flush: handle =>
        {
            RandomAccess.FlushToDisk(handle);
            flushed.UnionWith(written);
        });

        for (long c = 0; c < 40; c++)
        {
            using (var handle = File.OpenHandle(partial.PartialPath, FileMode.OpenOrCreate, FileAccess.Write))
            {
                var bytes = RandomNumberGenerator.GetBytes(Chunk);
                RandomAccess.Write(handle, bytes, c * Chunk);
                written.Add(c);
                partial.Written(handle, c, FileDigest.Hash(CrocHashAlgorithm.XxHash128, bytes), Chunk);
            }

            Assert.That(JournaledChunks(partial), Is.SubsetOf(flushed), $"after chunk {c}");
            if (c % 7 == 0)
            {
                time.Advance(PartialFile.BatchInterval);
            }
        }

        Assert.That(JournaledChunks(partial), Is.Not.Empty, "batches were journaled along the way");
    }

    [Test]
    [Explicit("A measurement, not a check: the cost of journaling (flush to disk every 64 MiB, then append) on this machine's disk")]
    public void Written_256MiB_CostOfFlushingAndJournaling()
    {
        const int Mib = 1024 * 1024;
        var bytes = RandomNumberGenerator.GetBytes(Mib);
        var digest = FileDigest.Hash(CrocHashAlgorithm.XxHash128, bytes);
        foreach (var real in new[] { false, true, false, true })
        {
            var partial = new PartialFile(_folder, real ? "real.bin" : "none.bin", 256L * Mib, 1, Mib, CrocHashAlgorithm.XxHash128, TimeProvider.System, real ? null : _ => { });
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using (var handle = File.OpenHandle(partial.PartialPath, FileMode.CreateNew, FileAccess.Write))
            {
                for (long c = 0; c < 256; c++)
                {
                    RandomAccess.Write(handle, bytes, c * Mib);
                    if (real)
                    {
                        partial.Written(handle, c, digest, Mib);
                    }
                }
            }

            if (real)
            {
                partial.FlushPending();
            }

            TestContext.Out.WriteLine($"{(real ? "journaled" : "plain")}: 256 MiB in {clock.Elapsed.TotalMilliseconds:F0} ms");
            partial.Delete();
        }
    }

    [TestCase("photos/.croc-0123456789abcdef.partial")]
    [TestCase(".CROC-0123456789ABCDEF.Journal")]
    [TestCase("a/.croc-anything-at-all.partial")]
    public void ReceivePlan_FileNamedLikeAPartial_RefusedBeforeAnythingIsWritten(string path)
    {
        var manifest = new Manifest { ChunkSize = Chunk, Hash = "xxh128", Entries = [new ManifestEntry { Path = "photos/big.bin", Size = 3 * Chunk }, new ManifestEntry { Path = path, Size = 10 }] };

        var error = Assert.Throws<CrocTransferException>(() => ReceivePlan.Create(_folder, manifest, CrocOverwritePolicy.Overwrite));

        Assert.That(error!.Code, Is.EqualTo(CrocErrorCode.UnsafePath));
        Assert.That(Directory.GetFileSystemEntries(_folder), Is.Empty);
    }

    private PartialFile NewPartial(long chunks, TimeProvider time, Action<SafeFileHandle>? flush) =>
        new(_folder, "big.bin", chunks * Chunk, 1_764_120_000_000, Chunk, CrocHashAlgorithm.XxHash128, time, flush);

    private static byte[] WriteChunks(PartialFile partial, long[] chunks)
    {
        var data = new byte[partial.Size];
        using var handle = File.OpenHandle(partial.PartialPath, FileMode.OpenOrCreate, FileAccess.ReadWrite);
        foreach (var c in chunks)
        {
            var bytes = RandomNumberGenerator.GetBytes(Chunk);
            RandomAccess.Write(handle, bytes, c * Chunk);
            bytes.CopyTo(data, c * Chunk);
            partial.Written(handle, c, FileDigest.Hash(CrocHashAlgorithm.XxHash128, bytes), Chunk);
        }

        return data;
    }

    private static long[] JournaledChunks(PartialFile partial)
    {
        if (!File.Exists(partial.JournalPath))
        {
            return [];
        }

        var header = File.ReadAllBytes(partial.JournalPath).AsSpan(0, ResumeJournal.HeaderSize).ToArray();
        Assert.That(ResumeJournal.TryRead(File.ReadAllBytes(partial.JournalPath), header, FileDigest.ChunkCount(partial.Size, partial.ChunkSize), CrocHashAlgorithm.XxHash128, out var read), Is.True);
        return [.. read.Keys];
    }
}

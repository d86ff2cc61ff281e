using CrocNet.Files;

namespace CrocNet.Tests.Files;

public class ReceivePlanTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("croc-plan-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private static Manifest Manifest(params (string Path, bool Dir, long Size)[] entries) => new()
    {
        ChunkSize = 1024 * 1024,
        Entries = entries.Select(e => new ManifestEntry { Path = e.Path, Dir = e.Dir, Size = e.Size }).ToList(),
    };

    private string[] Snapshot() => Directory.GetFileSystemEntries(_root, "*", SearchOption.AllDirectories).Order().ToArray();

    [Test]
    public void Create_NestedEntries_ResolvesInsideRootAndListsMissingFolders()
    {
        var plan = ReceivePlan.Create(_root, Manifest(("a", true, 0), ("a/b", true, 0), ("a/b/c.txt", false, 5)), CrocOverwritePolicy.Fail);

        Assert.That(Enumerable.Range(0, 3).Select(plan.FullPath), Is.EqualTo(new[] { Path.Join(_root, "a"), Path.Join(_root, "a", "b"), Path.Join(_root, "a", "b", "c.txt") }));
        Assert.That(plan.MissingDirectories, Is.EqualTo(new[] { Path.Join(_root, "a"), Path.Join(_root, "a", "b") }));
        Assert.That(Snapshot(), Is.Empty, "planning writes nothing");
    }

    [Test]
    public void Create_ExistingFileWithFailPolicy_ThrowsFileExistsAndWritesNothing()
    {
        File.WriteAllText(Path.Join(_root, "x.txt"), "mine");

        var ex = Assert.Throws<CrocTransferException>(() => ReceivePlan.Create(_root, Manifest(("new", true, 0), ("x.txt", false, 3)), CrocOverwritePolicy.Fail));

        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.FileExists));
        Assert.That(Snapshot(), Is.EqualTo(new[] { Path.Join(_root, "x.txt") }));
    }

    [Test]
    public void Create_ExistingFileWithOverwritePolicy_IsAllowed()
    {
        File.WriteAllText(Path.Join(_root, "x.txt"), "mine");

        Assert.DoesNotThrow(() => ReceivePlan.Create(_root, Manifest(("x.txt", false, 3)), CrocOverwritePolicy.Overwrite));
    }

    [Test]
    public void Create_SymlinkedFolderOnTheWay_ThrowsUnsafePath()
    {
        var outside = Directory.CreateTempSubdirectory("croc-outside-").FullName;
        try
        {
            Directory.CreateSymbolicLink(Path.Join(_root, "link"), outside);

            var ex = Assert.Throws<CrocTransferException>(() => ReceivePlan.Create(_root, Manifest(("link/evil.txt", false, 3)), CrocOverwritePolicy.Overwrite));

            Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.UnsafePath));
            Assert.That(Directory.GetFileSystemEntries(outside), Is.Empty);
        }
        finally
        {
            Directory.Delete(outside, recursive: true);
        }
    }

    [Test]
    public void Create_SymlinkAtTarget_ThrowsUnsafePathEvenWhenOverwriting()
    {
        var outside = Path.Join(Path.GetTempPath(), "croc-target-" + Guid.NewGuid());
        File.WriteAllText(outside, "precious");
        try
        {
            File.CreateSymbolicLink(Path.Join(_root, "x.txt"), outside);

            var ex = Assert.Throws<CrocTransferException>(() => ReceivePlan.Create(_root, Manifest(("x.txt", false, 3)), CrocOverwritePolicy.Overwrite));

            Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.UnsafePath));
            Assert.That(File.ReadAllText(outside), Is.EqualTo("precious"));
        }
        finally
        {
            File.Delete(outside);
        }
    }

    [TestCase("a.txt", "A.TXT")]
    [TestCase("d/x", "d/x")]
    public void Create_DuplicatePaths_ThrowsUnsafePath(string first, string second)
    {
        var ex = Assert.Throws<CrocTransferException>(() => ReceivePlan.Create(_root, Manifest((first, false, 1), (second, false, 1)), CrocOverwritePolicy.Fail));

        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.UnsafePath));
    }

    [Test]
    public void Create_FileAlsoUsedAsFolder_ThrowsUnsafePath()
    {
        Assert.That(Assert.Throws<CrocTransferException>(() => ReceivePlan.Create(_root, Manifest(("a", false, 1), ("a/b", false, 1)), CrocOverwritePolicy.Fail))!.Code, Is.EqualTo(CrocErrorCode.UnsafePath));
        Assert.That(Assert.Throws<CrocTransferException>(() => ReceivePlan.Create(_root, Manifest(("a/b", false, 1), ("a", false, 1)), CrocOverwritePolicy.Fail))!.Code, Is.EqualTo(CrocErrorCode.UnsafePath));
    }

    [Test]
    public void Create_ExistingFileWhereFolderIsNeeded_ThrowsFileExists()
    {
        File.WriteAllText(Path.Join(_root, "a"), "file");

        Assert.That(Assert.Throws<CrocTransferException>(() => ReceivePlan.Create(_root, Manifest(("a/b.txt", false, 1)), CrocOverwritePolicy.Overwrite))!.Code, Is.EqualTo(CrocErrorCode.FileExists));
    }

    [Test]
    public void Create_NegativeSizeOtherThanUnknown_ThrowsProtocol()
    {
        Assert.Throws<CrocProtocolException>(() => ReceivePlan.Create(_root, Manifest(("a", false, -2)), CrocOverwritePolicy.Fail));
    }

    [TestCase("caf\u00e9", "cafe\u0301")]
    [TestCase("caf\u00e9/a.txt", "cafe\u0301/b.txt")]
    [TestCase("Fotos/a.txt", "fotos/b.txt")]
    public void Create_NamesEqualUnderCaseOrUnicodeNormalisation_ThrowsUnsafePath(string first, string second)
    {
        // NFC and NFD spell the same name; macOS and Windows would put both in one place, Linux in two.
        var ex = Assert.Throws<CrocTransferException>(() => ReceivePlan.Create(_root, Manifest((first, false, 1), (second, false, 1)), CrocOverwritePolicy.Fail));

        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.UnsafePath));
    }

    [Test]
    public void Create_DeepPathsAtTheDepthBound_CostLinearInTheManifest()
    {
        // 100 distinct paths 128 levels deep, ~4,000 characters each: the prefix-by-prefix walk this replaced
        // allocated ~1 MB per path (quadratic in depth).
        var segment = new string('s', 30);
        var entries = Enumerable.Range(0, 100)
            .Select(i => (string.Join('/', Enumerable.Repeat(segment, ReceivePathValidator.MaxDepth - 1).Prepend($"top{i}")), false, 1L))
            .ToArray();
        var manifest = Manifest(entries);
        var characters = entries.Sum(e => e.Item1.Length);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var plan = ReceivePlan.Create(_root, manifest, CrocOverwritePolicy.Fail);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        TestContext.Out.WriteLine($"{characters:N0} characters of paths; planning allocated {allocated:N0} bytes");
        Assert.That(allocated, Is.LessThan(characters * 16L), "bytes per character of the manifest, not per prefix");
        Assert.That(plan.MissingDirectories.Count(), Is.EqualTo(100 * (ReceivePathValidator.MaxDepth - 1)));
    }

    [Test]
    public void Create_PathDeeperThanTheBound_ThrowsUnsafePath()
    {
        var deep = string.Join('/', Enumerable.Repeat("a", ReceivePathValidator.MaxDepth + 1));

        Assert.That(Assert.Throws<CrocTransferException>(() => ReceivePlan.Create(_root, Manifest((deep, false, 1)), CrocOverwritePolicy.Fail))!.Code, Is.EqualTo(CrocErrorCode.UnsafePath));
        Assert.DoesNotThrow(() => ReceivePlan.Create(_root, Manifest((string.Join('/', Enumerable.Repeat("a", ReceivePathValidator.MaxDepth)), false, 1)), CrocOverwritePolicy.Fail));
    }
}

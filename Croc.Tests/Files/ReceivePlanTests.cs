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

        Assert.That(plan.Entries.Select(e => e.FullPath), Is.All.StartWith(_root + Path.DirectorySeparatorChar));
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
}

using CrocNet.Files;

namespace CrocNet.Tests.Files;

public class ReceivePathValidatorTests
{
    private static readonly string[] Hostile =
    [
        "",
        "/etc/passwd",
        "../escape.txt",
        "a/../../escape.txt",
        "a/./b.txt",
        "./b.txt",
        "..",
        "a//b.txt",
        "a/",
        "C:/Windows/win.ini",
        "c:evil.txt",
        "a\\..\\b.txt",
        "\\\\server\\share\\x",
        "file.txt:stream",
        "CON",
        "con.txt",
        "dir/NUL.tar.gz",
        "LPT1",
        "COM9.log",
        "name.",
        "name ",
        "red\u001b[31mtext.txt",
        "bell\u0007.txt",
        "new\nline.txt",
        "tab\tname",
        "del\u007f.txt",
        "c1\u009b31m.txt",
        "evil\u202Etxt.exe",
        "iso\u2066late",
        "zero\u200Bwidth",
        "bom\uFEFF.txt",
        "q?.txt",
        "star*.txt",
        "pipe|.txt",
        "lt<.txt",
    ];

    [TestCaseSource(nameof(Hostile))]
    public void Validate_HostileName_ThrowsUnsafePath(string path)
    {
        var ex = Assert.Throws<CrocTransferException>(() => ReceivePathValidator.Validate(path));

        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.UnsafePath));
        Assert.That(ex.Message.Any(c => char.IsControl(c) && c != '\n'), Is.False, "the message must never echo control characters");
        Assert.That(ex.Message.Contains('\u001b', StringComparison.Ordinal), Is.False);
    }

    // Code units, not chars, in the cases: a lone surrogate in a test's name upsets the test host's reporting.
    [TestCase(0xD800)]
    [TestCase(0xDC00)]
    public void Validate_LoneSurrogate_ThrowsUnsafePath(int surrogate)
    {
        // Not valid Unicode: it cannot be normalised (for duplicate checks) or stored by every file system.
        var path = "lone" + (char)surrogate + "name.txt";

        Assert.That(Assert.Throws<CrocTransferException>(() => ReceivePathValidator.Validate(path))!.Code, Is.EqualTo(CrocErrorCode.UnsafePath));
    }

    [Test]
    public void Validate_TooLong_ThrowsUnsafePath()
    {
        Assert.That(Assert.Throws<CrocTransferException>(() => ReceivePathValidator.Validate(new string('a', 300)))!.Code, Is.EqualTo(CrocErrorCode.UnsafePath));
        Assert.That(Assert.Throws<CrocTransferException>(() => ReceivePathValidator.Validate(string.Join('/', Enumerable.Repeat("abcdefgh", 600))))!.Code, Is.EqualTo(CrocErrorCode.UnsafePath));
    }

    [TestCase("report.pdf", new[] { "report.pdf" })]
    [TestCase("photos/2026/a b.jpg", new[] { "photos", "2026", "a b.jpg" })]
    [TestCase(".hidden", new[] { ".hidden" })]
    [TestCase("..data", new[] { "..data" })]
    [TestCase("Über/naïve café.txt", new[] { "Über", "naïve café.txt" })]
    [TestCase("日本語/ファイル.txt", new[] { "日本語", "ファイル.txt" })]
    [TestCase("console.log", new[] { "console.log" })]
    public void Validate_OrdinaryName_ReturnsSegments(string path, string[] segments)
    {
        Assert.That(ReceivePathValidator.Validate(path), Is.EqualTo(segments));
    }
}

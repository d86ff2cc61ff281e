using System.Diagnostics;

namespace CrocNet.Tests.EndToEnd;

/// <summary>Many real files through the real relay (1,000,000 entries are covered over the in-memory data plane).</summary>
public class ScaleTransferTests : TransferTestBase
{
    [Test]
    [CancelAfter(180_000)]
    public async Task SendAsync_FiftyThousandSmallFiles_AllArriveThroughTheRelay(CancellationToken cancellationToken)
    {
        // More than ~42,000 files used to fail at the very end: their trailer overflowed one 4 MiB frame.
        const int Count = 50_000;
        var source = NewFolder();
        var output = NewFolder();
        var root = Path.Join(source, "many");
        for (var d = 0; d < 10; d++)
        {
            Directory.CreateDirectory(Path.Join(root, $"d{d}"));
        }

        var clock = Stopwatch.StartNew();
        for (var i = 0; i < Count; i++)
        {
            File.WriteAllText(Path.Join(root, $"d{i % 10}", $"f{i:D5}.txt"), i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var created = clock.Elapsed;
        var (sent, received) = await TransferAsync(
            NewCroc(),
            SendContent.FromPath(root),
            code => NewCroc(o => o.WithOutputDirectory(output)).ReceiveAsync(code, cancellationToken),
            cancellationToken);

        TestContext.Out.WriteLine($"{Count:N0} files: created in {created.TotalSeconds:F1} s, transferred in {(clock.Elapsed - created).TotalSeconds:F1} s");
        Assert.That(received.Files, Has.Count.EqualTo(Count));
        Assert.That(sent.Files.Select(f => f.Digest), Is.EqualTo(received.Files.Select(f => f.Digest)));
        Assert.That(File.ReadAllText(Path.Join(output, "many", "d9", "f49999.txt")), Is.EqualTo("49999"));
        Assert.That(Directory.EnumerateFiles(output, "*", SearchOption.AllDirectories).Count(), Is.EqualTo(Count));
    }
}

using System.Text;
using System.Text.Json;
using CrocNet.Files;

namespace CrocNet.Tests.Files;

public class ManifestParserTests
{
    private static readonly Manifest Sample = new()
    {
        ChunkSize = 1024 * 1024,
        Hash = "xxh128",
        Entries =
        [
            new ManifestEntry { Path = "photos", Dir = true, Mtime = 1764120000000 },
            new ManifestEntry { Path = "photos/caf\u00e9 \"quoted\".jpg", Size = 123_456, Mtime = 1764120000000 },
            new ManifestEntry { Path = "photos/b.bin", Size = -1 },
        ],
    };

    private static (Manifest Manifest, List<string> Seen) Parse(byte[] json, int pieceSize)
    {
        var seen = new List<string>();
        var parser = new ManifestParser(e => seen.Add(e.Path));
        for (var offset = 0; offset < json.Length; offset += pieceSize)
        {
            var length = Math.Min(pieceSize, json.Length - offset);
            parser.Feed(json.AsSpan(offset, length), offset + length == json.Length);
        }

        return (parser.Result, seen);
    }

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(7)]
    [TestCase(64)]
    [TestCase(1 << 20)]
    public void Feed_AnySplitIntoPieces_SameManifestAsOneDocument(int pieceSize)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(Sample, TransferJsonContext.Default.Manifest);

        var (manifest, seen) = Parse(json, pieceSize);

        Assert.That(seen, Is.EqualTo(Sample.Entries.Select(e => e.Path)));
        Assert.That(JsonSerializer.Serialize(manifest, TransferJsonContext.Default.Manifest), Is.EqualTo(Encoding.UTF8.GetString(json)));
    }

    [Test]
    public void Feed_UnknownFieldsAnywhere_AreSkipped()
    {
        var json = """{"future":{"a":[1,2,{"b":null}]},"version":1,"chunk_size":65536,"hash":"sha256","entries":[{"path":"x","size":1,"extra":[true]}],"more":"yes"}"""u8.ToArray();

        var (manifest, seen) = Parse(json, 3);

        Assert.That(seen, Is.EqualTo(new[] { "x" }));
        Assert.That(manifest.ChunkSize, Is.EqualTo(65536));
        Assert.That(manifest.Hash, Is.EqualTo("sha256"));
    }

    [TestCase("""{"version":1,"entries":[{"path":"x"}""")]
    [TestCase("""{"version":1,"entries":[{"path":"x"}]}{}""")]
    [TestCase("""{"version":1,"entries":[null]}""")]
    [TestCase("""{"version":"1","entries":[]}""")]
    [TestCase("""{"version":1}""")]
    [TestCase("""[]""")]
    [TestCase("""{"entries":[],"entries":[]}""")]
    public void Feed_MalformedOrIncomplete_ThrowsProtocol(string json)
    {
        Assert.Throws<CrocProtocolException>(() => Parse(Encoding.UTF8.GetBytes(json), 4));
    }

    [Test]
    public void Feed_EntryRefusedByTheCallback_StopsAtThatEntry()
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(Sample, TransferJsonContext.Default.Manifest);
        var seen = 0;
        var parser = new ManifestParser(_ =>
        {
            if (++seen == 2)
            {
                throw new CrocProtocolException("refused");
            }
        });

        Assert.Throws<CrocProtocolException>(() => parser.Feed(json, final: true));
        Assert.That(seen, Is.EqualTo(2));
    }
}

using System.Text;
using CrocNet.Files;
using CsCheck;

namespace CrocNet.Tests.Fuzz;

/// <summary>
/// The recipient's streaming manifest parser and the path vetting behind it, under any bytes split at any points:
/// a manifest or a <see cref="CrocProtocolException"/> / unsafe-path refusal, and the same answer however it is split.
/// </summary>
public class ManifestFuzzTests
{
    private const string Alphabet = Fuzzing.JsonAlphabet + "entriesvrionchunk_zhahtextmdrp/.\\";

    [Test]
    public void Feed_AnyBytesAnySplit_ManifestOrTypedRefusalAndSplitDoesNotMatter()
    {
        string[] paths = ["a.txt", "d/e/f.bin", "../x", "/abs", "a\u001b[2Jb", "caf\u00e9", "cafe\u0301", "A.TXT", "con", "a//b", new string('d', 300)];
        var entry = Gen.Select(Gen.Int[0, paths.Length - 1], Gen.Bool, Gen.Long[-3, 1L << 52])
            .Select((p, dir, size) => $$"""{"path":"{{paths[p].Replace("\\", "\\\\", StringComparison.Ordinal)}}","dir":{{(dir ? "true" : "false")}},"size":{{size}}}""");
        var templated = entry.Array[0, 6].Select(e => Encoding.UTF8.GetBytes($$"""{"version":1,"chunk_size":1048576,"hash":"xxh128","entries":[{{string.Join(",", e)}}]}"""));
        var gen = Gen.Select(Gen.Frequency((1, Fuzzing.HostileBytes(Alphabet, 400)), (2, templated)), Gen.Int[1, 64]);

        Fuzzing.Run(gen, ((byte[] Json, int Piece) c) =>
        {
            var whole = Outcome(c.Json, c.Json.Length == 0 ? 1 : c.Json.Length);
            var split = Outcome(c.Json, c.Piece);
            Fuzzing.Check(whole == split, $"split at {c.Piece}: '{split}' but whole: '{whole}'");
        });
    }

    /// <summary>"ok:n" for a manifest of n vetted entries, else the refusal's type and code.</summary>
    private static string Outcome(byte[] json, int piece)
    {
        try
        {
            var tree = new ReceivePathTree();
            var index = 0;
            var parser = new ManifestParser(e =>
            {
                ReceivePathValidator.Check(e.Path);
                tree.Add(index++, e.Path, e.Dir);
            });
            for (var at = 0; at < json.Length || at == 0; at += piece)
            {
                var end = Math.Min(json.Length, at + piece);
                parser.Feed(json.AsSpan(at, end - at), final: end == json.Length);
                if (json.Length == 0)
                {
                    break;
                }
            }

            return "ok:" + parser.Result.Entries.Count;
        }
        catch (CrocException ex) when (ex is CrocProtocolException || ex.Code == CrocErrorCode.UnsafePath)
        {
            return ex.GetType().Name + ":" + ex.Code;
        }
    }
}

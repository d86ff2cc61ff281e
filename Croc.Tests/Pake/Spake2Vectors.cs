using System.Security.Cryptography;
using System.Text.Json;
using CrocNet.Pake;

namespace CrocNet.Tests.Pake;

/// <summary>One SPAKE2 vector from TestVectors/*.json, every field as bytes.</summary>
internal sealed record Spake2Vector(string File, int Index, string SuiteName, string Curve, string Hash, JsonElement Json)
{
    public byte[] Bytes(string field) => Convert.FromHexString(Json.GetProperty(field).GetString()!);

    public string Text(string field) => Json.GetProperty(field).GetString()!;

    /// <summary>The shipped suite with this vector's curve, re-hashed when the vector uses a hash we do not ship with that curve.</summary>
    public Spake2Suite Suite()
    {
        var suite = Curve switch
        {
            "P-256" => Spake2Suite.P256,
            "P-384" => Spake2Suite.P384,
            "P-521" => Spake2Suite.P521,
            _ => throw new InvalidOperationException($"No suite for curve {Curve}."),
        };
        var hash = new HashAlgorithmName(Hash.Replace("-", "", StringComparison.Ordinal));
        return suite.SuiteName == SuiteName ? suite : suite.WithHash(hash, SuiteName);
    }

    public override string ToString() => $"{File}#{Index} {SuiteName} A='{Text("A")}' B='{Text("B")}' AAD={Text("AAD_hex").Length / 2}B";
}

internal static class Spake2Vectors
{
    public const string Rfc = "spake2-rfc9382.json";
    public const string Derived = "spake2-derived.json";

    public static JsonDocument Load(string file) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(TestContext.CurrentContext.TestDirectory, "TestVectors", file)));

    public static IEnumerable<Spake2Vector> All(string file)
    {
        using var doc = Load(file);
        var i = 0;
        foreach (var v in doc.RootElement.GetProperty("vectors").EnumerateArray())
        {
            yield return new Spake2Vector(file, i++, v.GetProperty("suite").GetString()!, v.GetProperty("curve").GetString()!, v.GetProperty("hash").GetString()!, v.Clone());
        }
    }

    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (var file in new[] { Rfc, Derived })
        {
            foreach (var v in All(file))
            {
                yield return new TestCaseData(v).SetArgDisplayNames(v.ToString());
            }
        }
    }
}

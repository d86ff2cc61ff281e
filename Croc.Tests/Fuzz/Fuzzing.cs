using CsCheck;

namespace CrocNet.Tests.Fuzz;

/// <summary>
/// Shared settings of the fuzz fixtures. CI runs <see cref="Iterations"/> cases per parser (10^5 by default);
/// <c>.ci/fuzz-long.sh</c> raises it through <c>CROC_FUZZ_ITERATIONS</c>. A failure prints the CsCheck seed;
/// <c>CROC_FUZZ_SEED</c> replays it, and each crash found is kept as a regression case in the fixture.
/// </summary>
internal static class Fuzzing
{
    public static long Iterations { get; } =
        long.TryParse(Environment.GetEnvironmentVariable("CROC_FUZZ_ITERATIONS"), out var n) && n > 0 ? n : 100_000;

    public static string? Seed { get; } = Environment.GetEnvironmentVariable("CROC_FUZZ_SEED") is { Length: > 0 } s ? s : null;

    /// <summary>Bytes an attacker might send: uniformly random, or built from the characters the parser cares about.</summary>
    public static Gen<byte[]> HostileBytes(string alphabet, int maxLength) => Gen.OneOf(
        Gen.Byte.Array[0, maxLength],
        Gen.Char[alphabet].Array[0, maxLength].Select(chars => System.Text.Encoding.UTF8.GetBytes(chars)),
        Gen.String[Gen.Char, 0, maxLength].Select(text => System.Text.Encoding.UTF8.GetBytes(text)));

    /// <summary>A JSON-shaped alphabet: structure, quotes, escapes, digits, letters of the field names, and controls.</summary>
    public const string JsonAlphabet = "{}[]\":,\\ -+.0123456789eEtrufalsn_abcdhkxyipowgv\u0000\u001b\t\n\u00e9\u200b";

    /// <summary>A cheap assertion for the hot loop (NUnit's constraint model costs more than most parsers).</summary>
    public static void Check(bool condition, string what)
    {
        if (!condition)
        {
            throw new AssertionException(what);
        }
    }

    /// <summary>Runs <paramref name="assert"/> on every generated case; only the exception types in <paramref name="allowed"/> may escape it.</summary>
    public static void Run<T>(Gen<T> gen, Action<T> assert, params Type[] allowed) => Run(gen, assert, threads: 2, allowed);

    /// <summary>The same on <paramref name="threads"/> threads (one, when the oracle compares state before and after).</summary>
    public static void Run<T>(Gen<T> gen, Action<T> assert, int threads, params Type[] allowed) =>
        gen.Sample(
            value =>
            {
                try
                {
                    assert(value);
                }
                catch (Exception ex) when (allowed.Any(t => t.IsInstanceOfType(ex)))
                {
                    // A typed refusal: what the parser is meant to do with bad input.
                }
            },
            seed: Seed,
            iter: Iterations,
            threads: threads);
}

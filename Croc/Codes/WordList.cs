using System.Collections.Frozen;

namespace CrocNet.Codes;

/// <summary>The word list that generated secrets are drawn from.</summary>
/// <remarks>
/// The BIP-39 English word list (2048 words, 11 bits each), stored unchanged as the embedded resource
/// <c>bip39-english.txt</c> (SHA-256 2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda).
/// Source: github.com/bitcoin/bips, bip-0039/english.txt (BIP 39 by M. Palatinus, P. Rusnak, A. Voisine, S. Bowe);
/// the same list ships with the reference implementation trezor/python-mnemonic under the MIT licence
/// (notice in Codes/bip39-english.NOTICE.txt, also packed into the NuGet package).
/// It was chosen because its words are common, lowercase ASCII, and unique in their first four letters.
/// </remarks>
internal static class WordList
{
    internal const string ResourceName = "CrocNet.Codes.bip39-english.txt";

    private static readonly Lazy<string[]> LazyWords = new(Load);
    private static readonly Lazy<FrozenSet<string>> LazySet = new(() => LazyWords.Value.ToFrozenSet(StringComparer.Ordinal));

    /// <summary>The 2048 words, in the list's (alphabetical) order.</summary>
    internal static IReadOnlyList<string> Words => LazyWords.Value;

    /// <summary>Whether a lowercase word is in the list.</summary>
    internal static bool Contains(string word) => LazySet.Value.Contains(word);

    private static string[] Load()
    {
        using var stream = typeof(WordList).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The embedded word list {ResourceName} is missing from the Croc assembly.");
        using var reader = new StreamReader(stream);
        var words = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (words.Length != 2048)
        {
            throw new InvalidOperationException($"The embedded word list has {words.Length} words; 2048 are expected.");
        }

        return words;
    }
}

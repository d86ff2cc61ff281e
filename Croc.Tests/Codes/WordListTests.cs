using System.Security.Cryptography;
using CrocNet.Codes;

namespace CrocNet.Tests.Codes;

[TestFixture]
public sealed class WordListTests
{
    [Test]
    public void Words_Bip39English_Has2048UniqueSortedLowercaseWords()
    {
        var words = WordList.Words;
        Assert.Multiple(() =>
        {
            Assert.That(words, Has.Count.EqualTo(2048));
            Assert.That(words.Distinct(StringComparer.Ordinal).Count(), Is.EqualTo(2048));
            Assert.That(words, Is.Ordered.Using((IComparer<string>)StringComparer.Ordinal));
            Assert.That(words.All(w => w.Length is >= 3 and <= 8 && w.All(char.IsAsciiLetterLower)), Is.True);
            Assert.That(words[0], Is.EqualTo("abandon"));
            Assert.That(words[^1], Is.EqualTo("zoo"));
            Assert.That(words.Select(w => w[..Math.Min(4, w.Length)]).Distinct().Count(), Is.EqualTo(2048), "BIP-39 words are unique in their first four letters");
        });
    }

    [Test]
    public void Resource_Bytes_MatchTheBip39ListHash()
    {
        // SHA-256 of bitcoin/bips bip-0039/english.txt.
        using var stream = typeof(WordList).Assembly.GetManifestResourceStream(WordList.ResourceName)!;
        Assert.That(Convert.ToHexStringLower(SHA256.HashData(stream)), Is.EqualTo("2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda"));
    }

    [Test]
    public void Contains_ListWordAndOther_Answers()
    {
        Assert.That(WordList.Contains("violin"), Is.True);
        Assert.That(WordList.Contains("Violin"), Is.False);
        Assert.That(WordList.Contains("croc"), Is.False);
    }
}

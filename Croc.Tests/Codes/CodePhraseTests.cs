using CrocNet.Codes;

namespace CrocNet.Tests.Codes;

[TestFixture]
public sealed class CodePhraseTests
{
    [Test]
    public void Generate_Default_HasEightCharChannelAndThreeListWords()
    {
        var phrase = CodePhrase.Generate();
        var words = phrase.Secret.Split('-');

        Assert.Multiple(() =>
        {
            Assert.That(phrase.Channel, Has.Length.EqualTo(8));
            Assert.That(phrase.Channel.All(c => CodePhrase.ChannelAlphabet.Contains(c, StringComparison.Ordinal)), Is.True, phrase.Channel);
            Assert.That(words, Has.Length.EqualTo(3));
            Assert.That(words.All(WordList.Contains), Is.True);
            Assert.That(phrase.Code, Is.EqualTo(phrase.Channel + "-" + phrase.Secret));
        });
    }

    [TestCase(3)]
    [TestCase(5)]
    [TestCase(CodePhrase.MaxWords)]
    public void Generate_WordCount_ProducesThatManyWordsAndParsesBack(int count)
    {
        var phrase = CodePhrase.Generate(count);
        Assert.That(phrase.Secret.Split('-'), Has.Length.EqualTo(count));
        Assert.That(phrase.Secret.Length, Is.LessThanOrEqualTo(CodePhrase.MaxSecretLength));

        var parsed = CodePhrase.Parse(phrase.Code);
        Assert.That((parsed.Channel, parsed.Secret), Is.EqualTo((phrase.Channel, phrase.Secret)));
    }

    [TestCase(2)]
    [TestCase(0)]
    [TestCase(-1)]
    [TestCase(CodePhrase.MaxWords + 1)]
    public void Generate_WordCountOutOfRange_ThrowsArgumentOutOfRange(int count)
    {
        Assert.That(() => CodePhrase.Generate(count), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void GenerateChannel_ManySamples_UsesWholeAlphabetAndNeverRepeats()
    {
        var channels = Enumerable.Range(0, 400).Select(_ => CodePhrase.GenerateChannel()).ToList();

        // 3200 draws from 32 symbols: a missing symbol has probability about 32 * (31/32)^3200, i.e. never.
        Assert.That(channels.SelectMany(c => c).Distinct().Order(), Is.EqualTo(CodePhrase.ChannelAlphabet.Order()));
        Assert.That(channels.Distinct().Count(), Is.EqualTo(channels.Count), "40-bit channels should not collide in 400 draws");
        Assert.That(channels, Has.All.Length.EqualTo(CodePhrase.GeneratedChannelLength));
    }

    [Test]
    public void Generate_ManySamples_UsesWordsFromAcrossTheList()
    {
        var words = Enumerable.Range(0, 300).SelectMany(_ => CodePhrase.Generate().Secret.Split('-')).ToList();
        var indexes = words.Select(w => WordList.Words.ToList().IndexOf(w)).ToList();

        Assert.That(indexes, Has.None.EqualTo(-1));
        Assert.That(indexes.Min(), Is.LessThan(100));
        Assert.That(indexes.Max(), Is.GreaterThan(1948));
        Assert.That(words.Distinct().Count(), Is.GreaterThan(600), "900 draws from 2048 words give about 740 distinct words");
    }

    [Test]
    public void ChannelAlphabet_IsLowercaseCrockfordBase32()
    {
        Assert.That(CodePhrase.ChannelAlphabet, Has.Length.EqualTo(32));
        Assert.That(CodePhrase.ChannelAlphabet.Distinct().Count(), Is.EqualTo(32));
        Assert.That(CodePhrase.ChannelAlphabet.IndexOfAny(['i', 'l', 'o', 'u']), Is.EqualTo(-1));
    }

    [TestCase("k7f2q9xm-autumn-rocket-violin", "k7f2q9xm", "autumn-rocket-violin")]
    [TestCase("  K7F2Q9XM-Autumn-Rocket-VIOLIN \n", "k7f2q9xm", "autumn-rocket-violin")]
    [TestCase("a-b", "a", "b")]
    [TestCase("abc-def-ghi", "abc", "def-ghi")]
    [TestCase("chan-pass.word!", "chan", "pass.word!")]
    [TestCase("chan-ÜBER-straße", "chan", "über-straße")]
    public void Parse_ValidCode_SplitsAtFirstDashAndNormalises(string code, string channel, string secret)
    {
        var phrase = CodePhrase.Parse(code);
        Assert.That(phrase.Channel, Is.EqualTo(channel));
        Assert.That(phrase.Secret, Is.EqualTo(secret));
        Assert.That(phrase.Code, Is.EqualTo(channel + "-" + secret));
    }

    [Test]
    public void Parse_DecomposedAccent_NormalisesToComposedForm()
    {
        // "u" + combining diaeresis must give the same secret as the precomposed "ü" typed elsewhere.
        Assert.That(CodePhrase.Parse("chan-u\u0308ber").Secret, Is.EqualTo(CodePhrase.Parse("chan-\u00fcber").Secret));
    }

    [Test]
    public void Parse_LimitLengths_AreAccepted()
    {
        Assert.That(CodePhrase.Parse(new string('a', 64) + "-x").Channel, Has.Length.EqualTo(64));
        Assert.That(CodePhrase.Parse("c-" + new string('x', 256)).Secret, Has.Length.EqualTo(256));
    }

    private static IEnumerable<TestCaseData> InvalidCodes()
    {
        yield return Case(null, "empty", "null");
        yield return Case("", "empty", "empty");
        yield return Case("   \t", "empty", "whitespace");
        yield return Case("k7f2q9xm", "no '-'", "no dash");
        yield return Case("-autumn-rocket", "channel (the text before the first '-') is empty", "empty channel");
        yield return Case("k7f2q9xm-", "secret (the text after the first '-') is empty", "empty secret");
        yield return Case(new string('a', 65) + "-x", "65 characters; at most 64", "long channel");
        yield return Case("k7_f2-x", "only the letters a-z and the digits 0-9", "underscore in channel");
        yield return Case("k7 f2-x", "only the letters a-z and the digits 0-9", "space in channel");
        yield return Case("kanal\u00e9-x", "only the letters a-z and the digits 0-9", "accent in channel");
        yield return Case("c-" + new string('x', 257), "257 characters; at most 256", "long secret");
        yield return Case("c-autumn rocket", "space, a control or an invisible", "space in secret");
        yield return Case("c-autumn\trocket", "space, a control or an invisible", "tab in secret");
        yield return Case("c-autumn\u0001rocket", "space, a control or an invisible", "control in secret");
        yield return Case("c-autumn\u200brocket", "space, a control or an invisible", "zero-width space in secret");
        yield return Case("c-autumn\u00a0rocket", "space, a control or an invisible", "no-break space in secret");
        yield return Case("c--autumn", "empty word", "leading dash in secret");
        yield return Case("c-autumn-", "empty word", "trailing dash in secret");
        yield return Case("c-autumn--rocket", "empty word", "double dash in secret");

        static TestCaseData Case(string? code, string message, string name) => new TestCaseData(code, message).SetArgDisplayNames(name);
    }

    [TestCaseSource(nameof(InvalidCodes))]
    public void TryParse_InvalidCode_ReturnsFalseWithClearError(string? code, string expectedMessagePart)
    {
        Assert.That(CodePhrase.TryParse(code, out var phrase, out var error), Is.False);
        Assert.That(phrase, Is.Null);
        Assert.That(error, Does.Contain(expectedMessagePart));
    }

    [TestCaseSource(nameof(InvalidCodes))]
    public void Parse_InvalidCode_ThrowsCrocExceptionWithInvalidCode(string? code, string expectedMessagePart)
    {
        Assert.That(() => CodePhrase.Parse(code!), Throws.TypeOf<CrocInvalidCodeException>()
            .With.Property(nameof(CrocException.Code)).EqualTo(CrocErrorCode.InvalidCode)
            .And.Message.Contains(expectedMessagePart));
    }

    [Test]
    public void TryParse_InvalidSecret_ErrorDoesNotQuoteTheSecret()
    {
        Assert.That(CodePhrase.TryParse("chan-hunter2 swordfish", out _, out var error), Is.False);
        Assert.That(error, Does.Not.Contain("hunter2").And.Not.Contain("swordfish"));
    }

    [Test]
    public void ToString_Always_HidesTheSecret()
    {
        var phrase = CodePhrase.Parse("k7f2q9xm-autumn-rocket-violin");
        Assert.That(phrase.ToString(), Is.EqualTo("k7f2q9xm-***"));
        Assert.That($"{phrase}", Does.Not.Contain("autumn"));
    }
}

using CrocNet.Codes;
using CsCheck;

namespace CrocNet.Tests.Fuzz;

/// <summary>Codes typed by people (or pasted by attackers): parse or refuse with a typed error, never anything else.</summary>
public class CodeFuzzTests
{
    [Test]
    public void TryParse_AnyText_NeverThrowsAndParseAgrees()
    {
        var gen = Gen.OneOf(
            Gen.String[Gen.Char, 0, 300],
            Gen.Char["0123456789abcdefghjkmnpqrstvwxyz-ABC _\u00e9\u200b\u0000"].Array[0, 80].Select(c => new string(c)));

        Fuzzing.Run(gen, text =>
        {
            var ok = CodePhrase.TryParse(text, out var phrase, out var error);
            if (ok)
            {
                // What parses is the text in canonical form (trimmed, NFC, lower case), parses to itself again, and
                // its channel is made of a-z and 0-9 only: that is all the relay will see.
                var canonical = text.Trim().Normalize(System.Text.NormalizationForm.FormC).ToLowerInvariant();
                Fuzzing.Check(string.Equals(phrase!.Code, canonical, StringComparison.Ordinal), "canonical form");
                Fuzzing.Check(CodePhrase.Parse(phrase.Code).Code == phrase.Code, "idempotent");
                Fuzzing.Check(phrase.Code.StartsWith(phrase.Channel + "-", StringComparison.Ordinal), "channel prefix");
                Fuzzing.Check(phrase.Channel.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c)), "channel alphabet");
            }
            else
            {
                Fuzzing.Check(!string.IsNullOrEmpty(error), "an error message");
                Fuzzing.Check(text.Length <= 12 || !error!.Contains(text, StringComparison.Ordinal), "the message never quotes the code");
                try
                {
                    CodePhrase.Parse(text);
                    Fuzzing.Check(false, "Parse accepted what TryParse refused");
                }
                catch (CrocInvalidCodeException ex)
                {
                    Fuzzing.Check(ex.Message == error, "Parse and TryParse give the same reason");
                }
            }
        });
    }
}

namespace CrocNet.Tests.Api;

/// <summary>What the client package promises publicly, pinned where a slip would be silent.</summary>
public class PublicSurfaceTests
{
    [Test]
    public void ErrorCodes_NumbersAreExplicitAndNeverMove()
    {
        // Programs persist and switch on these numbers; a member inserted in the middle must not renumber the rest.
        var expected = new Dictionary<string, int>
        {
            ["Unknown"] = 0, ["AuthenticationFailed"] = 1, ["ProtocolViolation"] = 2, ["RelayRefused"] = 3, ["RelayUnreachable"] = 4,
            ["InvalidCode"] = 5, ["DataTampered"] = 6, ["HashMismatch"] = 7, ["UnsafePath"] = 8, ["FileExists"] = 9,
            ["TransferRejected"] = 10, ["ConnectionLost"] = 11, ["Timeout"] = 12, ["SourceChanged"] = 14, ["WriteFailed"] = 15,
            ["SourceNotFound"] = 16,
            ["RelayAccessDenied"] = 17,
            ["PeerCancelled"] = 18,
            ["RelayUnavailable"] = 19,
        };

        var actual = Enum.GetValues<CrocErrorCode>().ToDictionary(c => c.ToString(), c => (int)c);

        Assert.That(actual, Is.EquivalentTo(expected));
    }

    [Test]
    public void Pake_EngineIsNotPublicApi()
    {
        var exported = typeof(Croc).Assembly.GetExportedTypes().Where(t => t.Namespace == "CrocNet.Pake").Select(t => t.Name);

        Assert.That(exported, Is.Empty);
    }

    [Test]
    public void CrocException_IsNeverThrownAsTheBaseType()
    {
        Assert.That(typeof(CrocException).IsAbstract, Is.True);
        Assert.That(typeof(CrocException).GetConstructors(), Is.Empty, "no public constructor");
    }

    [Test]
    public void ResultAndOffer_AreNotRecordsWithReferenceEqualLists()
    {
        // A record over IReadOnlyList compares list references and publishes <Clone>$ and Deconstruct.
        foreach (var type in new[] { typeof(TransferResult), typeof(TransferOffer) })
        {
            Assert.That(type.GetMethod("<Clone>$"), Is.Null, type.Name);
        }
    }
}

namespace CrocNet.Tests.Faults;

/// <summary>
/// The suite's oracle (<see cref="FaultCaseRunner.Judge"/>) on made-up endings: it must flag every outcome the rules
/// forbid, or the seeded suite could pass while the library misbehaves.
/// </summary>
public sealed class FaultJudgeTests
{
    private string _destination = null!;

    [SetUp]
    public void CreateFolder() => _destination = Directory.CreateTempSubdirectory("croc-judge-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_destination, recursive: true);

    private static readonly FaultFile A = new("payload/a.bin", [1, 2, 3, 4]);
    private static readonly FaultFile B = new("payload/sub/b.bin", [9, 9]);

    private static FaultCase Case(FaultKind kind) =>
        new(7, new Fault(kind, new FaultTarget(ProxySide.Sender, LegKind.TcpLane, -1, Flow.Up), 100), CrocTransport.Tcp, [A, B]);

    private static TransferResult Result(TransferDirection direction, params (string Path, string Digest)[] files) => new()
    {
        Direction = direction,
        Channel = "abcdefgh",
        Curve = "p256",
        Files = [.. files.Select(f => new TransferredFile(f.Path, 1, f.Digest, null))],
        Directories = [],
        TotalBytes = files.Length,
        Duration = TimeSpan.FromSeconds(1),
    };

    private void Put(string relativePath, byte[] content)
    {
        var path = Path.Combine(_destination, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
    }

    private FaultRun Judge(FaultKind kind, TransferResult? sent, TransferResult? received, Exception? senderError = null, Exception? recipientError = null, TimeSpan? time = null)
    {
        var run = new FaultRun(Case(kind))
        {
            SenderError = senderError,
            RecipientError = recipientError,
            SenderTime = time ?? TimeSpan.FromSeconds(1),
            RecipientTime = TimeSpan.FromSeconds(1),
        };
        FaultCaseRunner.Judge(run, sent, received, _destination);
        return run;
    }

    private static CrocTransferException Lost() => new(CrocErrorCode.ConnectionLost, "lost");

    [Test]
    public void Judge_CompletedWithEveryFileIdentical_KeepsTheRules()
    {
        Put(A.RelativePath, A.Content);
        Put(B.RelativePath, B.Content);
        var run = Judge(FaultKind.Reset, Result(TransferDirection.Send, (A.RelativePath, "d1"), (B.RelativePath, "d2")), Result(TransferDirection.Receive, (A.RelativePath, "d1"), (B.RelativePath, "d2")));
        Assert.That((run.Outcome, run.Violation), Is.EqualTo(((FaultOutcome?)FaultOutcome.Completed, (string?)null)));
    }

    [Test]
    public void Judge_FailedTypedLeavingOnlyPartials_KeepsTheRules()
    {
        Put("payload/.croc-0123456789abcdef-1.partial", [1, 2]);
        var run = Judge(FaultKind.Stall, null, null, Lost(), Lost());
        Assert.That((run.Outcome, run.Violation, run.PartialFiles), Is.EqualTo(((FaultOutcome?)FaultOutcome.FailedTyped, (string?)null, 1)));
    }

    [Test]
    public void Judge_AWrongFileUnderItsFinalName_IsAViolation()
    {
        Put(A.RelativePath, [1, 2, 3, 5]);
        var run = Judge(FaultKind.Stall, null, null, Lost(), Lost());
        Assert.That(run.Violation, Does.Contain("differs from its source"));
    }

    [Test]
    public void Judge_AFileNeverSent_IsAViolation()
    {
        Put("payload/extra.bin", [1]);
        Assert.That(Judge(FaultKind.Stall, null, null, Lost(), Lost()).Violation, Does.Contain("never sent"));
    }

    [Test]
    public void Judge_AnUntypedOrUnknownFailure_IsAViolation()
    {
        Assert.That(Judge(FaultKind.Stall, null, null, new TaskCanceledException(), Lost()).Violation, Does.Contain("sender failed untyped"));
        Assert.That(Judge(FaultKind.Stall, null, null, Lost(), new CrocTransferException("?")).Violation, Does.Contain("recipient failed untyped"));
    }

    [Test]
    public void Judge_ASideSlowerThanTheBound_IsAViolation()
    {
        var run = Judge(FaultKind.Stall, null, null, Lost(), Lost(), time: FaultExpectations.Bound + TimeSpan.FromSeconds(1));
        Assert.That(run.Violation, Does.Contain("past the bound"));
    }

    [Test]
    public void Judge_SenderSucceedsWhileTheRecipientFails_IsAViolation()
    {
        var run = Judge(FaultKind.CutHalfway, Result(TransferDirection.Send, (A.RelativePath, "d1"), (B.RelativePath, "d2")), null, null, Lost());
        Assert.That(run.Violation, Does.Contain("delivery that did not happen"));
    }

    [Test]
    public void Judge_ASuccessfulReceiveMissingAFileOrDigest_IsAViolation()
    {
        Put(A.RelativePath, A.Content);
        var run = Judge(FaultKind.Reset, Result(TransferDirection.Send, (A.RelativePath, "d1"), (B.RelativePath, "d2")), Result(TransferDirection.Receive, (A.RelativePath, "other")));
        Assert.That(run.Violation, Does.Contain($"'{B.RelativePath}' is missing").And.Contain("digest differs"));
    }

    [Test]
    public void Judge_AFaultKindExpectedToComplete_FailingTyped_IsAViolation()
    {
        Assert.That(FaultExpectations.ByKind[FaultKind.Delay], Is.EqualTo(Expected.Completes));
        Assert.That(Judge(FaultKind.Delay, null, null, Lost(), Lost()).Violation, Does.Contain("must let the transfer complete"));
        Assert.That(Judge(FaultKind.Stall, null, null, Lost(), Lost()).Violation, Is.Null);
        // A reset leg reconnects: a reset that ends the transfer, even typed, breaks the rules.
        Assert.That(Judge(FaultKind.Reset, null, null, Lost(), Lost()).Violation, Does.Contain("must let the transfer complete"));
    }

    [Test]
    public void Judge_DeliveredButTheSendersGoodbyeLost_IsItsOwnOutcome()
    {
        Put(A.RelativePath, A.Content);
        Put(B.RelativePath, B.Content);
        var run = Judge(FaultKind.Stall, null, Result(TransferDirection.Receive, (A.RelativePath, "d1"), (B.RelativePath, "d2")), Lost());
        Assert.That((run.Outcome, run.Violation), Is.EqualTo(((FaultOutcome?)FaultOutcome.DeliveredSenderFailed, (string?)null)));
    }

    [Test]
    public void From_SameSeed_SameCase()
    {
        var (a, b) = (FaultCase.From(42), FaultCase.From(42));
        Assert.That(a.ToString(), Is.EqualTo(b.ToString()));
        Assert.That(a.Files.Select(f => f.Content), Is.EqualTo(b.Files.Select(f => f.Content)));
        Assert.That(FaultCase.From(43).ToString(), Is.Not.EqualTo(a.ToString()));
    }

    [Test]
    public void From_Seeds1To200_CoverEveryKindTargetAndRealZeroBlocks()
    {
        var cases = Enumerable.Range(1, 200).Select(FaultCase.From).ToList();
        Assert.That(cases.Select(c => c.Fault.Kind).Distinct(), Is.EquivalentTo(Enum.GetValues<FaultKind>()));
        Assert.That(cases.Select(c => c.Fault.Target.Kind).Distinct(), Is.EquivalentTo(Enum.GetValues<LegKind>()));
        Assert.That(cases.Select(c => (c.Fault.Target.Side, c.Fault.Target.Direction)).Distinct().Count(), Is.EqualTo(4));
        var sizes = cases.SelectMany(c => c.Files).Select(f => f.Content.Length).ToList();
        Assert.That(sizes.Min(), Is.Zero);
        Assert.That(sizes.Max(), Is.InRange(4 * 1024 * 1024, 8 * 1024 * 1024));
        // A 32 KiB block of real zeros inside a file that is not all zeros.
        Assert.That(cases.SelectMany(c => c.Files).Any(f => HasZeroBlock(f.Content) && f.Content.Any(b => b != 0)), Is.True);
    }

    [Test]
    public void ParseSeeds_ListsAndRanges_AreExpanded()
        => Assert.That(FaultSuiteTests.ParseSeeds("3, 5-7,10"), Is.EqualTo(new[] { 3, 5, 6, 7, 10 }));

    private static bool HasZeroBlock(byte[] content)
    {
        const int Block = 32 * 1024;
        for (var start = 0; start + Block <= content.Length; start += Block)
        {
            if (!content.AsSpan(start, Block).ContainsAnyExcept((byte)0))
            {
                return true;
            }
        }

        return false;
    }
}

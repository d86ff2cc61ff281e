using System.Net;
using CrocNet.Cli.Discovery;
using Microsoft.Extensions.Time.Testing;

namespace CrocNet.Tests.Cli.Discovery;

[TestFixture]
public sealed class DiscoveryRateLimiterTests
{
    private static readonly IPAddress A = IPAddress.Parse("192.168.1.10");
    private static readonly IPAddress B = IPAddress.Parse("192.168.1.11");

    [Test]
    public void TryAcquire_PerSourceBudget_RefillsAfterOneSecond()
    {
        var time = new FakeTimeProvider();
        var limiter = new DiscoveryRateLimiter(time, perSourcePerSecond: 3);

        var burst = Enumerable.Range(0, 10).Select(_ => limiter.TryAcquire(A)).ToList();
        Assert.That(burst.Count(ok => ok), Is.EqualTo(3));
        Assert.That(burst.Take(3), Is.All.True, "the first ones pass");
        Assert.That(limiter.TryAcquire(B), Is.True, "another source has its own budget");

        time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.That(limiter.TryAcquire(A), Is.False);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.That(limiter.TryAcquire(A), Is.True);
    }

    [Test]
    public void TryAcquire_TotalBudget_CapsManySources()
    {
        var time = new FakeTimeProvider();
        var limiter = new DiscoveryRateLimiter(time, perSourcePerSecond: 3, totalPerSecond: 5);

        var granted = Enumerable.Range(1, 20).Count(i => limiter.TryAcquire(IPAddress.Parse($"10.0.0.{i}")));

        Assert.That(granted, Is.EqualTo(5));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(limiter.TryAcquire(IPAddress.Parse("10.0.0.50")), Is.True);
    }

    [Test]
    public void TryAcquire_SourceTableFull_NewSourceWaitsUntilOldOnesExpire()
    {
        var time = new FakeTimeProvider();
        var limiter = new DiscoveryRateLimiter(time, perSourcePerSecond: 3, totalPerSecond: 100, maxSources: 2);

        Assert.That(limiter.TryAcquire(A), Is.True);
        Assert.That(limiter.TryAcquire(B), Is.True);
        var c = IPAddress.Parse("192.168.1.12");
        Assert.That(limiter.TryAcquire(c), Is.False, "the table is full of recent sources");
        Assert.That(limiter.TryAcquire(A), Is.True, "known sources keep their budget");

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(limiter.TryAcquire(c), Is.True, "stale entries are dropped to make room");
    }
}

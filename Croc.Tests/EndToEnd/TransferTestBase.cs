using System.Security.Cryptography;
using CrocNet.Relay;

namespace CrocNet.Tests.EndToEnd;

/// <summary>A real relay on Kestrel (127.0.0.1, port 0, four TCP ports 0) shared by a fixture, plus temp folders.</summary>
public abstract class TransferTestBase
{
    private readonly TempFolders _folders = new("croc-e2e-");

    protected CrocRelayServer Relay { get; private set; } = null!;

    [OneTimeSetUp]
    public async Task StartRelayAsync()
    {
        Relay = await CrocRelayServer.StartAsync(o =>
        {
            o.Url = "http://127.0.0.1:0";
            o.Relay.Ports = [0, 0, 0, 0];
            o.Relay.ListenAddress = "127.0.0.1";
            ConfigureRelay(o.Relay);
        });
    }

    /// <summary>
    /// Adjusts the fixture's relay. Every test client comes from 127.0.0.1, which a public relay would rightly treat as
    /// one busy neighbour: the per-address limits are raised here, and the relay tests check them on their own.
    /// </summary>
    protected virtual void ConfigureRelay(CrocRelayOptions relay)
    {
        relay.MaxChannelsPerAddress = 1_000;
        relay.MaxJoinsPerMinute = 100_000;
        relay.MaxFailedLookupsPerMinute = 100_000;
        relay.MaxConnectionsPerAddress = 4_096;
        relay.MaxPendingHellosPerAddress = 1_000;
        relay.MaxWaitingConnectionsPerAddress = 1_000;
    }

    [OneTimeTearDown]
    public async Task StopRelayAsync() => await Relay.DisposeAsync();

    [TearDown]
    public void DeleteFolders() => _folders.DeleteAll();

    protected string NewFolder() => _folders.New();

    protected Croc NewCroc(Action<CrocOptionsBuilder>? configure = null) => Croc.New(o =>
    {
        o.WithRelay(Relay.BaseAddress).WithIdleTimeout(TimeSpan.FromSeconds(20)).WithRetries(2, TimeSpan.FromMilliseconds(20));
        configure?.Invoke(o);
    });

    protected static byte[] WriteRandomFile(string path, int length)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var data = RandomNumberGenerator.GetBytes(length);
        File.WriteAllBytes(path, data);
        return data;
    }

    /// <summary>Starts a send, hands its code to a receive, and waits for both.</summary>
    protected static async Task<(TransferResult Sent, TransferResult Received)> TransferAsync(
        Croc sender, SendContent content, Func<string, Task<TransferResult>> receive, CancellationToken cancellationToken, SendOptions? options = null)
    {
        await using var operation = await sender.StartSendAsync(content, options, cancellationToken);
        var received = receive(operation.Code);
        var sent = operation.Completion;
        await Task.WhenAll(received, sent).WaitAsync(cancellationToken);
        return (await sent, await received);
    }

    /// <summary>Every file under <paramref name="root"/> (relative path → bytes) and every folder.</summary>
    protected static (Dictionary<string, byte[]> Files, SortedSet<string> Folders) Snapshot(string root)
    {
        var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(root, f).Replace('\\', '/'), File.ReadAllBytes);
        var folders = new SortedSet<string>(Directory.EnumerateDirectories(root, "*", SearchOption.AllDirectories)
            .Select(d => Path.GetRelativePath(root, d).Replace('\\', '/')), StringComparer.Ordinal);
        return (files, folders);
    }
}

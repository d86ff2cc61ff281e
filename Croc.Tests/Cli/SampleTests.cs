using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace CrocNet.Tests.Cli;

/// <summary>The samples run as their READMEs say, as their own processes.</summary>
public sealed class SampleTests
{
    private static string WorkerDll => Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "samples", "WorkerService", "bin",
#if DEBUG
        "Debug",
#else
        "Release",
#endif
        "net10.0", "WorkerService.dll"));

    [Test]
    [CancelAfter(60_000)]
    public async Task WorkerService_ReceiveFails_ExitsNonZeroAndNamesTheRelay(CancellationToken cancellationToken)
    {
        if (!File.Exists(WorkerDll))
        {
            // Built by `dotnet test` (the BuildSamplesAndBenchmarks target), not by `dotnet build Croc.Tests`.
            Assert.Ignore($"{WorkerDll} is not built; run dotnet test Croc.sln.");
        }

        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var relay = $"http://127.0.0.1:{((IPEndPoint)probe.LocalEndpoint).Port}/";
        probe.Stop();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(WorkerDll);
        start.Environment["Receiver__Code"] = Croc.GenerateCode();
        start.Environment["Croc__Relay"] = relay;
        start.Environment["Croc__OutputDirectory"] = Path.Combine(Path.GetTempPath(), "croc-worker-" + Guid.NewGuid().ToString("N"));

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }

        var output = await stdout + await stderr;
        Assert.That(process.ExitCode, Is.Not.Zero, output);
        Assert.That(output, Does.Contain($"Receiving through the relay {relay}"));
        Assert.That(output, Does.Contain("A transfer failed"));
    }
}

using System.Diagnostics;

namespace CrocNet.Tests;

/// <summary>Child processes the tests start (redis-server, nginx): how they are ended.</summary>
internal static class ChildProcesses
{
    /// <summary>Kills <paramref name="process"/> and its children, waits up to 10 s for it to be reaped, and disposes it.</summary>
    public static async Task KillAsync(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            await process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception)
        {
            // Already gone, or it will be reaped with the test host.
        }
        finally
        {
            process.Dispose();
        }
    }
}

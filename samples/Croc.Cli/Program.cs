using System.Runtime.InteropServices;
using CrocNet.Cli;

// Ctrl+C (and SIGTERM) cancel the running command, which closes the channel and removes partial files;
// a second Ctrl+C ends the process at once.
using var cancellation = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    if (!cancellation.IsCancellationRequested)
    {
        e.Cancel = true;
        cancellation.Cancel();
    }
};
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    cancellation.Cancel();
});

return await CrocCli.RunAsync(args, CliConsole.FromSystemConsole(), cancellation.Token);

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;

namespace CrocNet.Tests.Relay.Redis;

/// <summary>
/// A real redis-server (the Debian package; <c>.ci/run</c> installs it) on a loopback port, in memory only (no RDB, no
/// AOF), run in the foreground as a child process. It can be stopped and started again on the same port (an outage);
/// disposing stops it.
/// </summary>
internal sealed class RedisServer : IAsyncDisposable
{
    private Process? _process;

    private RedisServer(int port) => Port = port;

    public int Port { get; }

    /// <summary>The configuration string for clients: fail fast, reconnect quickly.</summary>
    public string Configuration => $"127.0.0.1:{Port},abortConnect=false,connectTimeout=1000,syncTimeout=1000,asyncTimeout=1000";

    /// <summary>The redis-server executable, or <see langword="null"/> when it is not installed.</summary>
    public static string? Executable =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator).Append("/usr/bin").Append("/usr/local/bin")
            .Select(dir => Path.Combine(dir, "redis-server"))
            .FirstOrDefault(File.Exists);

    /// <summary>Starts redis-server on a free loopback port (tried again on another port if one was taken meanwhile).</summary>
    public static async Task<RedisServer> StartAsync(CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var server = new RedisServer(FreePort());
            try
            {
                await server.StartAgainAsync(cancellationToken);
                return server;
            }
            catch (InvalidOperationException) when (attempt < 3)
            {
                await server.DisposeAsync();
            }
        }
    }

    /// <summary>Starts the server (again) on its port; returns once it answers PING.</summary>
    public async Task StartAgainAsync(CancellationToken cancellationToken)
    {
        var executable = Executable ?? throw new InvalidOperationException("redis-server is not installed (apt-get install redis-server; .ci/run does this).");
        var start = new ProcessStartInfo(executable)
        {
            ArgumentList = { "--bind", "127.0.0.1", "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning" },
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        _process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start.");
        _process.OutputDataReceived += static (_, _) => { };
        _process.ErrorDataReceived += static (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(15))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"redis-server exited with {_process.ExitCode} (port {Port} taken?).");
            }

            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await probe.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Port), cancellationToken);
                var ping = "*1\r\n$4\r\nPING\r\n"u8.ToArray();
                await probe.SendAsync(ping, SocketFlags.None, cancellationToken);
                var reply = new byte[7];
                var read = await probe.ReceiveAsync(reply, SocketFlags.None, cancellationToken);
                if (read > 0 && reply[0] == '+')
                {
                    return;
                }
            }
            catch (SocketException)
            {
            }

            await Task.Delay(20, cancellationToken);
        }

        throw new TimeoutException($"redis-server did not answer on {Port} within 15 s.");
    }

    /// <summary>Kills the server (an outage); <see cref="StartAgainAsync"/> brings it back, empty.</summary>
    public async Task StopAsync()
    {
        if (_process is { } process)
        {
            _process = null;
            await ChildProcesses.KillAsync(process);
        }
    }

    /// <summary>A client connection of the test's own, for looking at the keys.</summary>
    public Task<ConnectionMultiplexer> ConnectAsync() => ConnectionMultiplexer.ConnectAsync(Configuration + ",allowAdmin=true");

    public ValueTask DisposeAsync() => new(StopAsync());

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}

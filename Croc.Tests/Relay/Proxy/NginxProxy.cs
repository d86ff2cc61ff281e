using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace CrocNet.Tests.Relay.Proxy;

/// <summary>
/// A real nginx (the Debian package; <c>.ci/run</c> installs it) as a TLS-terminating reverse proxy on a loopback port:
/// forwards every HTTP request and WebSocket upgrade to one upstream (or round-robin to several), sets <c>X-Forwarded-For</c>, and forwards nothing
/// else (the relay's TCP ports stay unreachable through it). Runs in the foreground as a child process; disposing stops
/// it and deletes its folder.
/// </summary>
internal sealed class NginxProxy : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _folder;

    private NginxProxy(Process process, string folder, int port)
    {
        _process = process;
        _folder = folder;
        Port = port;
        BaseAddress = new Uri($"https://127.0.0.1:{port}/");
    }

    public int Port { get; }

    /// <summary>The proxy's https:// address, ending in <c>/</c>.</summary>
    public Uri BaseAddress { get; }

    /// <summary>The nginx executable, or <see langword="null"/> when it is not installed.</summary>
    public static string? Executable =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator).Append("/usr/sbin").Append("/usr/local/sbin")
            .Select(dir => Path.Combine(dir, "nginx"))
            .FirstOrDefault(File.Exists);

    /// <summary>
    /// Starts nginx serving TLS with <paramref name="certificate"/> and proxying to <paramref name="upstream"/> (http,
    /// loopback). The free port is picked before nginx binds it, so another process may take it in between: then it
    /// tries again on another port, three times in all.
    /// </summary>
    public static Task<NginxProxy> StartAsync(Uri upstream, X509Certificate2 certificate, CancellationToken cancellationToken)
        => StartAsync([upstream], certificate, cancellationToken);

    /// <summary>As above, balancing the requests (and WebSocket upgrades) round-robin over several upstreams.</summary>
    public static async Task<NginxProxy> StartAsync(IReadOnlyList<Uri> upstreams, X509Certificate2 certificate, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await StartOnceAsync(upstreams, certificate, cancellationToken);
            }
            catch (InvalidOperationException) when (attempt < 3)
            {
                // nginx exited at start (typically: its port was taken meanwhile).
            }
        }
    }

    private static async Task<NginxProxy> StartOnceAsync(IReadOnlyList<Uri> upstreams, X509Certificate2 certificate, CancellationToken cancellationToken)
    {
        var executable = Executable ?? throw new InvalidOperationException("nginx is not installed (apt-get install nginx; .ci/run does this).");
        var folder = Directory.CreateTempSubdirectory("croc-nginx-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(folder, "cert.pem"), certificate.ExportCertificatePem(), cancellationToken);
            var key = certificate.GetECDsaPrivateKey() ?? throw new ArgumentException("An ECDSA certificate with its key is needed.", nameof(certificate));
            await File.WriteAllTextAsync(Path.Combine(folder, "key.pem"), key.ExportPkcs8PrivateKeyPem(), cancellationToken);
            var port = FreePort();
            await File.WriteAllTextAsync(Path.Combine(folder, "nginx.conf"), Config(folder, port, upstreams), cancellationToken);

            var start = new ProcessStartInfo(executable)
            {
                ArgumentList = { "-p", folder + "/", "-c", Path.Combine(folder, "nginx.conf"), "-e", Path.Combine(folder, "error.log") },
                RedirectStandardError = true,
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            var process = Process.Start(start) ?? throw new InvalidOperationException("nginx did not start.");
            var proxy = new NginxProxy(process, folder, port);
            try
            {
                await proxy.WaitUntilListeningAsync(cancellationToken);
                return proxy;
            }
            catch
            {
                await proxy.DisposeAsync();
                throw;
            }
        }
        catch
        {
            TryDelete(folder);
            throw;
        }
    }

    /// <summary>The error log so far (for failure messages).</summary>
    public string ErrorLog => File.Exists(Path.Combine(_folder, "error.log")) ? File.ReadAllText(Path.Combine(_folder, "error.log")) : string.Empty;

    public async ValueTask DisposeAsync()
    {
        try
        {
            await ChildProcesses.KillAsync(_process);
        }
        finally
        {
            TryDelete(_folder);
        }
    }

    private async Task WaitUntilListeningAsync(CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(15))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"nginx exited with {_process.ExitCode}: {await _process.StandardError.ReadToEndAsync(cancellationToken)} {ErrorLog}");
            }

            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await probe.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Port), cancellationToken);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(50, cancellationToken);
            }
        }

        throw new TimeoutException($"nginx did not listen on {Port} within 15 s: {ErrorLog}");
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private static string Config(string folder, int port, IReadOnlyList<Uri> upstreams) => $$"""
        daemon off;
        master_process off;
        worker_processes 1;
        pid {{folder}}/nginx.pid;
        error_log {{folder}}/error.log warn;
        events { worker_connections 1024; }
        http {
            access_log off;
            client_body_temp_path {{folder}}/body;
            proxy_temp_path {{folder}}/proxy;
            fastcgi_temp_path {{folder}}/fastcgi;
            uwsgi_temp_path {{folder}}/uwsgi;
            scgi_temp_path {{folder}}/scgi;
            map $http_upgrade $connection_upgrade { default upgrade; '' close; }
            upstream relays { {{string.Concat(upstreams.Select(u => $"server {u.Host}:{u.Port}; "))}}}
            server {
                listen 127.0.0.1:{{port}} ssl;
                ssl_certificate {{folder}}/cert.pem;
                ssl_certificate_key {{folder}}/key.pem;
                location / {
                    proxy_pass http://relays;
                    proxy_http_version 1.1;
                    proxy_set_header Host $host;
                    proxy_set_header Upgrade $http_upgrade;
                    proxy_set_header Connection $connection_upgrade;
                    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                    proxy_set_header X-Forwarded-Proto $scheme;
                    proxy_buffering off;
                    proxy_request_buffering off;
                    proxy_read_timeout 120s;
                    proxy_send_timeout 120s;
                }
            }
        }
        """;

    private static void TryDelete(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A temp folder left behind is harmless.
        }
    }
}

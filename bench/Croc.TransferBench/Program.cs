// Croc.TransferBench: one role per process, so bench/run.sh can measure each role's CPU time and peak RSS.
//
//   relay   --port-file <f> [--ports N] [--pid-file <p>] start a relay on 127.0.0.1 with N (default 4) TCP ports;
//                                                       write its URL to <f>; run until killed
//   send    --relay <url> --code <code> <path>          send a file or folder
//   receive --relay <url> --code <code> --out <dir>     receive into <dir>, overwriting
//           send and receive also take --transport auto|tcp|websocket and --trust-cert <pem> (a self-signed https relay)
//   micro   [--mib N]                                   single-thread costs per MiB: SHA-256, AES-256-GCM, copy
//
// Every role writes timestamped stage changes to stderr when CROC_BENCH_TRACE=1 (milliseconds since process
// start), so a run can be split into start-up, handshake, transfer and verification.
using System.Diagnostics;
using System.Security.Cryptography;
using CrocNet;
using CrocNet.Relay;

var started = Stopwatch.StartNew();
var trace = Environment.GetEnvironmentVariable("CROC_BENCH_TRACE") == "1";
void Trace(string what)
{
    if (trace)
    {
        Console.Error.WriteLine($"[{Environment.ProcessId} {started.Elapsed.TotalMilliseconds,8:F1} ms] {what}");
    }
}

if (args.Length == 0)
{
    return Usage();
}

var command = args[0];
var options = new Dictionary<string, string>(StringComparer.Ordinal);
var positional = new List<string>();
for (var i = 1; i < args.Length; i++)
{
    if (args[i].StartsWith("--", StringComparison.Ordinal) && i + 1 < args.Length)
    {
        options[args[i][2..]] = args[++i];
    }
    else
    {
        positional.Add(args[i]);
    }
}

string Need(string name) => options.TryGetValue(name, out var value) ? value : throw new ArgumentException($"--{name} is required");

// The client settings send and receive share: the relay, the legs' transport, a certificate to trust.
Croc NewClient(string relay) => Croc.New(o =>
{
    o.WithRelay(relay);
    if (options.TryGetValue("transport", out var transport))
    {
        o.WithTransport(Enum.Parse<CrocTransport>(transport, ignoreCase: true));
    }

    if (options.TryGetValue("trust-cert", out var certificate))
    {
        o.TrustRelayCertificate(System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(
            System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(certificate)).RawData));
    }
});

Trace("main");
using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(30));
try
{
    switch (command)
    {
        case "relay":
            return await RelayAsync(Need("port-file"), options.TryGetValue("ports", out var n) ? int.Parse(n) : 4, options.GetValueOrDefault("pid-file"), stop.Token);
        case "send":
            return await SendAsync(Need("relay"), Need("code"), positional.Single(), stop.Token);
        case "receive":
            return await ReceiveAsync(Need("relay"), Need("code"), Need("out"), stop.Token);
        case "argon2":
            return Argon2();
        case "micro":
            return Micro(options.TryGetValue("mib", out var mib) ? int.Parse(mib) : 256, options.GetValueOrDefault("only"));
        default:
            return Usage();
    }
}
catch (CrocException ex)
{
    Console.Error.WriteLine($"{command} failed: {ex.Code}: {ex.Message}");
    return 1;
}

static int Usage()
{
    Console.Error.WriteLine("usage: Croc.TransferBench relay --port-file <f> [--ports N] | send --relay <url> --code <code> <path> | receive --relay <url> --code <code> --out <dir> | micro [--mib N]");
    return 2;
}

async Task<int> RelayAsync(string portFile, int ports, string? pidFile, CancellationToken cancellationToken)
{
    if (pidFile is not null)
    {
        // For wrappers (perf, time) that do not pass signals on: the script signals this process directly.
        await File.WriteAllTextAsync(pidFile, Environment.ProcessId + Environment.NewLine, cancellationToken);
    }

    await using var relay = await CrocRelayServer.StartAsync(
        o =>
        {
            o.Url = "http://127.0.0.1:0";
            o.Relay.Ports = [.. Enumerable.Repeat(0, ports)];
            o.Relay.ListenAddress = "127.0.0.1";
        },
        cancellationToken);

    // Write then rename, so a reader never sees half a URL.
    var temp = portFile + ".tmp";
    await File.WriteAllTextAsync(temp, relay.BaseAddress.ToString().TrimEnd('/') + Environment.NewLine, cancellationToken);
    File.Move(temp, portFile, overwrite: true);
    Trace($"relay up at {relay.BaseAddress} ports {string.Join(",", relay.Ports)}");

    var done = new TaskCompletionSource();
    using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c =>
    {
        c.Cancel = true;
        done.TrySetResult();
    });
    using var intr = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, c =>
    {
        c.Cancel = true;
        done.TrySetResult();
    });
    await done.Task.WaitAsync(cancellationToken);
    return 0;
}

Progress<TransferProgress> StageTracer()
{
    var last = (TransferStage)(-1);
    return new Progress<TransferProgress>(p =>
    {
        if (p.Stage != last)
        {
            last = p.Stage;
            Trace($"stage {p.Stage} bytes {p.BytesTransferred}");
        }
    });
}

async Task<int> SendAsync(string relay, string code, string path, CancellationToken cancellationToken)
{
    var croc = NewClient(relay);
    var result = await croc.SendAsync(SendContent.FromPath(path), new SendOptions { Code = code, Progress = trace ? StageTracer() : null }, cancellationToken);
    Trace($"sent {result.Files.Count} files, {result.TotalBytes} bytes in {result.Duration.TotalMilliseconds:F0} ms");
    return 0;
}

async Task<int> ReceiveAsync(string relay, string code, string output, CancellationToken cancellationToken)
{
    Directory.CreateDirectory(output);
    var croc = NewClient(relay);
    var receive = new ReceiveOptions { OutputDirectory = output, Overwrite = CrocOverwritePolicy.Overwrite, Progress = trace ? StageTracer() : null };
    var result = await croc.ReceiveAsync(code, receive, cancellationToken);
    Trace($"received {result.Files.Count} files, {result.TotalBytes} bytes in {result.Duration.TotalMilliseconds:F0} ms");
    return 0;
}

// Cost of the password stretch each side runs once per transfer (docs/pake.md: Argon2id, 19 MiB, 2 passes, 1 lane,
// BouncyCastle's managed code): the first call in a fresh process (JIT included, as in a real transfer), then warm.
static int Argon2()
{
    static double Once()
    {
        var watch = Stopwatch.StartNew();
        var parameters = new Org.BouncyCastle.Crypto.Parameters.Argon2Parameters.Builder(Org.BouncyCastle.Crypto.Parameters.Argon2Parameters.Argon2id)
            .WithVersion(Org.BouncyCastle.Crypto.Parameters.Argon2Parameters.Version13)
            .WithMemoryAsKB(19 * 1024).WithIterations(2).WithParallelism(1)
            .WithSalt(SHA256.HashData("croc/1|bench"u8)).Build();
        var generator = new Org.BouncyCastle.Crypto.Generators.Argon2BytesGenerator();
        generator.Init(parameters);
        var output = new byte[48];
        generator.GenerateBytes("apple-river-stone"u8.ToArray(), output);
        return watch.Elapsed.TotalMilliseconds;
    }

    Console.WriteLine($"process peak working set before: {Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0:F0} MiB");
    Console.WriteLine($"Argon2id 19 MiB x2 first call: {Once():F0} ms");
    Console.WriteLine($"process peak working set after one call: {Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0:F0} MiB");
    var warm = Enumerable.Range(0, 5).Select(_ => Once()).ToList();
    Console.WriteLine($"Argon2id 19 MiB x2 warm: min {warm.Min():F0} ms, median {warm.Order().ElementAt(2):F0} ms");
    Console.WriteLine($"process peak working set so far: {Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0:F0} MiB");
    return 0;
}

// Single-threaded cost of each per-byte step of the data plane, on 1 MiB buffers like the real chunks.
static int Micro(int mib, string? only)
{
    const int Chunk = 1024 * 1024;
    var data = new byte[Chunk];
    RandomNumberGenerator.Fill(data);
    var copy = new byte[Chunk];
    var tag = new byte[16];
    var nonce = new byte[12];
    var digest = new byte[32];
    using var aes = new AesGcm(RandomNumberGenerator.GetBytes(32), 16);

    double Measure(string name, Action step)
    {
        for (var i = 0; i < 16; i++)
        {
            step();
        }

        var watch = Stopwatch.StartNew();
        for (var i = 0; i < mib; i++)
        {
            step();
        }

        var seconds = watch.Elapsed.TotalSeconds;
        Console.WriteLine($"{name,-28} {mib / seconds,8:F0} MiB/s  {seconds / mib * 1e3,7:F3} ms/MiB  ({1024 * seconds / mib:F2} s per GiB)");
        return seconds;
    }

    Console.WriteLine($"AES-NI/PCLMUL: {System.Runtime.Intrinsics.X86.Aes.IsSupported}/{System.Runtime.Intrinsics.X86.Pclmulqdq.IsSupported}, AVX2: {System.Runtime.Intrinsics.X86.Avx2.IsSupported}");
    // --only sha|aes|copy runs one of them, e.g. under perf to tell which libcrypto addresses are which.
    if (only is null or "sha")
    {
        Measure("SHA-256 (1 MiB chunks)", () => SHA256.HashData(data, digest));
    }

    if (only is null or "aes")
    {
        Measure("AES-256-GCM encrypt (1 MiB)", () => aes.Encrypt(nonce, data, copy, tag));
        Measure("AES-256-GCM decrypt (1 MiB)", () => aes.Decrypt(nonce, copy, tag, data));
    }

    if (only is null or "copy")
    {
        Measure("memcpy 1 MiB", () => data.AsSpan().CopyTo(copy));
    }
    return 0;
}

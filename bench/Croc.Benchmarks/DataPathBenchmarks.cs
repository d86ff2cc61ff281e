using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using CrocNet.Crypto;
using CrocNet.Files;

namespace CrocNet.Benchmarks;

/// <summary>
/// The per-byte work of the data path, without sockets or disks: framing and AES-256-GCM of 16 × 1 MiB chunks (one
/// writer into <see cref="Stream.Null"/>; one reader over the recorded frames), as each connection does.
/// Divide 16 MiB by the mean for MiB/s; "Allocated" shows what a 16 MiB stream costs the GC.
/// </summary>
[MemoryDiagnoser]
public class FrameBenchmarks
{
    private const int ChunkSize = 1024 * 1024;
    private const int Chunks = 16;
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    private byte[] _chunk = [];
    private byte[] _wire = [];
    private FrameWriter? _writer;

    [GlobalSetup]
    public void Setup()
    {
        _chunk = RandomNumberGenerator.GetBytes(ChunkSize);
        var recorded = new MemoryStream();
        using (var writer = new FrameWriter(recorded, _key, ChunkSize))
        {
            for (var i = 0; i < Chunks; i++)
            {
                writer.WriteAsync(FrameType.Data, _chunk, CancellationToken.None).AsTask().GetAwaiter().GetResult();
            }

            writer.WriteEndAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
        }

        _wire = recorded.ToArray();
        _writer = new FrameWriter(Stream.Null, _key, ChunkSize);
    }

    [GlobalCleanup]
    public void Cleanup() => _writer?.Dispose();

    /// <summary>16 MiB framed and encrypted: the sender's side of one connection (its buffer is reused across runs).</summary>
    [Benchmark]
    public async Task Encrypt16MiB()
    {
        for (var i = 0; i < Chunks; i++)
        {
            await _writer!.WriteAsync(FrameType.Data, _chunk, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>16 MiB read, authenticated and decrypted: the recipient's side (a new reader, so one 1 MiB buffer per run).</summary>
    [Benchmark]
    public async Task<long> Decrypt16MiB()
    {
        using var reader = new FrameReader(new MemoryStream(_wire, writable: false), _key);
        long total = 0;
        Frame frame;
        do
        {
            frame = await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false);
            total += frame.Payload.Length;
        }
        while (frame.Type != FrameType.End);
        return total;
    }
}

/// <summary>The per-chunk file hash over one 1 MiB chunk: XXH3-128 (the default) against SHA-256 (the option).</summary>
[MemoryDiagnoser]
public class ChunkHashBenchmarks
{
    private byte[] _chunk = [];

    /// <summary>The algorithm.</summary>
    [Params(CrocHashAlgorithm.XxHash128, CrocHashAlgorithm.Sha256)]
    public CrocHashAlgorithm Algorithm { get; set; }

    [GlobalSetup]
    public void Setup() => _chunk = RandomNumberGenerator.GetBytes(1024 * 1024);

    [Benchmark]
    public bool HashOneMiB() => new FileDigest(Algorithm).AddChunk(0, _chunk);
}

/// <summary>
/// What <see cref="ReceiveOptions.ComputeSha256"/> costs a recipient: reading a just-written 64 MiB file back and
/// hashing it with SHA-256, beside the transfer's own digest of the same bytes (computed while writing, no extra read).
/// </summary>
[MemoryDiagnoser]
public class PlainSha256Benchmarks
{
    private const int Size = 64 * 1024 * 1024;
    private string _path = "";
    private byte[] _data = [];
    private TransferredFile[] _files = [];

    [GlobalSetup]
    public void Setup()
    {
        _data = RandomNumberGenerator.GetBytes(Size);
        _path = Path.Join(Path.GetTempPath(), "croc-bench-sha256.bin");
        File.WriteAllBytes(_path, _data);
        _files = [new TransferredFile("f.bin", Size, "", _path)];
    }

    [GlobalCleanup]
    public void Cleanup() => File.Delete(_path);

    /// <summary>The transfer's default digest of the same 64 MiB (XXH3-128 per 1 MiB chunk), for scale.</summary>
    [Benchmark(Baseline = true)]
    public bool TransferDigest()
    {
        var digest = new FileDigest(CrocHashAlgorithm.XxHash128);
        var ok = true;
        for (var i = 0; i < Size / (1024 * 1024); i++)
        {
            ok &= digest.AddChunk(i, _data.AsSpan(i * 1024 * 1024, 1024 * 1024));
        }

        return ok;
    }

    /// <summary>The opt-in plain SHA-256: re-read the file from the page cache and hash it.</summary>
    [Benchmark]
    public async Task<string?> PlainSha256ReRead() => (await CrocNet.Session.PlainSha256.AddAsync(_files, null, CancellationToken.None).ConfigureAwait(false))[0].Sha256;
}

using BenchmarkDotNet.Running;

// Usage: dotnet run -c Release --project bench/Croc.Benchmarks -- --filter '*' [--job short]
BenchmarkSwitcher.FromAssembly(typeof(CrocNet.Benchmarks.PakeHandshakeBenchmarks).Assembly).Run(args);

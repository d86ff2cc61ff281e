using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace CrocNet.Tests.Api;

/// <summary>
/// Guards the promise that consumer code can write <c>Croc.New(...)</c>: a namespace named
/// <c>Croc</c> anywhere in our assemblies would make that a CS0234 error in user code.
/// </summary>
public class NamespaceTests
{
    [Test]
    public void PublicTypes_NeverLiveInNamespaceNamedCroc()
    {
        foreach (var assembly in new[] { typeof(CrocException).Assembly, typeof(CrocNet.Relay.CrocRelayOptions).Assembly })
        {
            foreach (var type in assembly.GetExportedTypes())
            {
                var ns = type.Namespace ?? string.Empty;
                Assert.That(ns == "Croc" || ns.StartsWith("Croc.", StringComparison.Ordinal), Is.False, $"{type.FullName} lives in a namespace that shadows the Croc type.");
            }
        }
    }

    [Test]
    public void ReadmeQuickStart_Compiles()
    {
        var readme = File.ReadAllText(Path.Join(AppContext.BaseDirectory, "README.md"));
        var section = readme[readme.IndexOf("## Quick start", StringComparison.Ordinal)..];
        var start = section.IndexOf("```csharp", StringComparison.Ordinal) + "```csharp".Length;
        var code = section[start..section.IndexOf("```", start, StringComparison.Ordinal)];

        var errors = Compile(code, OutputKind.ConsoleApplication);

        Assert.That(code, Does.Contain("Croc.New(o => o.WithCurve(\"p256\")"));
        Assert.That(errors, Is.Empty, string.Join(Environment.NewLine, errors));
    }

    private static List<Diagnostic> Compile(string code, OutputKind kind)
    {
        var references = AppDomain.CurrentDomain.GetAssemblies()
            .Where(a => !a.IsDynamic && !string.IsNullOrEmpty(a.Location))
            .Select(a => MetadataReference.CreateFromFile(a.Location))
            .Append(MetadataReference.CreateFromFile(typeof(Croc).Assembly.Location));
        var compilation = CSharpCompilation.Create(
            "Consumer",
            [
                // What an SDK project's implicit usings provide.
                CSharpSyntaxTree.ParseText("global using System; global using System.IO; global using System.Linq; global using System.Threading; global using System.Threading.Tasks; global using System.Collections.Generic;"),
                CSharpSyntaxTree.ParseText(code, new CSharpParseOptions(LanguageVersion.Latest)),
            ],
            references,
            new CSharpCompilationOptions(kind));
        return compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
    }

    [Test]
    public void ConsumerCode_FileScopedNamespace_CompilesCrocNew()
    {
        const string consumer = """
            using CrocNet;

            namespace Contoso.Transfers;

            public static class Program
            {
                public static async System.Threading.Tasks.Task Main()
                {
                    var croc = Croc.New(o => o.WithCurve("p256").WithRelay("http://127.0.0.1:9009"));
                    TransferResult sent = await croc.SendAsync(SendContent.FromPath("file.txt"), new SendOptions { Code = Croc.GenerateCode() });
                    TransferResult received = await Croc.New(o => o.WithRelay(new System.Uri("http://127.0.0.1:9009"))).ReceiveAsync("abc-def-ghi-jkl");
                    // Every entry point, with and without its optional arguments, and a null for the options: no ambiguity.
                    await croc.ReceiveAsync("abc-def-ghi-jkl", null);
                    await croc.ReceiveAsync("abc-def-ghi-jkl", null, default);
                    await croc.ReceiveAsync("abc-def-ghi-jkl", System.Threading.CancellationToken.None);
                    await croc.ReceiveToStreamAsync("abc-def-ghi-jkl", new System.IO.MemoryStream(), null);
                    await croc.ReceiveToStreamAsync("abc-def-ghi-jkl", new System.IO.MemoryStream());
                    await using var op = await croc.StartSendAsync(SendContent.FromText("hi"), null);
                    await using var op2 = await croc.StartSendAsync(SendContent.FromText("hi"));
                    await croc.SendAsync(SendContent.FromText("hi"), null);
                }
            }
            """;

        var errors = Compile(consumer, OutputKind.ConsoleApplication);

        Assert.That(errors, Is.Empty, string.Join(Environment.NewLine, errors));
    }
}

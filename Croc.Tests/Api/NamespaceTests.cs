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
                    TransferResult sent = await croc.SendAsync("file.txt");
                    TransferResult received = await Croc.New(o => o.WithRelay(new System.Uri("http://127.0.0.1:9009"))).ReceiveAsync("abc-def-ghi-jkl");
                }
            }
            """;

        var references = AppDomain.CurrentDomain.GetAssemblies()
            .Where(a => !a.IsDynamic && !string.IsNullOrEmpty(a.Location))
            .Select(a => MetadataReference.CreateFromFile(a.Location))
            .Append(MetadataReference.CreateFromFile(typeof(Croc).Assembly.Location));
        var compilation = CSharpCompilation.Create(
            "Consumer",
            [CSharpSyntaxTree.ParseText(consumer)],
            references,
            new CSharpCompilationOptions(OutputKind.ConsoleApplication));

        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.That(errors, Is.Empty, string.Join(Environment.NewLine, errors));
    }
}

using System.Text;

namespace CrocNet.Cli;

/// <summary>
/// The streams and environment the command line runs against: the real console in <c>Program</c>, redirected
/// streams in tests.
/// </summary>
public sealed class CliConsole
{
    private static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);
    private TextWriter? _outputText;
    private TextReader? _inputText;

    /// <summary>Standard input as bytes (piped data for <c>send</c>, answers to prompts).</summary>
    public required Stream Input { get; init; }

    /// <summary>Standard output as bytes (received data with <c>--stdout</c>).</summary>
    public required Stream Output { get; init; }

    /// <summary>Standard error: messages, progress when standard output is not a terminal, and errors.</summary>
    public required TextWriter Error { get; init; }

    /// <summary>Whether standard input is a terminal a person can answer prompts on.</summary>
    public bool IsInputInteractive { get; init; }

    /// <summary>Whether standard output is a terminal (rather than a file or a pipe).</summary>
    public bool IsOutputTerminal { get; init; }

    /// <summary>Whether standard error is a terminal.</summary>
    public bool IsErrorTerminal { get; init; }

    /// <summary>Reads an environment variable (<c>CROC_SECRET</c>, <c>CROC_RELAY</c>).</summary>
    public Func<string, string?> GetEnvironmentVariable { get; init; } = Environment.GetEnvironmentVariable;

    /// <summary>
    /// How the person runs this program, for the commands it prints: <c>croc</c> (the installed tool or the native
    /// binary), else the path it was started by (<c>dotnet run</c>, or <c>dotnet Croc.Cli.dll</c>).
    /// </summary>
    public string CommandName { get; init; } = "croc";

    /// <summary>Standard output as text, over <see cref="Output"/> unless given.</summary>
    public TextWriter OutputText
    {
        get => _outputText ??= new StreamWriter(Output, Utf8NoBom, bufferSize: 4096, leaveOpen: true) { AutoFlush = true };
        init => _outputText = value;
    }

    /// <summary>Standard input as text, over <see cref="Input"/> unless given.</summary>
    public TextReader InputText
    {
        get => _inputText ??= new StreamReader(Input, Utf8NoBom, detectEncodingFromByteOrderMarks: false, bufferSize: 1024, leaveOpen: true);
        init => _inputText = value;
    }

    /// <summary>The process's own console.</summary>
    public static CliConsole FromSystemConsole() => new()
    {
        Input = Console.OpenStandardInput(),
        Output = Console.OpenStandardOutput(),
        Error = Console.Error,
        OutputText = Console.Out,
        InputText = Console.In,
        IsInputInteractive = !Console.IsInputRedirected,
        IsOutputTerminal = !Console.IsOutputRedirected,
        IsErrorTerminal = !Console.IsErrorRedirected,
        CommandName = ProcessCommandName(),
    };

    private static string ProcessCommandName()
    {
        var process = Environment.ProcessPath;
        var name = Path.GetFileNameWithoutExtension(process);
        if (process is null || string.Equals(name, "croc", StringComparison.OrdinalIgnoreCase))
        {
            return "croc";
        }

        if (string.Equals(name, "dotnet", StringComparison.OrdinalIgnoreCase))
        {
            return "dotnet " + Quote(Path.Combine(AppContext.BaseDirectory, typeof(CliConsole).Assembly.GetName().Name + ".dll"));
        }

        return Quote(process);
    }

    private static string Quote(string path) => path.Contains(' ', StringComparison.Ordinal) ? $"\"{path}\"" : path;
}

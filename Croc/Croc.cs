using CrocNet.Codes;
using CrocNet.Session;
using CrocNet.Transfer;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrocNet;

/// <summary>
/// Sends and receives files end to end encrypted through a Croc relay. Build one with
/// <see cref="New(Action{CrocOptionsBuilder})"/> or from DI (<c>services.AddCroc(...)</c>).
/// An instance is immutable and thread-safe: it holds only lifetime-wide settings and services, every call
/// runs its own session with its own <see cref="SendOptions"/> or <see cref="ReceiveOptions"/>, so one instance
/// serves a whole application, any number of transfers at once.
/// </summary>
public sealed class Croc
{
    private readonly CrocRuntime _runtime;

    /// <summary>Creates an instance from DI-style options.</summary>
    /// <param name="options">The settings; validated here.</param>
    /// <param name="loggerFactory">Where logs go; default none.</param>
    /// <exception cref="OptionsValidationException">The options are invalid; the message lists every problem.</exception>
    public Croc(IOptions<CrocOptions> options, ILoggerFactory? loggerFactory = null)
        : this(Copy(options), new CrocServices { LoggerFactory = loggerFactory })
    {
    }

    internal Croc(CrocOptions options, CrocServices services)
    {
        CrocOptionsValidator.ThrowIfInvalid(options, services);
        _runtime = new CrocRuntime(options, services.Clone(), services.LoggerFactoryOrDefault.CreateLogger<Croc>());
    }

    /// <summary>Builds an instance with the fluent options builder, for example
    /// <c>Croc.New(o =&gt; o.WithCurve("p256").WithRelay(url))</c>.</summary>
    /// <exception cref="OptionsValidationException">The options are invalid; the message lists every problem.</exception>
    public static Croc New(Action<CrocOptionsBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var builder = new CrocOptionsBuilder(new CrocOptions(), new CrocServices());
        configure(builder);
        return new Croc(builder.Options.Clone(), builder.Services);
    }

    /// <summary>Generates a fresh code (<c>&lt;channel&gt;-&lt;word&gt;-&lt;word&gt;-&lt;word&gt;</c>) for <see cref="SendOptions.Code"/>.</summary>
    public static string GenerateCode() => CodePhrase.Generate().Code;

    internal CrocRuntime Runtime => _runtime;

    /// <summary>A copy of the validated options this instance runs with.</summary>
    public CrocOptions Options => _runtime.Options.Clone();

    /// <summary>
    /// Sends <paramref name="content"/> with the code in <paramref name="options"/> and completes once the
    /// recipient has verified every file.
    /// </summary>
    /// <param name="content">What to send: <see cref="SendContent.FromPath"/>, <see cref="SendContent.FromStream"/>, <see cref="SendContent.FromText"/>…</param>
    /// <param name="options">This send's settings; <see cref="SendOptions.Code"/> is required here.</param>
    /// <param name="cancellationToken">Cancels the send; the channel is closed.</param>
    /// <exception cref="ArgumentException">No code was given: nobody could learn a generated one. Use <see cref="StartSendAsync(SendContent, SendOptions?, CancellationToken)"/> for that.</exception>
    /// <exception cref="CrocException">The send failed; the subclass and <see cref="CrocException.Code"/> say how.</exception>
    public async Task<TransferResult> SendAsync(SendContent content, SendOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        if (options?.Code is null)
        {
            throw new ArgumentException(
                "SendAsync needs SendOptions.Code: a generated code would be known to nobody and the send would wait for a recipient in vain. " +
                "Call StartSendAsync to generate one and read CrocSendOperation.Code, or pass a code from Croc.GenerateCode().",
                nameof(options));
        }

        var operation = await StartSendAsync(content, options, cancellationToken).ConfigureAwait(false);
        await using var _ = operation.ConfigureAwait(false);
        return await operation.Completion.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads what is to be sent, opens the channel on the relay, and returns with the
    /// <see cref="CrocSendOperation.Code"/> to give the recipient (generated unless <see cref="SendOptions.Code"/> is set);
    /// the transfer carries on in <see cref="CrocSendOperation.Completion"/>.
    /// </summary>
    /// <param name="content">What to send.</param>
    /// <param name="options">This send's settings.</param>
    /// <param name="cancellationToken">Cancels the start and, afterwards, the transfer itself (as does disposing the operation).</param>
    /// <exception cref="CrocException">Reading the content or joining the relay failed.</exception>
    public Task<CrocSendOperation> StartSendAsync(SendContent content, SendOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        return SendSession.StartAsync(_runtime, content, options, cancellationToken);
    }

    /// <summary>Starts a send with a generated code and this instance's defaults; see <see cref="StartSendAsync(SendContent, SendOptions?, CancellationToken)"/>.</summary>
    /// <param name="content">What to send.</param>
    /// <param name="cancellationToken">Cancels the start and, afterwards, the transfer itself.</param>
    public Task<CrocSendOperation> StartSendAsync(SendContent content, CancellationToken cancellationToken) =>
        StartSendAsync(content, null, cancellationToken);

    /// <summary>Receives into this instance's output folder; see <see cref="ReceiveAsync(string, ReceiveOptions?, CancellationToken)"/>.</summary>
    /// <param name="code">The code the sender's side showed.</param>
    /// <param name="cancellationToken">Cancels the receive; nothing is left under a final name.</param>
    public Task<TransferResult> ReceiveAsync(string code, CancellationToken cancellationToken) =>
        ReceiveAsync(code, null, cancellationToken);

    /// <summary>Receives one file or text into a stream; see <see cref="ReceiveToStreamAsync(string, Stream, ReceiveOptions?, CancellationToken)"/>.</summary>
    /// <param name="code">The code the sender's side showed.</param>
    /// <param name="destination">A writable stream; not disposed.</param>
    /// <param name="cancellationToken">Cancels the receive.</param>
    public Task<TransferResult> ReceiveToStreamAsync(string code, Stream destination, CancellationToken cancellationToken) =>
        ReceiveToStreamAsync(code, destination, null, cancellationToken);

    /// <summary>
    /// Receives into a folder (<see cref="ReceiveOptions.OutputDirectory"/>, else <see cref="CrocOptions.OutputDirectory"/>,
    /// else the current directory) and completes once every file is verified and in place.
    /// </summary>
    /// <param name="code">The code the sender's side showed.</param>
    /// <param name="options">This receive's settings.</param>
    /// <param name="cancellationToken">Cancels the receive; nothing is left under a final name.</param>
    /// <exception cref="CrocException">The receive failed; the subclass and <see cref="CrocException.Code"/> say how.</exception>
    public Task<TransferResult> ReceiveAsync(string code, ReceiveOptions? options = null, CancellationToken cancellationToken = default)
    {
        options?.Validate();
        var target = new ReceiveTarget
        {
            OutputDirectory = options?.OutputDirectory ?? _runtime.Options.OutputDirectory ?? Directory.GetCurrentDirectory(),
            Overwrite = options?.Overwrite ?? _runtime.Options.Overwrite,
            ConfirmOffer = options?.ConfirmOffer,
            Partials = new Files.PartialSettings(options?.Resume ?? true, options?.DiscardPartial ?? false, options?.PartialMaxAge ?? TimeSpan.FromDays(7), _runtime.Time),
        };
        return ReceiveSession.RunAsync(_runtime, code, target, options, cancellationToken);
    }

    /// <summary>
    /// Receives a single file (or a text) into <paramref name="destination"/>, in order. The stream sees the
    /// bytes before the final digest check: treat its contents as valid only if this call succeeds.
    /// </summary>
    /// <param name="code">The code the sender's side showed.</param>
    /// <param name="destination">A writable stream; not disposed.</param>
    /// <param name="options">This receive's settings (the output folder and overwrite policy do not apply).</param>
    /// <param name="cancellationToken">Cancels the receive.</param>
    /// <exception cref="CrocException">The receive failed.</exception>
    public Task<TransferResult> ReceiveToStreamAsync(string code, Stream destination, ReceiveOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        options?.Validate();
        if (!destination.CanWrite)
        {
            throw new ArgumentException("The destination stream must be writable.", nameof(destination));
        }

        var target = new ReceiveTarget
        {
            Destination = options?.ComputeSha256 == true ? new HashingStream(destination) : destination,
            ConfirmOffer = options?.ConfirmOffer,
        };
        return ReceiveSession.RunAsync(_runtime, code, target, options, cancellationToken);
    }

    private static CrocOptions Copy(IOptions<CrocOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Value.Clone();
    }
}

using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Authentication;
using System.Text.Json;
using CrocNet.Protocol;
using Microsoft.Extensions.Logging;
using Polly;

namespace CrocNet.Rendezvous;

/// <summary>
/// Talks to one relay's HTTP routes. It holds no per-channel state: <see cref="JoinAsync"/> returns an immutable
/// <see cref="RelaySession"/> for everything after it. Transient faults (refused or reset connections, 5xx) are
/// retried by the instance's resilience pipeline; a 4xx means "no" and is never retried.
/// </summary>
internal sealed class RelayClient
{
    private readonly HttpMessageInvoker _http;
    private readonly ResiliencePipeline _pipeline;
    private readonly string? _password;

    public RelayClient(HttpMessageInvoker http, Uri relay, ResiliencePipeline pipeline, TimeProvider time, ILogger logger, string? password = null)
    {
        _http = http;
        _password = password;
        var text = relay.ToString();
        BaseAddress = text.EndsWith('/') ? relay : new Uri(text + "/");
        _pipeline = pipeline;
        Time = time;
        Logger = logger;
        // Never with credentials from the URL.
        DisplayAddress = new UriBuilder(BaseAddress) { UserName = "", Password = "" }.Uri.ToString();
    }

    public Uri BaseAddress { get; }

    /// <summary>The relay address for logs and messages.</summary>
    public string DisplayAddress { get; }

    public TimeProvider Time { get; }

    public ILogger Logger { get; }

    /// <summary>Joins (or, for a sender without a channel name, creates) a channel.</summary>
    public async Task<RelaySession> JoinAsync(string? channel, string? curve, ParticipantRole role, CancellationToken cancellationToken)
    {
        var state = await SendAsync(
            CrocWire.JoinRoute,
            // Every retry sends the same uuid (the body is buffered once), so a lost answer does not cost the join.
            JsonContent.Create(
                new JoinRequest { Channel = channel, Curve = curve, Role = role.ToWire(), Uuid = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)) },
                RelayJsonContext.Default.JoinRequest),
            ProtocolTimings.RelayRequest,
            cancellationToken).ConfigureAwait(false);
        if (string.IsNullOrEmpty(state.Uuid) || string.IsNullOrEmpty(state.Channel) || (channel is not null && state.Channel != channel))
        {
            throw new CrocProtocolException("The relay's join reply lacks a channel or participant token.");
        }

        return new RelaySession(this, state.Channel, state.Uuid, state);
    }

    internal Task<RelayState> PostChannelAsync(ChannelRequest request, TimeSpan timeout, CancellationToken cancellationToken) =>
        SendAsync(CrocWire.ChannelRoute, JsonContent.Create(request, RelayJsonContext.Default.ChannelRequest), timeout, cancellationToken);

    /// <summary>One attempt, no retry, the reply ignored: for the best-effort close.</summary>
    internal async Task PostOnceIgnoringReplyAsync(ChannelRequest request, CancellationToken cancellationToken)
    {
        using var content = JsonContent.Create(request, RelayJsonContext.Default.ChannelRequest);
        using var response = await PostRawAsync(CrocWire.ChannelRoute, content, cancellationToken).ConfigureAwait(false);
    }

    private async Task<RelayState> SendAsync(string route, HttpContent content, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using (content)
        {
            // Buffer once so every retry sends the same bytes.
            await content.LoadIntoBufferAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                return await _pipeline.ExecuteAsync(
                    async token =>
                    {
                        using var attempt = ProtocolTimings.After(timeout, Time, token);
                        try
                        {
                            using var response = await PostRawAsync(route, content, attempt.Token).ConfigureAwait(false);
                            return await ReadStateAsync(response, attempt.Token).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException ex) when (!token.IsCancellationRequested)
                        {
                            // Not our caller's cancellation: our deadline for this attempt, or the HTTP handler's own
                            // connect timeout (which it reports as a cancellation). Either way a fault worth retrying.
                            throw new TimeoutException(
                                attempt.Expired ? $"The relay did not answer within {timeout}." : ex.InnerException?.Message ?? "The request to the relay timed out.", ex);
                        }
                    },
                    cancellationToken).ConfigureAwait(false);
            }
            catch (CrocRelayException ex) when (ex.StatusCode >= 500)
            {
                // Reached, but failing or out of capacity even after retries: say so, and keep its code.
                throw new CrocRelayException(
                    ex.RelayCode == CrocWire.Errors.Unavailable ? CrocErrorCode.RelayUnavailable : CrocErrorCode.RelayUnreachable,
                    $"The relay at {DisplayAddress} is not taking requests: {ex.Message} Try again later.",
                    ex.RelayCode,
                    ex.StatusCode,
                    ex);
            }
            catch (HttpRequestException ex) when (Transport.WebSocketStapleTransport.FindInner<AuthenticationException>(ex) is { } tls)
            {
                throw new CrocRelayException(
                    CrocErrorCode.RelayUnreachable,
                    $"The relay at {DisplayAddress} could not be reached securely. {Transport.WebSocketStapleTransport.CertificateMessage(tls)}",
                    innerException: ex);
            }
            catch (Exception ex) when (ex is HttpRequestException or TimeoutException or System.Net.Sockets.SocketException or IOException)
            {
                // The handler wraps most connection faults in an HttpRequestException, but not all: a connection reset
                // just after its connect surfaces as a bare SocketException (reading the remote end point fails).
                throw new CrocRelayException(
                    CrocErrorCode.RelayUnreachable,
                    $"The relay at {DisplayAddress} could not be reached ({ex.Message}). Check the address and that the relay is running.",
                    innerException: ex);
            }
        }
    }

    /// <summary>Relay replies are small JSON documents: a relay does not get to make us buffer megabytes.</summary>
    private static async Task<byte[]> ReadBoundedAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        const int limit = 64 * 1024;
        var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            var buffer = new byte[limit + 1];
            var length = await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            return length > limit
                ? throw new CrocProtocolException("The relay's reply is larger than 64 KiB.")
                : buffer[..length];
        }
    }

    private Task<HttpResponseMessage> PostRawAsync(string route, HttpContent content, CancellationToken cancellationToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(BaseAddress, route)) { Content = content };
        if (_password is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue(CrocWire.AuthorizationScheme, _password);
        }

        return _http.SendAsync(request, cancellationToken);
    }

    private async Task<RelayState> ReadStateAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            try
            {
                var body = await ReadBoundedAsync(response, cancellationToken).ConfigureAwait(false);
                return JsonSerializer.Deserialize(body, RelayJsonContext.Default.RelayState)
                    ?? throw new CrocProtocolException("The relay answered with an empty body.");
            }
            catch (JsonException ex)
            {
                throw new CrocProtocolException("The relay answered with malformed JSON.", ex);
            }
        }

        RelayError? error = null;
        try
        {
            error = JsonSerializer.Deserialize(await ReadBoundedAsync(response, cancellationToken).ConfigureAwait(false), RelayJsonContext.Default.RelayError);
        }
        catch (Exception ex) when (ex is JsonException or NotSupportedException or InvalidOperationException)
        {
            // Not our relay's error shape (a proxy's page, say); the status code still tells the story.
        }

        var status = (int)response.StatusCode;
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            // Never retried (a 4xx), and said in our words: the relay's own are not needed, the password must not be.
            throw Transport.TcpStapleTransport.AccessDenied($"relay at {DisplayAddress}", _password is not null, CrocWire.SafeCode(error?.Code), status);
        }

        var code = CrocWire.SafeCode(error?.Code) ?? (response.StatusCode == HttpStatusCode.NotFound ? "not_found" : "http_" + status);
        // The relay's words are untrusted text that may end up on a terminal.
        var text = Files.ReceivePathValidator.Escape(error?.Error ?? response.ReasonPhrase ?? "no reason given");
        return status >= 500
            ? throw new CrocRelayException(CrocErrorCode.RelayUnreachable, $"It answered {status} ({code}): {text}", code, status)
            : throw new CrocRelayException(CrocErrorCode.RelayRefused, $"The relay refused the request: {text} ({code}).", code, status);
    }
}

using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CrocNet.Diagnostics;
using Microsoft.Extensions.Logging;
using Polly;

namespace CrocNet.Channel;

/// <summary>
/// One participant's conversation with the relay's HTTP routes. Transient faults (refused or reset
/// connections, 5xx) are retried by the instance's resilience pipeline; a 4xx means "no" and is never retried.
/// </summary>
internal sealed class RelayChannelClient
{
    /// <summary>The longest long-poll the protocol allows.</summary>
    public const int MaxWaitSeconds = 30;

    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);

    private readonly HttpMessageInvoker _http;
    private readonly Uri _baseAddress;
    private readonly ResiliencePipeline _pipeline;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;

    public RelayChannelClient(HttpMessageInvoker http, Uri relay, ResiliencePipeline pipeline, TimeProvider time, ILogger logger)
    {
        _http = http;
        var text = relay.ToString();
        _baseAddress = text.EndsWith('/') ? relay : new Uri(text + "/");
        _pipeline = pipeline;
        _time = time;
        _logger = logger;
    }

    public Uri Relay => _baseAddress;

    /// <summary>The relay address for logs and messages: never with credentials from the URL.</summary>
    public string DisplayAddress => new UriBuilder(_baseAddress) { UserName = "", Password = "" }.Uri.ToString();

    public string? Channel { get; private set; }

    public string? Uuid { get; private set; }

    public async Task<RelayState> JoinAsync(string? channel, string? curve, string role, CancellationToken cancellationToken)
    {
        var state = await SendAsync(
            "join",
            JsonContent.Create(new JoinRequest { Channel = channel, Curve = curve, Role = role }, RelayJsonContext.Default.JoinRequest),
            RequestTimeout,
            cancellationToken).ConfigureAwait(false);
        if (string.IsNullOrEmpty(state.Uuid) || string.IsNullOrEmpty(state.Channel) || (channel is not null && state.Channel != channel))
        {
            throw new CrocProtocolException("The relay's join reply lacks a channel or participant token.");
        }

        Channel = state.Channel;
        Uuid = state.Uuid;
        return state;
    }

    /// <summary>Posts an action (or nothing, to read the state).</summary>
    public Task<RelayState> PostAsync(Action<ChannelRequest>? action, CancellationToken cancellationToken)
    {
        var request = NewRequest();
        action?.Invoke(request);
        return PostAsync(request, RequestTimeout, cancellationToken);
    }

    /// <summary>
    /// Long-polls until <paramref name="isDone"/> holds, the channel closes, or <paramref name="timeout"/> passes.
    /// </summary>
    public async Task<RelayState> WaitForAsync(RelayState current, Func<RelayState, bool> isDone, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = _time.GetTimestamp() + (long)(timeout.TotalSeconds * _time.TimestampFrequency);
        var state = current;
        while (!isDone(state) && !state.Closed)
        {
            var left = TimeSpan.FromSeconds((double)(deadline - _time.GetTimestamp()) / _time.TimestampFrequency);
            if (left <= TimeSpan.Zero)
            {
                throw new CrocException(CrocErrorCode.Timeout, $"The other side did not respond within {timeout}.");
            }

            var request = NewRequest();
            request.Wait = (int)Math.Clamp(Math.Ceiling(left.TotalSeconds), 1, MaxWaitSeconds);
            request.Since = state.Rev;
            state = await PostAsync(request, TimeSpan.FromSeconds(request.Wait.Value) + RequestTimeout, cancellationToken).ConfigureAwait(false);
        }

        return state;
    }

    /// <summary>Ends the channel; best effort, never throws (the channel may already be gone).</summary>
    public async Task CloseAsync()
    {
        if (Channel is null || Uuid is null)
        {
            return;
        }

        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var request = NewRequest();
            request.Close = true;
            using var content = JsonContent.Create(request, RelayJsonContext.Default.ChannelRequest);
            using var response = await PostRawAsync("channel", content, cts.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
        {
            Log.CloseFailed(_logger, Channel, ex.Message);
        }
    }

    private ChannelRequest NewRequest() => new()
    {
        Channel = Channel ?? throw new InvalidOperationException("Join first."),
        Uuid = Uuid ?? throw new InvalidOperationException("Join first."),
    };

    private Task<RelayState> PostAsync(ChannelRequest request, TimeSpan timeout, CancellationToken cancellationToken) =>
        SendAsync("channel", JsonContent.Create(request, RelayJsonContext.Default.ChannelRequest), timeout, cancellationToken);

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
                        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(token);
                        attempt.CancelAfter(timeout);
                        try
                        {
                            using var response = await PostRawAsync(route, content, attempt.Token).ConfigureAwait(false);
                            return await ReadStateAsync(response, attempt.Token).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException ex) when (!token.IsCancellationRequested)
                        {
                            throw new TimeoutException($"The relay did not answer within {timeout}.", ex);
                        }
                    },
                    cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpRequestException or TimeoutException || (ex is CrocRelayException { StatusCode: >= 500 }))
            {
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
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_baseAddress, route)) { Content = content };
        return _http.SendAsync(request, cancellationToken);
    }

    private static async Task<RelayState> ReadStateAsync(HttpResponseMessage response, CancellationToken cancellationToken)
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
        var code = SafeCode(error?.Code) ?? (response.StatusCode == HttpStatusCode.NotFound ? "not_found" : "http_" + status);
        // The relay's words are untrusted text that may end up on a terminal.
        var text = Files.ReceivePathValidator.Escape(error?.Error ?? response.ReasonPhrase ?? "no reason given");
        return status >= 500
            ? throw new CrocRelayException(CrocErrorCode.RelayUnreachable, $"The relay failed ({status}): {text}", code, status)
            : throw new CrocRelayException(CrocErrorCode.RelayRefused, $"The relay refused the request: {text} ({code}).", code, status);
    }

    /// <summary>A relay error code as the protocol defines them (snake_case), or null for anything else.</summary>
    internal static string? SafeCode(string? code) =>
        code is { Length: > 0 and <= 32 } && code.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_') ? code : null;
}

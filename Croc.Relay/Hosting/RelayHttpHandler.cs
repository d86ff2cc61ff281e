using System.Buffers;
using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Diagnostics;
using CrocNet.Relay.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Net.Http.Headers;
using CrocNet.Relay.Protocol;

namespace CrocNet.Relay.Hosting;

/// <summary>
/// The two HTTP routes: reads a bounded body, turns it into a validated command, runs it on the registry and writes
/// the state or the error. The only place that knows both HTTP and the channel model.
/// </summary>
internal sealed class RelayHttpHandler
{
    /// <summary>The largest decoded PAKE value or confirmation accepted (a P-521 point is 67 bytes).</summary>
    internal const int MaxValueBytes = 256;

    private readonly ChannelRegistry _registry;
    private readonly CrocRelayOptions _options;
    private readonly CancellationToken _stopping;

    public RelayHttpHandler(ChannelRegistry registry, IHostApplicationLifetime? lifetime = null)
    {
        _registry = registry;
        _options = registry.Options;
        _stopping = lifetime?.ApplicationStopping ?? CancellationToken.None;
    }

    public Task JoinAsync(HttpContext context) => GuardAsync(context, "join", JoinCoreAsync);

    public Task ChannelAsync(HttpContext context) => GuardAsync(context, "channel", ChannelCoreAsync);

    /// <summary>A channel store that cannot be reached is a transient refusal (<c>503 unavailable</c>), never a crash or a hang.</summary>
    private async Task GuardAsync(HttpContext context, string route, Func<HttpContext, Task> handle)
    {
        try
        {
            await handle(context).ConfigureAwait(false);
        }
        catch (ChannelStoreUnavailableException) when (!context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
        {
            await WriteErrorAsync(context, route, RelayErrors.Unavailable, null).ConfigureAwait(false);
        }
    }

    private async Task JoinCoreAsync(HttpContext context)
    {
        if (!await AuthorizeAsync(context, "join").ConfigureAwait(false))
        {
            return;
        }

        var (dto, error) = await ReadAsync(context, RelayJsonContext.Default.JoinRequestDto).ConfigureAwait(false);
        if (dto is null)
        {
            await WriteErrorAsync(context, "join", error, null).ConfigureAwait(false);
            return;
        }

        if (ParseJoin(dto) is not { } command)
        {
            await WriteErrorAsync(context, "join", ParseJoinError(dto), dto.Channel).ConfigureAwait(false);
            return;
        }

        var outcome = await _registry.JoinAsync(command, ClientAddress(context), context.RequestAborted).ConfigureAwait(false);
        if (outcome.Value is not { } joined)
        {
            await WriteErrorAsync(context, "join", outcome.Error, dto.Channel).ConfigureAwait(false);
            return;
        }

        await WriteStateAsync(context, joined.State, joined.Uuid, joined.Role).ConfigureAwait(false);
    }

    private async Task ChannelCoreAsync(HttpContext context)
    {
        if (!await AuthorizeAsync(context, "channel").ConfigureAwait(false))
        {
            return;
        }

        var (dto, error) = await ReadAsync(context, RelayJsonContext.Default.ChannelRequestDto).ConfigureAwait(false);
        if (dto is null)
        {
            await WriteErrorAsync(context, "channel", error, null).ConfigureAwait(false);
            return;
        }

        var (command, wait, since, invalid) = ParseChannel(dto);
        if (command is null)
        {
            await WriteErrorAsync(context, "channel", invalid, dto.Channel).ConfigureAwait(false);
            return;
        }

        // Act on one channel and wait on that same one (the state's Id): a name can be forgotten and taken again in between.
        var outcome = await _registry.ExecuteAsync(command, ClientAddress(context), context.RequestAborted).ConfigureAwait(false);
        if (outcome.Value is not { } state)
        {
            await WriteErrorAsync(context, "channel", outcome.Error, command.Channel).ConfigureAwait(false);
            return;
        }

        if (wait > TimeSpan.Zero && !state.Closed)
        {
            // Without "since", wait for the next change after this request.
            using var abort = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping);
            state = await _registry.WaitAsync(state, since ?? state.Rev, wait, abort.Token).ConfigureAwait(false);
            if (context.RequestAborted.IsCancellationRequested)
            {
                return;
            }
        }

        await WriteStateAsync(context, state, null, null).ConfigureAwait(false);
    }

    /// <summary>The request's client address; says once per peer when an untrusted proxy's forwarded headers are ignored.</summary>
    private IPAddress ClientAddress(HttpContext context)
    {
        _registry.Addresses.HintUntrustedForwarding(context, _registry.Log);
        return _registry.Addresses.FromHttp(context);
    }

    /// <summary>A private relay answers a request without its password <c>401 unauthorized</c>, before reading the body.</summary>
    private async Task<bool> AuthorizeAsync(HttpContext context, string route)
    {
        if (await _registry.AuthorizeAsync(ClientAddress(context), () => _registry.Access.Allows(context.Request), context.RequestAborted).ConfigureAwait(false))
        {
            return true;
        }

        context.Response.Headers.WWWAuthenticate = RelayAccess.Scheme;
        await WriteErrorAsync(context, route, RelayErrors.Unauthorized, null).ConfigureAwait(false);
        return false;
    }

    private static JoinCommand? ParseJoin(JoinRequestDto dto)
    {
        ParticipantRole? role = dto.Role switch
        {
            RelayWire.Roles.Sender => ParticipantRole.Sender,
            RelayWire.Roles.Recipient => ParticipantRole.Recipient,
            _ => null,
        };
        if (role is null || (dto.Channel is not null && !ChannelNames.IsValid(dto.Channel)) || (dto.Curve is not null && !ChannelNames.IsCurve(dto.Curve))
            || (dto.Uuid is not null && !ChannelNames.IsUuid(dto.Uuid)))
        {
            return null;
        }

        return new JoinCommand(dto.Channel, dto.Curve, role.Value, dto.Uuid);
    }

    private static RelayError ParseJoinError(JoinRequestDto dto)
    {
        if (dto.Role is not (RelayWire.Roles.Sender or RelayWire.Roles.Recipient))
        {
            return RelayErrors.BadRequest("role must be \"sender\" or \"recipient\".");
        }

        return dto.Channel is not null && !ChannelNames.IsValid(dto.Channel)
            ? RelayErrors.BadRequest($"channel must be 1-{ChannelNames.MaxLength} characters of a-z and 0-9.")
            : RelayErrors.BadRequest($"curve must be one of {string.Join(", ", ChannelNames.Curves)}.");
    }

    private (ChannelCommand? Command, TimeSpan Wait, long? Since, RelayError Error) ParseChannel(ChannelRequestDto dto)
    {
        static (ChannelCommand?, TimeSpan, long?, RelayError) Fail(string message) => (null, default, null, RelayErrors.BadRequest(message));

        if (!ChannelNames.IsValid(dto.Channel))
        {
            return Fail($"channel must be 1-{ChannelNames.MaxLength} characters of a-z and 0-9.");
        }

        if (dto.Uuid is not { Length: > 0 and <= 128 })
        {
            return Fail("uuid is required.");
        }

        if (dto.Curve is not null && !ChannelNames.IsCurve(dto.Curve))
        {
            return Fail($"curve must be one of {string.Join(", ", ChannelNames.Curves)}.");
        }

        var actions = (dto.X is not null ? 1 : 0) + (dto.Y is not null || dto.HhK is not null ? 1 : 0) + (dto.HK is not null ? 1 : 0) + (dto.Close == true ? 1 : 0);
        if (actions > 1)
        {
            return Fail("Send one action per request: x, y with hh_k, h_k, or close.");
        }

        var wait = TimeSpan.Zero;
        if (dto.Wait is { } seconds)
        {
            if (!double.IsFinite(seconds) || seconds < 0)
            {
                return Fail("wait must be a number of seconds, 0 or more.");
            }

            // A longer wait than this relay holds is cut to its maximum: a client may ask up to 30 s on any relay.
            wait = seconds >= _options.MaxWait.TotalSeconds ? _options.MaxWait : TimeSpan.FromSeconds(seconds);
        }

        if (dto.Since is < 0)
        {
            return Fail("since must not be negative.");
        }

        var channel = dto.Channel!;
        var uuid = dto.Uuid;
        ChannelCommand command;
        if (dto.X is not null)
        {
            if (Canonical(dto.X) is not { } x)
            {
                return Fail($"x must be standard base64 of 1-{MaxValueBytes} bytes.");
            }

            command = new ChannelCommand(channel, uuid, ChannelAction.SetX, dto.Curve, x);
        }
        else if (dto.Y is not null || dto.HhK is not null)
        {
            if (dto.Y is null || dto.HhK is null)
            {
                return Fail("y and hh_k are posted together.");
            }

            if (Canonical(dto.Y) is not { } y || Canonical(dto.HhK) is not { } hhK)
            {
                return Fail($"y and hh_k must be standard base64 of 1-{MaxValueBytes} bytes.");
            }

            command = new ChannelCommand(channel, uuid, ChannelAction.SetY, null, y, hhK);
        }
        else if (dto.HK is not null)
        {
            if (Canonical(dto.HK) is not { } hK)
            {
                return Fail($"h_k must be standard base64 of 1-{MaxValueBytes} bytes.");
            }

            command = new ChannelCommand(channel, uuid, ChannelAction.SetHK, null, hK);
        }
        else
        {
            command = new ChannelCommand(channel, uuid, dto.Close == true ? ChannelAction.Close : ChannelAction.Read);
        }

        return (command, wait, dto.Since, default);
    }

    /// <summary>Decodes standard base64 within the size cap and re-encodes it, so the state holds one spelling.</summary>
    private static string? Canonical(string value)
    {
        if (value.Length == 0 || value.Length > ((MaxValueBytes + 2) / 3 * 4) + 8)
        {
            return null;
        }

        Span<byte> bytes = stackalloc byte[(value.Length / 4 * 3) + 3];
        return Convert.TryFromBase64String(value, bytes, out var written) && written is > 0 and <= MaxValueBytes
            ? Convert.ToBase64String(bytes[..written])
            : null;
    }

    private async Task<(T? Value, RelayError Error)> ReadAsync<T>(HttpContext context, JsonTypeInfo<T> typeInfo)
        where T : class
    {
        // Only application/json (parameters such as charset allowed): browsers cannot send it cross-origin without a
        // CORS preflight, so a web page cannot drive the relay with "simple" requests.
        if (!MediaTypeHeaderValue.TryParse(context.Request.ContentType, out var mediaType)
            || !mediaType.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase))
        {
            return (null, RelayErrors.BadRequest("Content-Type must be application/json."));
        }

        var limit = _options.MaxBodySize;
        if (context.Request.ContentLength > limit)
        {
            return (null, RelayErrors.BadRequest($"The body is larger than {limit} bytes."));
        }

        // Read at most limit + 1 bytes ourselves: the host's own body limit may be far larger.
        var buffer = ArrayPool<byte>.Shared.Rent(limit + 1);
        try
        {
            var length = 0;

            // A body that trickles in (or breaks off) is a malformed request, answered in the contract's shape,
            // on every host: not all servers enforce a minimum data rate as Kestrel does.
            using var timeout = new CancellationTokenSource(RelayTimings.BodyReadTimeout, _registry.TimeProvider);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, timeout.Token);
            try
            {
                while (length <= limit)
                {
                    var read = await context.Request.Body.ReadAsync(buffer.AsMemory(length, limit + 1 - length), deadline.Token).ConfigureAwait(false);
                    if (read == 0)
                    {
                        break;
                    }

                    length += read;
                }
            }
            catch (Exception ex) when (ex is BadHttpRequestException or IOException
                || (ex is OperationCanceledException && !context.RequestAborted.IsCancellationRequested))
            {
                return (null, RelayErrors.BadRequest("The body could not be read in full."));
            }

            if (length > limit)
            {
                return (null, RelayErrors.BadRequest($"The body is larger than {limit} bytes."));
            }

            try
            {
                return JsonSerializer.Deserialize(buffer.AsSpan(0, length), typeInfo) is { } value
                    ? (value, default)
                    : (null, RelayErrors.BadRequest("The body must be a JSON object."));
            }
            catch (JsonException)
            {
                return (null, RelayErrors.BadRequest("The body is not valid JSON of the expected shape (check property types)."));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private Task WriteStateAsync(HttpContext context, ChannelSnapshot state, string? uuid, ParticipantRole? role)
    {
        var dto = new StateDto
        {
            Channel = state.Channel,
            Uuid = uuid,
            Role = role switch { ParticipantRole.Sender => RelayWire.Roles.Sender, ParticipantRole.Recipient => RelayWire.Roles.Recipient, _ => null },
            Curve = state.Curve,
            Rev = state.Rev,
            X = state.X,
            Y = state.Y,
            HhK = state.HhK,
            HK = state.HK,
            Stapled = state.Stapled,
            Reconnecting = state.Reconnecting && !state.Closed,
            Closed = state.Closed,
            Ports = _registry.Ports,
            Lanes = _registry.Lanes,
            Ws = _options.WebSockets,
            Host = _options.AdvertisedHost,
        };
        return WriteAsync(context, StatusCodes.Status200OK, dto, RelayJsonContext.Default.StateDto);
    }

    private Task WriteErrorAsync(HttpContext context, string route, RelayError error, string? channel)
    {
        var code = error.Code.ToWire();
        _registry.Metrics.Refused(code, "http");

        // Only a channel name that passed validation is logged: never echo arbitrary input into logs.
        _registry.Log.RequestRefused(route, code, ChannelNames.IsValid(channel) ? channel : null);
        return WriteAsync(context, error.Code.ToHttpStatus(), new ErrorDto { Error = error.Message, Code = code }, RelayJsonContext.Default.ErrorDto);
    }

    private static async Task WriteAsync<T>(HttpContext context, int status, T value, JsonTypeInfo<T> typeInfo)
    {
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json; charset=utf-8";
        response.Headers.CacheControl = "no-store";
        var bytes = JsonSerializer.SerializeToUtf8Bytes(value, typeInfo);
        response.ContentLength = bytes.Length;
        await response.Body.WriteAsync(bytes, context.RequestAborted).ConfigureAwait(false);
    }

}

using System.Net.WebSockets;
using System.Text.Json;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Hosting;
using CrocNet.Relay.Net;
using CrocNet.Relay.Protocol;
using Microsoft.AspNetCore.Http;

namespace CrocNet.Relay.Staple;

/// <summary>
/// <c>GET {prefix}/staple</c>: accepts a leg as a WebSocket and runs it through the same <see cref="StapleSession"/>
/// and the same <see cref="StapleAdmission"/> budget as the TCP legs. Before upgrading it checks, in this order: that
/// WebSocket legs are on (else a plain 404), that the request is a WebSocket upgrade (else <c>400 bad_request</c>), the
/// relay password (<c>401 unauthorized</c>), a connection slot and a pre-hello slot for the client's address
/// (<c>503 capacity</c>); every refusal is the routes' error shape and nothing is attached. Then it accepts without a
/// subprotocol and without compression, with keep-alive frames every
/// <see cref="CrocRelayOptions.WebSocketKeepAliveInterval"/>, and returns only once the leg is closed.
/// </summary>
internal sealed class WebSocketLegEndpoint
{
    private readonly ChannelRegistry _registry;
    private readonly CrocRelayOptions _options;
    private readonly StapleAdmission _admission;
    private readonly StapleSession _session;
    private readonly CancellationToken _stopping;

    public WebSocketLegEndpoint(ChannelRegistry registry, StapleListenerService legs)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(legs);
        _registry = registry;
        _options = registry.Options;
        _admission = legs.Admission;
        _session = legs.Session;
        _stopping = legs.Stopping;
    }

    public async Task HandleAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!_options.WebSockets)
        {
            // As if the route did not exist: this relay takes legs over TCP only (its state says "ws": false).
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        if (!context.WebSockets.IsWebSocketRequest)
        {
            await RefuseAsync(context, RelayErrors.BadRequest("This is the relay's WebSocket endpoint for data connections: send a WebSocket upgrade request.")).ConfigureAwait(false);
            return;
        }

        if (!await _registry.AuthorizeAsync(_registry.Addresses.FromHttp(context), () => _registry.Access.Allows(context.Request), context.RequestAborted).ConfigureAwait(false))
        {
            context.Response.Headers.WWWAuthenticate = RelayAccess.Scheme;
            await RefuseAsync(context, RelayErrors.Unauthorized).ConfigureAwait(false);
            return;
        }

        if (_stopping.IsCancellationRequested)
        {
            await RefuseAsync(context, RelayErrors.Capacity).ConfigureAwait(false);
            return;
        }

        var address = _registry.Addresses.FromHttp(context);
        var key = _registry.LimitKey(address);
        if (!_admission.TryOpen(key))
        {
            await RefuseAsync(context, RelayErrors.Capacity).ConfigureAwait(false);
            return;
        }

        var pending = _admission.TryReservePending(key, out _, out var evicted);
        evicted?.Evict();
        if (pending is null)
        {
            _admission.Close(key);
            await RefuseAsync(context, RelayErrors.Capacity).ConfigureAwait(false);
            return;
        }

        void HelloDone()
        {
            _admission.ReleasePending(pending);
            pending.Dispose();
        }

        WebSocket socket;
        try
        {
            socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
            {
                KeepAliveInterval = _options.WebSocketKeepAliveInterval,
                DangerousEnableCompression = false,
            }).ConfigureAwait(false);
        }
        catch
        {
            HelloDone();
            _admission.Close(key);
            throw;
        }

        var connection = new WebSocketStapleConnection(socket, _registry.Lanes, _registry.TimeProvider, context.Abort, () => _admission.Close(key));
        await _session.RunAsync(connection, lane: null, label: -1, address, HelloDone, pending.Evicted, _stopping).ConfigureAwait(false);

        // A waiting leg's session returns once its peer's session pipes it: the WebSocket lives until the pipe closes it.
        try
        {
            await connection.Closed.WaitAsync(_stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            connection.Abort();
        }
    }

    private async Task RefuseAsync(HttpContext context, RelayError error)
    {
        var code = error.Code.ToWire();
        _registry.Metrics.Refused(code, "ws");
        _registry.Log.RequestRefused("staple", code, null);
        var response = context.Response;
        response.StatusCode = error.Code.ToHttpStatus();
        response.ContentType = "application/json; charset=utf-8";
        response.Headers.CacheControl = "no-store";
        var bytes = JsonSerializer.SerializeToUtf8Bytes(new ErrorDto { Error = error.Message, Code = code }, RelayJsonContext.Default.ErrorDto);
        response.ContentLength = bytes.Length;
        await response.Body.WriteAsync(bytes, context.RequestAborted).ConfigureAwait(false);
    }
}

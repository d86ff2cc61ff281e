using System.Collections.Concurrent;
using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CrocNet.Tests.Transport;

/// <summary>
/// A small stand-in for a relay's WebSocket legs (protocol 1.1) on Kestrel, 127.0.0.1: <c>GET {prefix}/staple</c>
/// upgraded, a text hello read, <c>ok</c> or <c>error &lt;code&gt;</c> answered, and the two legs of one channel's lane
/// piped message by message. It checks no uuid and keeps no channel: it is for the client's transport, not the relay.
/// </summary>
internal sealed class WebSocketLegHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<(string Channel, int Lane), Pair> _waiting = new();
    private int _maxMessage;

    private WebSocketLegHost(WebApplication app, string? password, Func<JsonElement, string> reply)
    {
        _app = app;
        Password = password;
        Reply = reply;
    }

    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>The relay password the upgrade must carry as <c>Authorization: Bearer</c>, or null for an open host.</summary>
    public string? Password { get; }

    /// <summary>What to answer a hello; <c>ok</c> pipes the leg.</summary>
    public Func<JsonElement, string> Reply { get; }

    /// <summary>Every hello received, as text.</summary>
    public ConcurrentQueue<string> Hellos { get; } = new();

    /// <summary>Every <c>Authorization</c> header received on an upgrade (empty when there was none).</summary>
    public ConcurrentQueue<string> Authorizations { get; } = new();

    /// <summary>Upgrade requests seen, accepted or not.</summary>
    public int Upgrades => Authorizations.Count;

    /// <summary>The largest binary message a client sent.</summary>
    public int MaxMessage => Volatile.Read(ref _maxMessage);

    public static async Task<WebSocketLegHost> StartAsync(
        CancellationToken cancellationToken, string pathBase = "/", X509Certificate2? certificate = null, string? password = null, Func<JsonElement, string>? reply = null)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.Protocols = HttpProtocols.Http1;
            if (certificate is not null)
            {
                listen.UseHttps(certificate);
            }
        }));
        builder.Services.AddRoutingCore();
        var app = builder.Build();
        var host = new WebSocketLegHost(app, password, reply ?? (_ => "ok"));
        app.UseWebSockets();
        app.UseRouting();
        app.MapGet(pathBase.TrimEnd('/') + "/staple", host.HandleAsync);
        await app.StartAsync(cancellationToken);
        var bound = new Uri(app.Urls.First());
        host.BaseAddress = new UriBuilder(bound.Scheme, bound.Host, bound.Port, pathBase.TrimEnd('/') + "/").Uri;
        return host;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext context)
    {
        Authorizations.Enqueue(context.Request.Headers.Authorization.ToString());
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }

        if (Password is not null && context.Request.Headers.Authorization.ToString() != "Bearer " + Password)
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            return;
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        var buffer = new byte[1024];
        var hello = await socket.ReceiveAsync(buffer, context.RequestAborted);
        var text = Encoding.UTF8.GetString(buffer, 0, hello.Count);
        Hellos.Enqueue(text);
        using var json = JsonDocument.Parse(text);
        var answer = Reply(json.RootElement);
        await socket.SendAsync(Encoding.ASCII.GetBytes(answer), WebSocketMessageType.Text, true, context.RequestAborted);
        if (answer != "ok")
        {
            await socket.CloseAsync(WebSocketCloseStatus.PolicyViolation, null, context.RequestAborted);
            return;
        }

        var key = (json.RootElement.GetProperty("channel").GetString()!, json.RootElement.GetProperty("lane").GetInt32());
        var pair = _waiting.GetOrAdd(key, _ => new Pair());
        WebSocket partner;
        if (pair.First.TrySetResult(socket))
        {
            partner = await pair.Second.Task.WaitAsync(context.RequestAborted);
        }
        else
        {
            _waiting.TryRemove(key, out _);
            pair.Second.SetResult(socket);
            partner = await pair.First.Task;
        }

        // Each leg's request carries its own socket's bytes to the partner, and ends (closing its connection) with them.
        await PipeAsync(socket, partner);
    }

    private async Task PipeAsync(WebSocket from, WebSocket to)
    {
        var buffer = new byte[256 * 1024];
        var message = 0;
        try
        {
            while (true)
            {
                var result = await from.ReceiveAsync(buffer.AsMemory(), CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    // A close ends the leg (answered at once) and its partner's.
                    if (from.State == WebSocketState.CloseReceived)
                    {
                        await from.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                    }

                    if (to.State == WebSocketState.Open)
                    {
                        await to.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                    }

                    return;
                }

                message += result.Count;
                if (result.EndOfMessage)
                {
                    InterlockedMax(ref _maxMessage, message);
                    message = 0;
                }

                await to.SendAsync(buffer.AsMemory(0, result.Count), WebSocketMessageType.Binary, result.EndOfMessage, CancellationToken.None);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or OperationCanceledException or InvalidOperationException or ObjectDisposedException)
        {
            to.Abort();
        }
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }

    private sealed class Pair
    {
        public TaskCompletionSource<WebSocket> First { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource<WebSocket> Second { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

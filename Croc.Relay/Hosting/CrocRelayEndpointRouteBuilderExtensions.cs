using CrocNet.Relay.Channels;
using CrocNet.Relay.Hosting;
using CrocNet.Relay.Protocol;
using CrocNet.Relay.Staple;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the Croc relay's HTTP routes.</summary>
public static class CrocRelayEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps <c>POST {prefix}/join</c>, <c>POST {prefix}/channel</c> and <c>GET {prefix}/staple</c> (data connections as
    /// WebSockets, when <c>CrocRelayOptions.WebSockets</c> is on). Requires <c>services.AddCrocRelay()</c>; needs no
    /// <c>app.UseWebSockets()</c> (the WebSocket route brings its own).
    /// </summary>
    /// <param name="endpoints">The application's endpoint route builder.</param>
    /// <param name="prefix">The base path of the relay, e.g. <c>/croc</c>; empty for the root.</param>
    /// <returns>The route group, to add authorization, rate limiting or host filters to the relay's routes.</returns>
    public static IEndpointConventionBuilder MapCrocRelay(this IEndpointRouteBuilder endpoints, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(prefix);
        // Check the registration now, but resolve lazily: options are validated when the host starts, not here.
        if (endpoints.ServiceProvider.GetService<IServiceProviderIsService>() is { } isService && !isService.IsService(typeof(RelayHttpHandler)))
        {
            throw new InvalidOperationException("MapCrocRelay needs the relay's services: call builder.Services.AddCrocRelay() first.");
        }

        RelayHttpHandler? handler = null;
        RelayHttpHandler Handler(HttpContext context) => handler ??= context.RequestServices.GetRequiredService<RelayHttpHandler>();
        WebSocketLegEndpoint? legs = null;
        WebSocketLegEndpoint Legs(HttpContext context) => legs ??= new WebSocketLegEndpoint(
            context.RequestServices.GetRequiredService<ChannelRegistry>(),
            context.RequestServices.GetRequiredService<StapleListenerService>());

        // The WebSocket route runs its own WebSocket middleware, so the host's pipeline needs none (one the host adds
        // anyway does no harm: this one only replaces the not yet accepted upgrade). Its options carry nothing the
        // relay uses: the keep-alive and the refusal of compression are set per accepted leg.
        var staple = endpoints.CreateApplicationBuilder();
        staple.UseWebSockets(new WebSocketOptions());
        staple.Run(context => Legs(context).HandleAsync(context));

        var group = endpoints.MapGroup(prefix);
        group.MapPost(RelayWire.Routes.Join, context => Handler(context).JoinAsync(context)).WithDisplayName("Croc relay: join");
        group.MapPost(RelayWire.Routes.Channel, context => Handler(context).ChannelAsync(context)).WithDisplayName("Croc relay: channel");

        // GET for HTTP/1.1 upgrades, CONNECT for WebSockets over HTTP/2 (RFC 8441). A leg lives as long as its
        // transfer: a host's default request timeout must not cut it.
        group.MapMethods(RelayWire.Routes.Staple, [HttpMethods.Get, HttpMethods.Connect], staple.Build())
            .WithDisplayName("Croc relay: staple (WebSocket)")
            .DisableRequestTimeout();
        return group;
    }
}

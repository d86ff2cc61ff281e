using CrocNet.Relay.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using CrocNet.Relay.Protocol;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the Croc relay's HTTP routes.</summary>
public static class CrocRelayEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps <c>POST {prefix}/join</c> and <c>POST {prefix}/channel</c>. Requires <c>services.AddCrocRelay()</c>.
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

        var group = endpoints.MapGroup(prefix);
        group.MapPost(RelayWire.Routes.Join, context => Handler(context).JoinAsync(context)).WithDisplayName("Croc relay: join");
        group.MapPost(RelayWire.Routes.Channel, context => Handler(context).ChannelAsync(context)).WithDisplayName("Croc relay: channel");
        return group;
    }
}

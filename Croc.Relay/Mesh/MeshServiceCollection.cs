using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace CrocNet.Relay.Mesh;

/// <summary>Registers the mesh (for a shared store's package): the router the legs ask, and the link listener.</summary>
internal static class MeshServiceCollection
{
    /// <summary>
    /// Adds the mesh with <paramref name="settings"/> over the directory <typeparamref name="TDirectory"/>; call after
    /// <c>AddCrocRelay</c> (the listener starts after the relay's legs, and stops before them).
    /// </summary>
    public static IServiceCollection AddRelayMesh<[System.Diagnostics.CodeAnalysis.DynamicallyAccessedMembers(System.Diagnostics.CodeAnalysis.DynamicallyAccessedMemberTypes.PublicConstructors)] TDirectory>(this IServiceCollection services, Func<IServiceProvider, MeshSettings> settings)
        where TDirectory : class, IMeshDirectory
    {
        services.RemoveAll<MeshSettings>();
        services.AddSingleton(settings);
        services.RemoveAll<IMeshDirectory>();
        services.AddSingleton<IMeshDirectory, TDirectory>();
        services.TryAddSingleton<MeshRouter>();
        services.TryAddSingleton<MeshListenerService>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, MeshListenerService>(sp => sp.GetRequiredService<MeshListenerService>()));
        return services;
    }
}

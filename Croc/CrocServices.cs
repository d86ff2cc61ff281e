using System.Security.Cryptography.X509Certificates;
using CrocNet.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrocNet;

/// <summary>
/// The services an instance runs with. They come from the builder or from DI and never live in the
/// bindable <see cref="CrocOptions"/>.
/// </summary>
internal sealed class CrocServices
{
    public ILoggerFactory? LoggerFactory { get; set; }

    public TimeProvider? TimeProvider { get; set; }

    public HttpMessageHandler? HttpHandler { get; set; }

    /// <summary>A relay certificate to accept besides the system's trust (a self-signed test relay, a private CA).</summary>
    public X509Certificate2? TrustedRelayCertificate { get; set; }

    /// <summary>How data connections are opened (TCP today); tests put hostile middleboxes here.</summary>
    public IStapleTransport? Transport { get; set; }

    public ILoggerFactory LoggerFactoryOrDefault => LoggerFactory ?? NullLoggerFactory.Instance;

    public TimeProvider TimeProviderOrDefault => TimeProvider ?? TimeProvider.System;

    public CrocServices Clone() => (CrocServices)MemberwiseClone();
}

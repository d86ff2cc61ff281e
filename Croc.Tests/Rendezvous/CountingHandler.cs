namespace CrocNet.Tests.Rendezvous;

/// <summary>A real HTTP handler that counts the requests a client makes (to prove that some path makes none).</summary>
internal sealed class CountingHandler(Action onSend) : DelegatingHandler(new SocketsHttpHandler())
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        onSend();
        return base.SendAsync(request, cancellationToken);
    }
}

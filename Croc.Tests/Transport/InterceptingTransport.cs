using CrocNet.Transport;

namespace CrocNet.Tests.Transport;

/// <summary>A test transport: the real TCP one, with each accepted data connection wrapped (a hostile middlebox, a slow link).</summary>
internal sealed class InterceptingTransport(Func<Stream, int, Stream> wrap) : IStapleTransport
{
    public async ValueTask<Stream> ConnectAsync(StapleTarget target, int lane, StapleTicket ticket, CancellationToken cancellationToken) =>
        wrap(await TcpStapleTransport.Instance.ConnectAsync(target, lane, ticket, cancellationToken), lane);
}

using System.Net.Sockets;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Staple;

namespace CrocNet.Relay.Mesh;

/// <summary>
/// A leg forwarded by another node, as the owner runs it: the link socket after its handshake and forwarded hello. Its
/// hello is the forwarded one (already read), it is authorized (the forwarding node checked the relay password), and
/// it reports the client's own transport in metrics. Everything else is a TCP leg's (answers, watching, closing), so
/// a break of the link is a break of the leg.
/// </summary>
internal sealed class MeshStapleConnection : StapleConnectionBase
{
    private readonly SocketStapleConnection _socket;
    private readonly Hello _hello;

    public MeshStapleConnection(Socket link, Hello hello, string transportName, TimeProvider timeProvider, Action? onClosed = null)
        : base(onClosed)
    {
        _socket = new SocketStapleConnection(link, timeProvider);
        _hello = hello;
        TransportName = transportName;
    }

    public override IStapleTransport Transport => _socket.Transport;

    public override string TransportName { get; }

    public override bool Authorized => true;

    public override ValueTask<(Hello? Hello, RelayError Error)> ReadHelloAsync(CancellationToken cancellationToken)
        => ValueTask.FromResult<(Hello?, RelayError)>((_hello, default));

    public override ValueTask SendLineAsync(string line, CancellationToken cancellationToken) => _socket.SendLineAsync(line, cancellationToken);

    public override async ValueTask RefuseAsync(string line, CancellationToken cancellationToken)
    {
        try
        {
            await _socket.RefuseAsync(line, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            CloseGracefully();
        }
    }

    public override async ValueTask<bool> ClientLeftAsync(CancellationToken cancellationToken)
    {
        var left = await _socket.ClientLeftAsync(cancellationToken).ConfigureAwait(false);
        if (_socket.FailedWhileWaiting)
        {
            MarkFailedWhileWaiting();
        }

        return left;
    }

    protected override void CloseTransport(bool graceful)
    {
        if (graceful)
        {
            _socket.CloseGracefully();
        }
        else
        {
            _socket.Abort();
        }
    }
}

using System.IO.Pipelines;
using System.Text;
using CrocNet.Relay.Channels;

namespace CrocNet.Relay.Staple;

/// <summary>
/// A leg over any duplex pipe: the adapter for transports other than the relay's own sockets (a WebSocket, a forwarded
/// link), and for tests that run the staple session in memory. Closing completes both directions; a pipe has no reset,
/// so an abort completes them with an error.
/// </summary>
internal sealed class PipeStapleConnection : StapleConnectionBase
{
    private readonly DuplexPipeTransport _transport;

    public PipeStapleConnection(IDuplexPipe pipe, Action? onClosed = null)
        : base(onClosed)
    {
        Pipe = pipe;
        _transport = new DuplexPipeTransport(pipe);
    }

    public IDuplexPipe Pipe { get; }

    public override IStapleTransport Transport => _transport;

    public override string TransportName => "pipe";

    public override ValueTask<(Hello? Hello, RelayError Error)> ReadHelloAsync(CancellationToken cancellationToken)
        => HelloReader.ReadAsync(Pipe.Input, cancellationToken);

    public override async ValueTask SendLineAsync(string line, CancellationToken cancellationToken)
        => await _transport.WriteAsync(Encoding.ASCII.GetBytes(line), cancellationToken).ConfigureAwait(false);

    public override async ValueTask RefuseAsync(string line, CancellationToken cancellationToken)
    {
        try
        {
            await _transport.WriteAsync(Encoding.ASCII.GetBytes(line), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or OperationCanceledException)
        {
            // The client went away; it has had its answer, or cannot take one.
        }
        finally
        {
            CloseGracefully();
        }
    }

    public override async ValueTask<bool> ClientLeftAsync(CancellationToken cancellationToken)
    {
        var result = await Pipe.Input.ReadAsync(cancellationToken).ConfigureAwait(false);
        var left = result.Buffer.IsEmpty && result.IsCompleted;

        // Look, do not take: early payload stays for the pipe.
        Pipe.Input.AdvanceTo(result.Buffer.Start);
        return left;
    }

    protected override void CloseTransport(bool graceful)
    {
        var error = graceful ? null : new IOException("The relay cut the connection.");
        Pipe.Output.Complete(error);
        Pipe.Input.Complete(error);
    }
}

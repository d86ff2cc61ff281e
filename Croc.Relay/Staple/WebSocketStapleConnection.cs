using System.Net.WebSockets;
using System.Text;
using CrocNet.Relay.Channels;
using CrocNet.Relay.Protocol;

namespace CrocNet.Relay.Staple;

/// <summary>
/// A leg over an accepted WebSocket: the hello is the first (text) message, the answer a text message (<c>ok</c> or
/// <c>error &lt;code&gt;</c>), then binary messages carry the bytes. Its upgrade request was already checked for the
/// relay password, so <see cref="Authorized"/> is true. A close from the client is the end of its stream (like a TCP
/// FIN), an abort cuts the connection (like a reset).
/// </summary>
internal sealed class WebSocketStapleConnection : StapleConnectionBase
{
    private readonly WebSocket _socket;
    private readonly WebSocketTransport _transport;
    private readonly int _lanes;
    private readonly TimeProvider _timeProvider;
    private readonly Action? _abortConnection;
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly byte[] _hello = new byte[WebSocketHello.MaxLength + 1];

    // A hello receive the timeout gave up on: it may still complete, and a refusal's drain picks it up.
    private Task<ValueWebSocketReceiveResult>? _helloReceive;

    /// <param name="socket">The accepted WebSocket.</param>
    /// <param name="lanes">The relay's lanes: the hello's lane must be below this.</param>
    /// <param name="timeProvider">The relay's clock (the refusal's linger).</param>
    /// <param name="abortConnection">Cuts the underlying connection at once (the host's <c>HttpContext.Abort</c>).</param>
    /// <param name="onClosed">Runs once when the leg closes (frees its connection slot).</param>
    public WebSocketStapleConnection(WebSocket socket, int lanes, TimeProvider timeProvider, Action? abortConnection = null, Action? onClosed = null)
        : base(onClosed)
    {
        _socket = socket;
        _transport = new WebSocketTransport(socket);
        _lanes = lanes;
        _timeProvider = timeProvider;
        _abortConnection = abortConnection;
    }

    public override IStapleTransport Transport => _transport;

    public override string TransportName => "ws";

    public override bool Authorized => true;

    /// <summary>Completes once the leg is closed and its WebSocket released; the endpoint returns only then.</summary>
    public Task Closed => _closed.Task;

    public override async ValueTask<(Hello? Hello, RelayError Error)> ReadHelloAsync(CancellationToken cancellationToken)
    {
        var length = 0;
        while (true)
        {
            // Not cancellable itself (cancelling a WebSocket receive aborts the WebSocket): the timeout only stops
            // waiting for it, so the refusal can still be sent.
            _helloReceive ??= WebSocketTransport.ReceiveUncancellable(_socket, _hello.AsMemory(length));
            var result = await _helloReceive.WaitAsync(cancellationToken).ConfigureAwait(false);
            _helloReceive = null;
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return (null, WebSocketHello.Ended);
            }

            if (result.MessageType != WebSocketMessageType.Text)
            {
                return (null, WebSocketHello.NotText);
            }

            length += result.Count;
            if (length > WebSocketHello.MaxLength)
            {
                return (null, WebSocketHello.TooLong);
            }

            if (result.EndOfMessage)
            {
                return WebSocketHello.Parse(_hello.AsSpan(0, length), _lanes);
            }
        }
    }

    public override async ValueTask SendLineAsync(string line, CancellationToken cancellationToken)
        => await _transport.SendTextAsync(AsMessage(line), cancellationToken).ConfigureAwait(false);

    public override async ValueTask RefuseAsync(string line, CancellationToken cancellationToken)
    {
        using var linger = new CancellationTokenSource(RelayTimings.RefusalLinger, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(linger.Token, cancellationToken);
        try
        {
            await _transport.SendTextAsync(AsMessage(line), linked.Token).ConfigureAwait(false);
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await _socket.CloseOutputAsync(WebSocketCloseStatus.PolicyViolation, null, linked.Token).ConfigureAwait(false);
            }

            // Read (and drop) what the client still sends until its close, a little at most, so the close handshake
            // completes and the client reads the answer rather than a cut connection.
            var sink = new byte[4096];
            for (var drained = 0; drained < 64 * 1024 && _socket.State == WebSocketState.CloseSent;)
            {
                var receive = _helloReceive ?? WebSocketTransport.ReceiveUncancellable(_socket, sink);
                _helloReceive = null;
                var result = await receive.WaitAsync(linked.Token).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }

                drained += result.Count;
            }
        }
        catch (Exception e) when (e is IOException or WebSocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            // The client went away or would not stop talking; it has had its answer.
        }
        finally
        {
            CloseGracefully();
        }
    }

    /// <summary>A zero-byte receive: sees a close (or a failure) without consuming payload sent early.</summary>
    public override async ValueTask<bool> ClientLeftAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _transport.PeekAsync(cancellationToken).ConfigureAwait(false) != WebSocketTransport.Readiness.Data;
        }
        catch (IOException)
        {
            return true;
        }
    }

    protected override void CloseTransport(bool graceful)
    {
        if (graceful)
        {
            _ = CloseGracefullyAsync();
            return;
        }

        _socket.Abort();
        _abortConnection?.Invoke();
        _socket.Dispose();
        _closed.TrySetResult();
    }

    private async Task CloseGracefullyAsync()
    {
        try
        {
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var linger = new CancellationTokenSource(RelayTimings.RefusalLinger, _timeProvider);
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, linger.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or WebSocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            // Gone already; it is closed either way.
        }
        finally
        {
            _socket.Dispose();
            _closed.TrySetResult();
        }
    }

    /// <summary>An answer line as its message: <c>ok\n</c> is sent as <c>ok</c>.</summary>
    private static byte[] AsMessage(string line) => Encoding.ASCII.GetBytes(line.TrimEnd('\n'));
}

/// <summary>
/// A WebSocket as a leg's byte stream: binary messages in, binary messages of at most
/// <see cref="MaxMessageSize"/> bytes out, message boundaries meaningless. A zero-byte receive waits for data without
/// a buffer; a close from the client is the end of the stream; sending a close is the half-close. A text message after
/// the hello, or a failed WebSocket, is an <see cref="IOException"/>.
/// </summary>
internal sealed class WebSocketTransport : IStapleTransport
{
    /// <summary>The largest binary message the relay sends.</summary>
    public const int MaxMessageSize = 64 * 1024;

    private readonly WebSocket _socket;
    private readonly Lock _gate = new();

    // One zero-byte receive at a time, not cancellable (cancelling a WebSocket receive aborts it): a waiter that stops
    // waiting leaves it to the next one.
    private Task<ValueWebSocketReceiveResult>? _peek;
    private bool _payloadPending;
    private bool _ended;
    private bool _text;

    public WebSocketTransport(WebSocket socket) => _socket = socket;

    /// <summary>What a peek found.</summary>
    internal enum Readiness
    {
        /// <summary>Payload of a binary message is waiting.</summary>
        Data,

        /// <summary>The client closed (its end of stream).</summary>
        End,

        /// <summary>The client sent a text message where only binary ones belong.</summary>
        Text,
    }

    /// <summary>Waits until payload, the end, or a text message is next, consuming no payload.</summary>
    internal async ValueTask<Readiness> PeekAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Task<ValueWebSocketReceiveResult> peek;
            lock (_gate)
            {
                if (_ended)
                {
                    return Readiness.End;
                }

                if (_text)
                {
                    return Readiness.Text;
                }

                if (_payloadPending)
                {
                    return Readiness.Data;
                }

                peek = _peek ??= ReceiveUncancellable(_socket, Memory<byte>.Empty);
            }

            var result = await peek.WaitAsync(cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                // Whoever sees the peek first records it; an empty binary frame leaves nothing pending: peek again.
                if (ReferenceEquals(_peek, peek))
                {
                    _peek = null;
                    Record(result);
                }
            }
        }
    }

    public async ValueTask WaitReadableAsync(CancellationToken cancellationToken)
    {
        if (await PeekAsync(cancellationToken).ConfigureAwait(false) == Readiness.Text)
        {
            throw TextMessage();
        }
    }

    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            switch (await PeekAsync(cancellationToken).ConfigureAwait(false))
            {
                case Readiness.End:
                    return 0;
                case Readiness.Text:
                    throw TextMessage();
            }

            ValueWebSocketReceiveResult result;
            try
            {
                result = await _socket.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (WebSocketException e)
            {
                throw Failed(e);
            }

            lock (_gate)
            {
                Record(result);
            }

            if (result.MessageType == WebSocketMessageType.Close)
            {
                return 0;
            }

            if (result.MessageType == WebSocketMessageType.Text)
            {
                throw TextMessage();
            }

            if (result.Count > 0)
            {
                return result.Count;
            }
        }
    }

    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        try
        {
            while (!data.IsEmpty)
            {
                var chunk = data.Length > MaxMessageSize ? data[..MaxMessageSize] : data;
                await _socket.SendAsync(chunk, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken).ConfigureAwait(false);
                data = data[chunk.Length..];
            }
        }
        catch (WebSocketException e)
        {
            throw Failed(e);
        }
    }

    public async ValueTask ShutdownSendAsync()
    {
        try
        {
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (WebSocketException e)
        {
            throw Failed(e);
        }
    }

    /// <summary>Sends one text message (the hello's answer).</summary>
    internal async ValueTask SendTextAsync(ReadOnlyMemory<byte> text, CancellationToken cancellationToken)
    {
        try
        {
            await _socket.SendAsync(text, WebSocketMessageType.Text, endOfMessage: true, cancellationToken).ConfigureAwait(false);
        }
        catch (WebSocketException e)
        {
            throw Failed(e);
        }
    }

    /// <summary>
    /// A receive that nothing cancels (a cancelled WebSocket receive aborts the WebSocket), with its failure as an
    /// <see cref="IOException"/> and always observed, so one that nobody awaits any more is not an unobserved fault.
    /// </summary>
    internal static Task<ValueWebSocketReceiveResult> ReceiveUncancellable(WebSocket socket, Memory<byte> buffer)
    {
        var task = ReceiveAsync(socket, buffer);
        _ = task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return task;

        static async Task<ValueWebSocketReceiveResult> ReceiveAsync(WebSocket socket, Memory<byte> buffer)
        {
            try
            {
                return await socket.ReceiveAsync(buffer, CancellationToken.None).ConfigureAwait(false);
            }
            catch (WebSocketException e)
            {
                throw Failed(e);
            }
        }
    }

    private void Record(ValueWebSocketReceiveResult result)
    {
        switch (result.MessageType)
        {
            case WebSocketMessageType.Close:
                _ended = true;
                _payloadPending = false;
                break;
            case WebSocketMessageType.Text:
                _text = true;
                break;
            default:
                _payloadPending = !result.EndOfMessage;
                break;
        }
    }

    private static IOException Failed(WebSocketException e) => new("The WebSocket leg failed.", e);

    private static IOException TextMessage() => new("A WebSocket leg carries its bytes in binary messages; it sent a text message.");
}

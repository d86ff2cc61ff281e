using CrocNet.Relay.Channels;

namespace CrocNet.Relay.Hosting;

/// <summary>The HTTP status of each refusal (the relay core knows only the codes).</summary>
internal static class RelayHttpStatus
{
    public static int ToHttpStatus(this RelayErrorCode code) => code switch
    {
        RelayErrorCode.BadRequest => 400,
        RelayErrorCode.Unauthorized => 401,
        RelayErrorCode.IpLimit or RelayErrorCode.BadUuid => 403,
        RelayErrorCode.NoChannel => 404,
        RelayErrorCode.Occupied or RelayErrorCode.AlreadySet or RelayErrorCode.NotReady or RelayErrorCode.Duplicate or RelayErrorCode.ReconnectLimit => 409,
        RelayErrorCode.Closed => 410,
        RelayErrorCode.Capacity => 503,
        RelayErrorCode.Timeout => 408,
        _ => 500,
    };
}

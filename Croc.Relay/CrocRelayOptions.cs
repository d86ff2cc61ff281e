namespace CrocNet.Relay;

/// <summary>Settings of the relay.</summary>
public sealed class CrocRelayOptions
{
}

namespace CrocNet.Relay.Redis; internal static class Placeholder;

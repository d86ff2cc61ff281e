// CONTRACT STUB — replaced by the real implementation when the PAKE work merges.
namespace CrocNet.Pake;

internal static class CrocPake
{
    public static Spake2 Start(Spake2Suite suite, Spake2Role role, string secret, string channel) => throw new NotImplementedException();
}

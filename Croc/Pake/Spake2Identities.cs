namespace CrocNet.Pake;

/// <summary>The two identities bound into the transcript (RFC 9382 section 3.3), encoded as UTF-8.</summary>
/// <param name="A">The identity of party A, the sender.</param>
/// <param name="B">The identity of party B, the recipient.</param>
internal sealed record Spake2Identities(string A, string B);

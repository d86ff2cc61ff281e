using CrocNet.Files;
using CrocNet.Transfer;

namespace CrocNet.Tests.Transfer;

public class ControlMessagesTests
{
    [Test]
    public void FromAbort_PeerText_IsEscapedButOtherwiseIntact()
    {
        var abort = new AbortMessage { Code = "file_exists", Message = "\"a.txt\" already exists\u001b[2J\u0007" };

        var ex = ControlMessages.FromAbort(abort, peerIsRecipient: true);

        Assert.That(ex.Code, Is.EqualTo(CrocErrorCode.TransferRejected));
        Assert.That(ex.Message, Does.Contain("\"a.txt\" already exists\\u001B[2J\\u0007"));
        Assert.That(ex.Message.Any(char.IsControl), Is.False);
    }

    [TestCase(CrocErrorCode.DataTampered, "data_tampered", CrocErrorCode.DataTampered)]
    [TestCase(CrocErrorCode.HashMismatch, "hash_mismatch", CrocErrorCode.HashMismatch)]
    [TestCase(CrocErrorCode.UnsafePath, "unsafe_path", CrocErrorCode.TransferRejected)]
    [TestCase(CrocErrorCode.SourceChanged, "source_changed", CrocErrorCode.SourceChanged)]
    [TestCase(CrocErrorCode.WriteFailed, "write_failed", CrocErrorCode.ConnectionLost)]
    public void ToWireAndBack_MapsCodes(CrocErrorCode ours, string wire, CrocErrorCode theirs)
    {
        Assert.That(ControlMessages.ToWire(ours), Is.EqualTo(wire));
        Assert.That(ControlMessages.FromAbort(new AbortMessage { Code = wire, Message = "x" }, peerIsRecipient: false).Code, Is.EqualTo(theirs));
    }
}

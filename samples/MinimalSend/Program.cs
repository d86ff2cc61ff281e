// Sends one file or folder through a relay and prints the code for the recipient.
// Usage: dotnet run --project samples/MinimalSend -- <path> [relay-url]
using CrocNet;

if (args.Length == 0)
{
    Console.Error.WriteLine("usage: MinimalSend <file-or-folder> [relay-url, default http://127.0.0.1:9009]");
    return 1;
}

var relay = args.Length > 1 ? args[1] : "http://127.0.0.1:9009";
var croc = Croc.New(o => o.WithCurve("p256").WithRelay(relay));

await using var send = await croc.StartSendAsync(SendContent.FromPath(args[0]));
Console.WriteLine($"Code: {send.Code}");
Console.WriteLine($"On the other computer: croc receive --relay {relay} {send.Code}");

var result = await send.Completion;
Console.WriteLine($"Sent {result.Files.Count} file(s), {result.TotalBytes} bytes in {result.Duration.TotalSeconds:0.0} s.");
return 0;

// A generic-host worker that receives Croc transfers: the relay, curve, output folder and overwrite
// policy come from the "Croc" section; codes come from "Receiver:Code" (or "Receiver:Codes") and from
// an in-process queue that other services of the app can write to.
using System.Threading.Channels;
using WorkerService;

// appsettings.json is read from the app's folder, wherever it is started from.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Services.AddCroc(builder.Configuration.GetSection("Croc"));
builder.Services.Configure<ReceiverOptions>(builder.Configuration.GetSection("Receiver"));
builder.Services.AddSingleton(Channel.CreateUnbounded<string>());
builder.Services.AddHostedService<ReceiveWorker>();

await builder.Build().RunAsync();

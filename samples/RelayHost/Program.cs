// An existing ASP.NET Core app that also hosts a Croc relay: the relay is the two marked lines.
// Run: dotnet run --project samples/RelayHost   (HTTP on :9009, relay under /croc, TCP stapling on 9010-9013)
// Clients then use the relay URL http://<this host>:9009/croc
var builder = WebApplication.CreateBuilder(args);

builder.Services.AddCrocRelay(builder.Configuration.GetSection("CrocRelay")) // relay line 1 of 2
    .AddHealthChecks();                                                        // optional: a real relay health check

var app = builder.Build();

app.MapGet("/", () => "RelayHost: a web app with a Croc relay under /croc.");
app.MapHealthChecks("/health"); // unhealthy when the relay's listeners or its channel store fail

app.MapCrocRelay("/croc"); // relay line 2 of 2 (returns the route group: add .RequireRateLimiting(...) etc. here)

app.Run();

// An existing ASP.NET Core app that also hosts a Croc relay: the relay is the two marked lines.
// Run: dotnet run --project samples/RelayHost   (HTTP on :9009, relay under /croc, TCP stapling on 9010-9013)
// Clients then use the relay URL http://<this host>:9009/croc
// As one of several nodes: set CrocRelayRedis:Configuration (the Redis to share) and CrocRelayRedis:MeshSecret (the same
// on every node, e.g. from the environment: CrocRelayRedis__MeshSecret=...), plus the mesh listener's address and port.
var builder = WebApplication.CreateBuilder(args);

var relay = builder.Services.AddCrocRelay(builder.Configuration.GetSection("CrocRelay")) // relay line 1 of 2
    .AddHealthChecks();                                                                  // optional: a real relay health check

// Optional: share channels with other nodes through Redis (empty Configuration: one node, channels in memory).
var redis = builder.Configuration.GetSection("CrocRelayRedis");
if (redis["Configuration"] is { Length: > 0 } connection)
{
    relay.AddRedisChannelStore(connection, options => redis.Bind(options));
}

var app = builder.Build();

app.MapGet("/", () => "RelayHost: a web app with a Croc relay under /croc.");
app.MapHealthChecks("/health"); // unhealthy when the relay's listeners or its channel store fail

app.MapCrocRelay("/croc"); // relay line 2 of 2 (returns the route group: add .RequireRateLimiting(...) etc. here)

app.Run();

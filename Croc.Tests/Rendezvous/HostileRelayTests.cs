using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace CrocNet.Tests.Rendezvous;

/// <summary>A scripted relay that answers with whatever a test wants, to drive the client's error paths.</summary>
public class HostileRelayTests
{
    private static async Task<(WebApplication App, Uri Address)> StartAsync(RequestDelegate handler)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.Run(handler);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return (app, new Uri(address));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task SendAsync_RelayErrorWithTerminalEscapes_MessageIsEscapedAndCodeSanitised(CancellationToken cancellationToken)
    {
        var (app, address) = await StartAsync(async context =>
        {
            context.Response.StatusCode = 403;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync("{\"error\":\"\\u001b]0;owned\\u0007 go away\",\"code\":\"evil\\u001b[2J\"}");
        });
        await using var _ = app;
        var source = Directory.CreateTempSubdirectory("croc-hostile-relay-").FullName;
        File.WriteAllText(Path.Join(source, "f.txt"), "x");

        var ex = Assert.ThrowsAsync<CrocRelayException>(() => Croc.New(o => o.WithRelay(address)).SendAsync(SendContent.FromPath(Path.Join(source, "f.txt")), new SendOptions { Code = Croc.GenerateCode() }, cancellationToken));

        Assert.That(ex!.Code, Is.EqualTo(CrocErrorCode.RelayRefused));
        Assert.That(ex.Message.Any(char.IsControl), Is.False, ex.Message);
        Assert.That(ex.Message, Does.Contain("go away"));
        Assert.That(ex.RelayCode, Is.EqualTo("http_403"));
        Directory.Delete(source, true);
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task SendAsync_RelayReplyLargerThan64KiB_ProtocolError(CancellationToken cancellationToken)
    {
        var (app, address) = await StartAsync(async context =>
        {
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync("{\"channel\":\"" + new string('a', 200_000) + "\"}");
        });
        await using var _ = app;
        var source = Directory.CreateTempSubdirectory("croc-hostile-relay-").FullName;
        File.WriteAllText(Path.Join(source, "f.txt"), "x");

        Assert.ThrowsAsync<CrocProtocolException>(() => Croc.New(o => o.WithRelay(address)).SendAsync(SendContent.FromPath(Path.Join(source, "f.txt")), new SendOptions { Code = Croc.GenerateCode() }, cancellationToken));
        Directory.Delete(source, true);
    }

    [TestCase("no_channel", "no_channel")]
    [TestCase("ip_limit", "ip_limit")]
    [TestCase("Bad Code", null)]
    [TestCase("x\u001b", null)]
    public void SafeCode_OnlySnakeCase(string code, string? expected)
    {
        Assert.That(CrocNet.Protocol.CrocWire.SafeCode(code), Is.EqualTo(expected));
    }
}

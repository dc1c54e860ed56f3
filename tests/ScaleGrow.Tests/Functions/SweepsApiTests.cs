using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask.Client;
using ScaleGrow.Functions;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Sweeps;
using ScaleGrow.Tests.Infrastructure;
using ScaleGrow.Tests.Orchestration;

namespace ScaleGrow.Tests.Functions;

/// <summary>The sweeps HTTP API called as the host calls it: a real request, the in-process engine's client, blobs in
/// Azurite.</summary>
[Collection(AzuriteCollection.Name)]
public class SweepsApiTests(AzuriteFixture azurite)
{
    private static HttpRequest Request(string method, string path, string? body = null)
    {
        var r = new DefaultHttpContext().Request;
        r.Method = method;
        r.Scheme = "https";
        r.Host = new HostString("scalegrow.example");
        r.Path = path;
        if (body is not null)
        {
            var bytes = Encoding.UTF8.GetBytes(body);
            r.Body = new MemoryStream(bytes);
            r.ContentLength = bytes.Length;
        }
        return r;
    }

    private static int Status(IActionResult result) => result is ObjectResult o ? o.StatusCode ?? 200 : ((StatusCodeResult)result).StatusCode;

    private static JsonElement Body(IActionResult result) =>
        JsonSerializer.SerializeToElement(((ObjectResult)result).Value, JsonSerializerOptions.Web);

    [Fact]
    public async Task ASweepIsStartedWatchedAndDeletedOverHttpAndABadOneIsA400NamingTheAxis()
    {
        var store = new BlobArtifactStore(azurite.ConnectionString);
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store), sweeps: new SweepSteps(store));
        var api = new SweepsApi(store, DataAccessPolicy.FromSetting(null));
        var client = engine.Client;

        var bad = await api.Start(Request("POST", "/api/sweeps",
            OrchestrationTestKit.TinySweep(""" "growth.depthPlacment": ["greedy"] """)), client);
        Assert.Equal(400, Status(bad));
        Assert.Contains("axis 'growth.depthPlacment'", Body(bad).GetProperty("error").GetString());

        var started = await api.Start(Request("POST", "/api/sweeps",
            OrchestrationTestKit.TinySweep(""" "seed": [1, 2] """, maxEpochs: 1)), client);
        Assert.Equal(202, Status(started));
        string id = Body(started).GetProperty("sweepId").GetString()!;
        Assert.Equal(409, Status(await Conflict(api, client, id))); // the same id again

        var deadline = DateTime.UtcNow.AddMinutes(2);
        JsonElement view;
        while (true)
        {
            var got = await api.Get(Request("GET", $"/api/sweeps/{id}"), client, id);
            Assert.Equal(200, Status(got));
            view = Body(got);
            if (view.GetProperty("runtimeStatus").GetString() == "Completed") break;
            Assert.True(DateTime.UtcNow < deadline, "the sweep did not finish in two minutes");
            await Task.Delay(300);
        }
        var trials = view.GetProperty("trials").EnumerateArray().ToList();
        Assert.Equal([$"{id}-t000", $"{id}-t001"], trials.Select(t => t.GetProperty("runId").GetString()));
        Assert.All(trials, t => Assert.Equal("completed", t.GetProperty("state").GetString()));
        Assert.All(trials, t => Assert.True(t.GetProperty("accuracy").GetDouble() > 0));

        var deleted = await api.Delete(Request("DELETE", $"/api/sweeps/{id}"), client, id);
        Assert.Equal(200, Status(deleted));
        Assert.Equal(404, Status(await api.Get(Request("GET", $"/api/sweeps/{id}"), client, id)));
        await foreach (var left in store.ListAsync($"runs/{id}"))
            Assert.Fail($"{left.Path} was left behind");
    }

    private static async Task<IActionResult> Conflict(SweepsApi api, DurableTaskClient client, string id)
    {
        var request = Request("POST", "/api/sweeps", OrchestrationTestKit.TinySweep(""" "seed": [1, 2] """, maxEpochs: 1));
        request.QueryString = new QueryString($"?id={id}");
        return await api.Start(request, client);
    }
}

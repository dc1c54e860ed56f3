using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask.Client;
using ScaleGrow.Data.Text;
using ScaleGrow.Functions;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Tests.Infrastructure;
using ScaleGrow.Tests.Orchestration;

namespace ScaleGrow.Tests.Functions;

/// <summary>
/// The HTTP functions, called as the host would call them: a real HttpRequest (DefaultHttpContext) and a real
/// DurableTaskClient from the in-process engine, with the artifact store on Azurite.
/// </summary>
[Collection(AzuriteCollection.Name)]
public class RunsApiTests(AzuriteFixture azurite)
{
    private static HttpRequest Request(string method, string path, string? body = null, string query = "")
    {
        var context = new DefaultHttpContext();
        var r = context.Request;
        r.Method = method;
        r.Scheme = "https";
        r.Host = new HostString("scalegrow.example");
        r.Path = path;
        r.QueryString = new QueryString(query);
        if (body is not null)
        {
            var bytes = Encoding.UTF8.GetBytes(body);
            r.Body = new MemoryStream(bytes);
            r.ContentLength = bytes.Length;
            r.ContentType = "application/json";
        }
        return r;
    }

    private static int Status(IActionResult result) => result switch
    {
        ObjectResult o => o.StatusCode ?? 200,
        StatusCodeResult s => s.StatusCode,
        _ => throw new InvalidOperationException(result.GetType().Name),
    };

    private static JsonElement Body(IActionResult result) =>
        JsonSerializer.SerializeToElement(((ObjectResult)result).Value, JsonSerializerOptions.Web);

    [Fact]
    public async Task EveryEndpointAnswersItsSuccessAndErrorCases()
    {
        var store = new BlobArtifactStore(azurite.ConnectionString);
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store));
        var api = new RunsApi(store, DataAccessPolicy.FromSetting(null));
        var client = engine.Client;
        string spec = OrchestrationTestKit.TinyGrowth(maxEpochs: 30, fineTune: 0).ToJson();
        string id = $"api-{Guid.NewGuid():N}"[..24];

        // POST /api/runs: 202 with the run id and links; a bad spec or id is a 400 with a one-line message, an existing id a 409.
        var started = await api.Start(Request("POST", "/api/runs", spec, $"?id={id}"), client);
        Assert.Equal(202, Status(started));
        Assert.Equal(id, Body(started).GetProperty("runId").GetString());
        Assert.EndsWith($"/api/runs/{id}/stop", Body(started).GetProperty("stopUrl").GetString());
        Assert.Equal(409, Status(await api.Start(Request("POST", "/api/runs", spec, $"?id={id}"), client))); // exists
        foreach (var bad in new[] { "", "{", """{"growth":{"intervalEpochs":0}}""", """{"unknownField":1}""" })
        {
            var r = await api.Start(Request("POST", "/api/runs", bad), client);
            Assert.Equal(400, Status(r));
            Assert.DoesNotContain('\n', Body(r).GetProperty("error").GetString()!);
        }
        // Server paths in a request: only the named datasets' folders (and operator-configured roots) may be read;
        // /etc/passwd used to be opened and its parse error echoed (issue 16). Nothing is registered.
        var tiny = OrchestrationTestKit.TinyGrowth();
        foreach (var (evil, field) in new[]
                 {
                     (tiny with { Data = tiny.Data with { Directory = "/etc" } }, "data.directory"),
                     (tiny with { Data = tiny.Data with { Directory = "/usr/share/datasets/fashion-mnist/../../../../etc" } }, "data.directory"),
                     (tiny with { Model = new ModelRequest { Family = "bert" }, TextData = new TextDatasetSpec(TextDatasetSpec.LabelledText, "/etc/passwd") }, "textData.path"),
                 })
        {
            string evilRun = $"evil-{Guid.NewGuid():N}"[..20];
            var r = await api.Start(Request("POST", "/api/runs", evil.ToJson(), $"?id={evilRun}"), client);
            Assert.Equal(400, Status(r));
            string error = Body(r).GetProperty("error").GetString()!;
            Assert.Contains(field, error);
            Assert.Contains("outside the data this service may read", error);
            Assert.DoesNotContain("root:", error);
            Assert.Null(await store.GetInfoAsync(RunPaths.Spec(evilRun)));
        }
        foreach (var evilId in new[] { "../x", new string('a', 300), "ünïcode", "UPPER", "a/b" })
            Assert.Equal(400, Status(await api.Start(Request("POST", "/api/runs", spec, $"?id={Uri.EscapeDataString(evilId)}"), client)));

        // GET /api/runs/{id}: status, phase, arch, metrics history; unknown 404; malicious ids 400.
        var deadline = DateTime.UtcNow.AddMinutes(2);
        JsonElement view;
        do
        {
            await Task.Delay(200);
            var got = await api.Get(Request("GET", $"/api/runs/{id}"), client, id);
            Assert.Equal(200, Status(got));
            view = Body(got);
            Assert.True(DateTime.UtcNow < deadline, "run made no progress");
        } while (view.GetProperty("history").GetArrayLength() < 2);
        Assert.Equal(id, view.GetProperty("runId").GetString());
        Assert.StartsWith("VGG-", view.GetProperty("status").GetProperty("arch").GetString());
        Assert.Equal(404, Status(await api.Get(Request("GET", "/api/runs/nope-nope"), client, "nope-nope")));
        foreach (var evilId in new[] { "../x", new string('a', 300), "ünïcode", "..", "" })
            Assert.Equal(400, Status(await api.Get(Request("GET", "/api/runs/x"), client, evilId)));

        // GET /api/runs: paged; bad page size 400.
        var list = await api.List(Request("GET", "/api/runs", query: "?pageSize=50"), client);
        Assert.Equal(200, Status(list));
        Assert.Contains(Body(list).GetProperty("runs").EnumerateArray(), r => r.GetProperty("runId").GetString() == id);
        Assert.Equal(400, Status(await api.List(Request("GET", "/api/runs", query: "?pageSize=0"), client)));

        // POST /api/runs/{id}/resume on a running run: 400; unknown: 404.
        Assert.Equal(400, Status(await api.Resume(Request("POST", $"/api/runs/{id}/resume"), client, id)));
        Assert.Equal(404, Status(await api.Resume(Request("POST", "/api/runs/nope-nope/resume"), client, "nope-nope")));

        // POST /api/runs/{id}/stop: 202, and the run finishes gracefully.
        Assert.Equal(202, Status(await api.Stop(Request("POST", $"/api/runs/{id}/stop"), client, id)));
        Assert.Equal(404, Status(await api.Stop(Request("POST", "/api/runs/nope-nope/stop"), client, "nope-nope")));
        var (metadata, _) = await OrchestrationTestKit.WaitAsync(client, id);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, metadata.RuntimeStatus);
        var done = Body(await api.Get(Request("GET", $"/api/runs/{id}"), client, id));
        Assert.StartsWith("stop requested", done.GetProperty("summary").GetProperty("stopReason").GetString());

        // DELETE /api/runs/{id}: purged from the engine and every file removed (a delete used to keep them all).
        Assert.Equal(200, Status(await api.Delete(Request("DELETE", $"/api/runs/{id}"), client, id)));
        Assert.Null(await client.GetInstanceAsync(id));
        await foreach (var left in store.ListAsync($"runs/{id}/")) Assert.Fail($"{left.Path} was left behind");
        Assert.Equal(404, Status(await api.Delete(Request("DELETE", $"/api/runs/{id}"), client, id)));
        Assert.Equal(400, Status(await api.Delete(Request("DELETE", "/api/runs/x"), client, "../x")));
    }
}

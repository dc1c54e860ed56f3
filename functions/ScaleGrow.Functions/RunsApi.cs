using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;
using ScaleGrow.Storage;

namespace ScaleGrow.Functions;

/// <summary>
/// HTTP API for runs (authorization level Function). Thin: parse, call <see cref="RunsService"/>, map errors —
/// <see cref="ScaleGrowException"/> to 400 with its one-line message, an unknown run to 404, an existing run id or a run another process holds to 409.
/// </summary>
/// <param name="dataAccess">The data roots the operator allowed (setting <c>ScaleGrow__DataRoots</c>); a spec naming
/// any other server path is refused with 400 before anything is opened.</param>
public sealed class RunsApi(IArtifactStore store, DataAccessPolicy dataAccess)
{
    private const int MaxSpecBytes = 1 << 20;

    [Function("StartRun")]
    public async Task<IActionResult> Start(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "runs")] HttpRequest request,
        [DurableClient] DurableTaskClient client)
    {
        return await Guard(async () =>
        {
            string body = await ReadBodyAsync(request);
            var spec = RunSpec.FromRequestJson(body, "request body");
            string? requested = request.Query["id"];
            string runId = await new RunsService(client, store, dataAccess).StartAsync(spec, requested,
                request.HttpContext.RequestAborted);
            var links = Links(request, runId);
            return new AcceptedResult(links.Status, new { runId, statusUrl = links.Status, stopUrl = links.Stop });
        });
    }

    [Function("ListRuns")]
    public async Task<IActionResult> List(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "runs")] HttpRequest request,
        [DurableClient] DurableTaskClient client)
    {
        return await Guard(async () =>
        {
            int pageSize = 20;
            if (request.Query.TryGetValue("pageSize", out var s) && (!int.TryParse(s, out pageSize) || pageSize is < 1 or > 100))
                throw new InvalidSpecException($"pageSize must be an integer in 1..100, got '{s}'");
            string? token = request.Query["continuationToken"];
            var page = await new RunsService(client, store).ListAsync(pageSize, token, request.HttpContext.RequestAborted);
            return new OkObjectResult(page);
        });
    }

    [Function("GetRun")]
    public async Task<IActionResult> Get(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "runs/{id}")] HttpRequest request,
        [DurableClient] DurableTaskClient client, string id)
    {
        return await Guard(async () =>
        {
            var view = await new RunsService(client, store).GetAsync(id, true, request.HttpContext.RequestAborted);
            return view is null ? NotFound(id) : new OkObjectResult(view);
        });
    }

    [Function("StopRun")]
    public async Task<IActionResult> Stop(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "runs/{id}/stop")] HttpRequest request,
        [DurableClient] DurableTaskClient client, string id)
    {
        return await Guard(async () =>
            await new RunsService(client, store).StopAsync(id, request.HttpContext.RequestAborted)
                ? new AcceptedResult(Links(request, id).Status, new { runId = id, stopping = true })
                : NotFound(id));
    }

    [Function("ResumeRun")]
    public async Task<IActionResult> Resume(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "runs/{id}/resume")] HttpRequest request,
        [DurableClient] DurableTaskClient client, string id)
    {
        return await Guard(async () =>
        {
            string instance = await new RunsService(client, store).ResumeAsync(id, request.HttpContext.RequestAborted);
            return new AcceptedResult(Links(request, id).Status, new { runId = id, instanceId = instance });
        });
    }

    [Function("DeleteRun")]
    public async Task<IActionResult> Delete(
        [HttpTrigger(AuthorizationLevel.Function, "delete", Route = "runs/{id}")] HttpRequest request,
        [DurableClient] DurableTaskClient client, string id)
    {
        return await Guard(async () =>
        {
            int? files = await new RunsService(client, store).DeleteAsync(id, null, request.HttpContext.RequestAborted);
            return files is { } n ? new OkObjectResult(new { runId = id, deleted = true, files = n }) : NotFound(id);
        });
    }

    internal static async Task<IActionResult> Guard(Func<Task<IActionResult>> action)
    {
        try
        {
            return await action();
        }
        catch (RunNotFoundException e)
        {
            return new NotFoundObjectResult(new { error = e.Message });
        }
        catch (Exception e) when (e is RunExistsException or RunBusyException or RunResumeConflictException)
        {
            return new ConflictObjectResult(new { error = e.Message });
        }
        catch (ScaleGrowException e)
        {
            return new BadRequestObjectResult(new { error = e.Message.ReplaceLineEndings(" ") });
        }
    }

    private static IActionResult NotFound(string id) => new NotFoundObjectResult(new { error = $"run '{id}' not found" });

    internal static async Task<string> ReadBodyAsync(HttpRequest request)
    {
        if (request.ContentLength > MaxSpecBytes)
            throw new InvalidSpecException($"request body is larger than {MaxSpecBytes} bytes");
        using var reader = new StreamReader(request.Body);
        var buffer = new char[MaxSpecBytes + 1];
        int read = await reader.ReadBlockAsync(buffer, 0, buffer.Length);
        if (read > MaxSpecBytes) throw new InvalidSpecException($"request body is larger than {MaxSpecBytes} bytes");
        if (read == 0) throw new InvalidSpecException("request body is empty: send a run spec as JSON");
        return new string(buffer, 0, read);
    }

    private static (string Status, string Stop) Links(HttpRequest request, string runId)
    {
        string root = $"{request.Scheme}://{request.Host}/api/runs/{Uri.EscapeDataString(runId)}";
        return (root, root + "/stop");
    }
}

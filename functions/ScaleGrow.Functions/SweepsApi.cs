using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Sweeps;

namespace ScaleGrow.Functions;

/// <summary>
/// HTTP API for sweeps (authorization level Function), like the runs API: parse, call <see cref="SweepsService"/>,
/// map errors — a bad sweep spec is a 400 naming the axis, before any trial starts; an unknown sweep 404; an existing
/// id or a running sweep 409. Each trial is also a run: <c>GET /api/runs/{sweep}-t003</c>.
/// </summary>
public sealed class SweepsApi(IArtifactStore store, DataAccessPolicy dataAccess)
{
    [Function("StartSweep")]
    public async Task<IActionResult> Start(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "sweeps")] HttpRequest request,
        [DurableClient] DurableTaskClient client)
    {
        return await RunsApi.Guard(async () =>
        {
            string body = await RunsApi.ReadBodyAsync(request);
            var spec = SweepSpec.Parse(body, "request body");
            string? requested = request.Query["id"];
            string id = await new SweepsService(client, store, dataAccess).StartAsync(spec, requested,
                request.HttpContext.RequestAborted);
            string status = Link(request, id);
            return new AcceptedResult(status, new
            {
                sweepId = id, trials = spec.TrialCount, statusUrl = status,
                stopUrl = status + "/stop"
            });
        });
    }

    [Function("GetSweep")]
    public async Task<IActionResult> Get(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "sweeps/{id}")] HttpRequest request,
        [DurableClient] DurableTaskClient client, string id)
    {
        return await RunsApi.Guard(async () =>
        {
            var view = await new SweepsService(client, store).GetAsync(id, request.HttpContext.RequestAborted);
            return view is null ? NotFound(id) : new OkObjectResult(view);
        });
    }

    [Function("StopSweep")]
    public async Task<IActionResult> Stop(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "sweeps/{id}/stop")] HttpRequest request,
        [DurableClient] DurableTaskClient client, string id)
    {
        return await RunsApi.Guard(async () =>
            await new SweepsService(client, store).StopAsync(id, request.HttpContext.RequestAborted)
                ? new AcceptedResult(Link(request, id), new { sweepId = id, stopping = true })
                : NotFound(id));
    }

    [Function("ResumeSweep")]
    public async Task<IActionResult> Resume(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "sweeps/{id}/resume")] HttpRequest request,
        [DurableClient] DurableTaskClient client, string id)
    {
        return await RunsApi.Guard(async () =>
        {
            string instance = await new SweepsService(client, store).ResumeAsync(id, request.HttpContext.RequestAborted);
            return new AcceptedResult(Link(request, id), new { sweepId = id, instanceId = instance });
        });
    }

    [Function("DeleteSweep")]
    public async Task<IActionResult> Delete(
        [HttpTrigger(AuthorizationLevel.Function, "delete", Route = "sweeps/{id}")] HttpRequest request,
        [DurableClient] DurableTaskClient client, string id)
    {
        return await RunsApi.Guard(async () =>
        {
            int? files = await new SweepsService(client, store).DeleteAsync(id, null, request.HttpContext.RequestAborted);
            return files is { } n ? new OkObjectResult(new { sweepId = id, deleted = true, files = n }) : NotFound(id);
        });
    }

    private static IActionResult NotFound(string id) => new NotFoundObjectResult(new { error = $"sweep '{id}' not found" });

    private static string Link(HttpRequest request, string id) =>
        $"{request.Scheme}://{request.Host}/api/sweeps/{Uri.EscapeDataString(id)}";
}

using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using ScaleGrow.Runs;
using ScaleGrow.Storage;

namespace ScaleGrow.Orchestration;

/// <summary>A run as the API shows it.</summary>
public sealed record RunView
{
    public required string RunId { get; init; }
    public required string InstanceId { get; init; }
    public required string RuntimeStatus { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset LastUpdatedAt { get; init; }
    public RunStatus? Status { get; init; }
    public string? Failure { get; init; }
    public RunSummary? Summary { get; init; }
    public IReadOnlyList<JsonObject>? History { get; init; }
}

/// <summary>One page of runs.</summary>
public sealed record RunPage(IReadOnlyList<RunView> Runs, string? ContinuationToken);

/// <summary>
/// Starting, watching, stopping, resuming and deleting runs — the logic behind both the HTTP API (functions/) and
/// `scalegrow runs …` (cli/), over any Durable Task client and artifact store. A run's id is its first instance's
/// id; a resumed run gets a new instance (<c>{runId}.r{n}</c>) recorded in <c>runs/{id}/instance.json</c>.
/// </summary>
/// <param name="dataAccess">Where runs may read data; the spec's data is checked against it before a run is
/// registered (null: <see cref="DataAccessPolicy.Unrestricted"/>, for a local command).</param>
public sealed class RunsService(DurableTaskClient client, IArtifactStore store, DataAccessPolicy? dataAccess = null)
{
    public async Task<string> StartAsync(RunSpec spec, string? runId = null, CancellationToken cancellationToken = default)
    {
        runId = RunPaths.ValidateRunId(runId ?? NewRunId(spec));
        spec.Validate();
        (dataAccess ?? DataAccessPolicy.Unrestricted).Check(spec); // before anything is registered (issue 16)
        // The store is checked as well as the engine: the in-process engine forgets its instances when the process
        // ends, and starting again over a finished run's files re-ran it and overwrote its results (issue 16).
        if (await new RunCatalog(store).GetAsync(runId, cancellationToken) is { } existing)
            throw new RunExistsException(runId, existing.Status == "completed");
        if (await client.GetInstanceAsync(runId, cancellationToken) is not null)
            throw new RunExistsException(runId, completed: false);
        await RunSteps.SubmitAsync(store, runId, spec, cancellationToken);
        await SetInstanceAsync(runId, runId, cancellationToken);
        await client.ScheduleNewOrchestrationInstanceAsync(TaskNames.GrowthRun, new GrowthRunInput(runId, null),
            new StartOrchestrationOptions(runId), cancellationToken);
        return runId;
    }

    public async Task<RunView?> GetAsync(string runId, bool withHistory = true,
        CancellationToken cancellationToken = default)
    {
        RunPaths.ValidateRunId(runId);
        string instanceId = await InstanceOfAsync(runId, cancellationToken) ?? runId;
        var metadata = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: true, cancellationToken);
        if (metadata is null) return null;
        IReadOnlyList<JsonObject>? history = null;
        if (withHistory)
            history = (await new RunJournal(store, runId).RunEntriesAsync(cancellationToken))
                .Where(e => e is EpochEntry or GrowthEntry or EvaluateEntry).Select(RunJournal.ToJson).ToList();
        return View(runId, metadata, history);
    }

    public async Task<RunPage> ListAsync(int pageSize = 20, string? continuationToken = null,
        CancellationToken cancellationToken = default)
    {
        if (pageSize is < 1 or > 100) throw new InvalidSpecException($"page size must be in 1..100, got {pageSize}");
        var query = new OrchestrationQuery
        {
            PageSize = pageSize, ContinuationToken = continuationToken,
            FetchInputsAndOutputs = true
        };
        await foreach (var page in client.GetAllInstancesAsync(query).AsPages(continuationToken, pageSize)
                           .WithCancellation(cancellationToken))
        {
            var runs = page.Values.Where(m => m.Name == TaskNames.GrowthRun)
                .Select(m => View(RunIdOf(m.InstanceId), m, null)).ToList();
            return new RunPage(runs, page.ContinuationToken);
        }
        return new RunPage([], null);
    }

    /// <summary>Asks a run to finish gracefully after its current step (event + control flag for a training step).</summary>
    public async Task<bool> StopAsync(string runId, CancellationToken cancellationToken = default)
    {
        var view = await GetAsync(runId, withHistory: false, cancellationToken);
        if (view is null) return false;
        await WriteControlAsync(runId, stop: true, delete: false, cancellationToken);
        if (view.RuntimeStatus is "Running" or "Pending")
            await client.RaiseEventAsync(view.InstanceId, TaskNames.StopEvent, "stop", cancellationToken);
        return true;
    }

    /// <summary>
    /// Continues a failed or terminated run from its last journaled state (the last completed growth cycle) as a new
    /// instance. A completed or still-running run cannot be resumed.
    /// </summary>
    public async Task<string> ResumeAsync(string runId, CancellationToken cancellationToken = default)
    {
        // The instance record's version, read before the status: two resumes racing both see "failed", but only the
        // first may replace the record, so only one new instance starts (issue 16: both used to run every step).
        string? instanceETag = (await store.GetInfoAsync(InstancePath(runId), cancellationToken))?.ETag;
        var view = await GetAsync(runId, withHistory: false, cancellationToken)
                   ?? throw new RunNotFoundException(runId);
        if (view.RuntimeStatus is not ("Failed" or "Terminated"))
            throw new InvalidSpecException($"run '{runId}' is {view.RuntimeStatus.ToLowerInvariant()}; only failed or terminated runs can be resumed");
        return await ContinueAsync(runId, await LastStateAsync(runId, cancellationToken), cancellationToken,
            instanceETag);
    }

    /// <summary>
    /// Starts a new instance of a run from a journaled state (null: from the start — InitializeRun rewrites step 0).
    /// </summary>
    /// <param name="instanceETag">When given, the version of <c>instance.json</c> the caller decided on: the new
    /// instance is recorded only if it is still that one, else <see cref="RunResumeConflictException"/>.</param>
    public async Task<string> ContinueAsync(string runId, GrowthRunState? state,
        CancellationToken cancellationToken = default, string? instanceETag = null)
    {
        int n = 1;
        string instanceId;
        do instanceId = $"{runId}.r{n++}";
        while (await client.GetInstanceAsync(instanceId, cancellationToken) is not null);
        try
        {
            await SetInstanceAsync(runId, instanceId, cancellationToken, instanceETag);
        }
        catch (ArtifactConflictException)
        {
            throw new RunResumeConflictException(runId);
        }
        await WriteControlAsync(runId, stop: false, delete: false, cancellationToken);
        await client.ScheduleNewOrchestrationInstanceAsync(TaskNames.GrowthRun, new GrowthRunInput(runId, state),
            new StartOrchestrationOptions(instanceId), cancellationToken);
        return instanceId;
    }

    /// <summary>
    /// Deletes a run: stops it (control flag, then termination of every instance), purges its engine history, waits
    /// until no process holds it and removes all its files (<see cref="RunCatalog.DeleteAsync"/>). Returns the number
    /// of files removed, or null when neither the engine nor the store knows the run.
    /// </summary>
    public async Task<int?> DeleteAsync(string runId, TimeSpan? waitForHolder = null,
        CancellationToken cancellationToken = default)
    {
        RunPaths.ValidateRunId(runId);
        var catalog = new RunCatalog(store);
        bool inStore = await catalog.GetAsync(runId, cancellationToken) is not null;
        if (!inStore && await client.GetInstanceAsync(runId, cancellationToken) is null) return null;
        // The flag first: a training step running anywhere halts between batches and writes nothing more.
        await WriteControlAsync(runId, stop: true, delete: true, cancellationToken);
        for (int n = 0; ; n++)
        {
            string id = n == 0 ? runId : $"{runId}.r{n}";
            var m = await client.GetInstanceAsync(id, cancellationToken);
            if (m is null)
            {
                if (n == 0) continue; // a run whose first instance was purged may still have resumed instances
                break;
            }
            if (!m.IsCompleted) await client.TerminateInstanceAsync(id, "deleted", cancellationToken);
            for (int wait = 0; wait < 50; wait++)
            {
                m = await client.GetInstanceAsync(id, cancellationToken);
                if (m is null || m.IsCompleted) break;
                await Task.Delay(100, cancellationToken);
            }
            await client.PurgeInstanceAsync(id, cancellationToken);
        }
        return await catalog.DeleteAsync(runId, waitForHolder, cancellationToken);
    }

    public async Task<GrowthRunState?> LastStateAsync(string runId, CancellationToken cancellationToken)
    {
        var entries = await new RunJournal(store, runId).RunEntriesAsync(cancellationToken);
        return entries.OfType<StateEntry>().MaxBy(e => e.Step)?.State;
    }

    private static RunView View(string runId, OrchestrationMetadata m, IReadOnlyList<JsonObject>? history) => new()
    {
        RunId = runId, InstanceId = m.InstanceId, RuntimeStatus = m.RuntimeStatus.ToString(), CreatedAt = m.CreatedAt,
        LastUpdatedAt = m.LastUpdatedAt,
        Status = m.SerializedCustomStatus is { Length: > 0 } ? m.ReadCustomStatusAs<RunStatus>() : null,
        Failure = m.FailureDetails?.ErrorMessage,
        Summary = m.RuntimeStatus == OrchestrationRuntimeStatus.Completed && m.SerializedOutput is { Length: > 0 }
            ? m.ReadOutputAs<RunSummary>() : null,
        History = history,
    };

    public static string RunIdOf(string instanceId)
    {
        int dot = instanceId.IndexOf('.');
        return dot < 0 ? instanceId : instanceId[..dot];
    }

    public static string NewRunId(RunSpec spec)
    {
        string prefix = (spec.Preset ?? spec.Kind.ToString()).ToLowerInvariant();
        prefix = new string(prefix.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-').ToArray()).Trim('-');
        if (prefix.Length is 0 or > 40) prefix = "run";
        return $"{prefix}-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Random.Shared.Next(0x1000, 0xffff):x4}";
    }

    private static string InstancePath(string runId) => $"{RunPaths.Container}/{runId}/instance.json";

    private async Task SetInstanceAsync(string runId, string instanceId, CancellationToken cancellationToken,
        string? expectedETag = null) =>
        await store.WriteAsync(InstancePath(runId),
            Encoding.UTF8.GetBytes(new JsonObject { ["instanceId"] = instanceId }.ToJsonString()),
            expectedETag is null ? null : ArtifactWriteOptions.IfMatch(expectedETag), cancellationToken);

    private async Task<string?> InstanceOfAsync(string runId, CancellationToken cancellationToken)
    {
        string path = InstancePath(runId);
        if (await store.GetInfoAsync(path, cancellationToken) is null) return null;
        return (string?)JsonNode.Parse(await store.ReadAllBytesAsync(path, cancellationToken))?["instanceId"];
    }

    private async Task WriteControlAsync(string runId, bool stop, bool delete, CancellationToken cancellationToken) =>
        await store.WriteAsync(RunPaths.Control(runId),
            Encoding.UTF8.GetBytes(new JsonObject { ["stop"] = stop, ["delete"] = delete }.ToJsonString()), null,
            cancellationToken);
}

/// <summary>A run with this id already exists (HTTP 409): never re-run over its files.</summary>
public sealed class RunExistsException(string runId, bool completed) : ScaleGrowException(completed
    ? $"run '{runId}' already completed and its results are kept; choose another run id, or delete it first (`scalegrow runs delete {runId}`)"
    : $"run '{runId}' already exists and has not completed; continue it with `scalegrow runs resume {runId}`, or delete it first");

/// <summary>Another request resumed the run first (HTTP 409).</summary>
public sealed class RunResumeConflictException(string runId) : ScaleGrowException(
    $"run '{runId}' was resumed by another request at the same time; watch that one (`scalegrow runs show {runId}`)");

/// <summary>The run does not exist (HTTP 404).</summary>
public sealed class RunNotFoundException(string runId) : ScaleGrowException($"run '{runId}' not found");

using System.Text;
using System.Text.Json.Nodes;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Sweeps;

namespace ScaleGrow.Orchestration;

/// <summary>A sweep as the API shows it: the orchestration's state and a summary of every trial.</summary>
public sealed record SweepView
{
    public required string SweepId { get; init; }
    public string? InstanceId { get; init; }
    public required string RuntimeStatus { get; init; }
    public SweepStatus? Status { get; init; }
    public string? Failure { get; init; }
    public SweepSummary? Summary { get; init; }
    public required IReadOnlyList<SweepTrialView> Trials { get; init; }
}

/// <summary>
/// Starting, watching, stopping, resuming and deleting sweeps — behind <c>POST /api/sweeps</c> and
/// <c>scalegrow sweep</c> / <c>runs … SWEEP</c>. A sweep's id is its first instance's id; a resumed sweep runs as a new
/// instance (<c>{id}.r{n}</c>, recorded in <c>runs/{id}/instance.json</c>) and re-runs no finished trial.
/// </summary>
public sealed class SweepsService(DurableTaskClient client, IArtifactStore store, DataAccessPolicy? dataAccess = null)
{
    public async Task<string> StartAsync(SweepSpec spec, string? sweepId = null, CancellationToken cancellationToken = default)
    {
        sweepId = SweepPaths.ValidateSweepId(sweepId ?? NewSweepId());
        // The data every trial reads must be allowed before anything is registered (the base's and any axis's).
        var policy = dataAccess ?? DataAccessPolicy.Unrestricted;
        for (int i = 0; i < (int)Math.Min(spec.TrialCount, spec.BudgetTrials ?? int.MaxValue); i++)
            policy.Check(spec.TrialSpec(i, out _));
        if (await new SweepCatalog(store).GetAsync(sweepId, cancellationToken) is { } existing)
            throw new RunExistsException(sweepId, existing.Status == "completed");
        if (await new RunCatalog(store).GetAsync(sweepId, cancellationToken) is not null
            || await client.GetInstanceAsync(sweepId, cancellationToken) is not null)
            throw new RunExistsException(sweepId, completed: false);
        await SweepSteps.SubmitAsync(store, sweepId, spec, cancellationToken);
        await SetInstanceAsync(sweepId, sweepId, cancellationToken);
        await client.ScheduleNewOrchestrationInstanceAsync(TaskNames.SweepRun, new SweepRunInput(sweepId),
            new StartOrchestrationOptions(sweepId), cancellationToken);
        return sweepId;
    }

    public static string NewSweepId() =>
        $"sweep-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Random.Shared.Next(0x1000, 0xffff):x4}";

    public async Task<SweepView?> GetAsync(string sweepId, CancellationToken cancellationToken = default)
    {
        RunPaths.ValidateRunId(sweepId);
        if (!await SweepSteps.IsSweepAsync(store, sweepId, cancellationToken)) return null;
        string instanceId = await InstanceOfAsync(sweepId, cancellationToken) ?? sweepId;
        var m = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: true, cancellationToken);
        var trials = await new SweepCatalog(store).TrialsAsync(sweepId, cancellationToken);
        return new SweepView
        {
            SweepId = sweepId, InstanceId = m?.InstanceId, RuntimeStatus = m?.RuntimeStatus.ToString() ?? "Unknown",
            Status = m?.SerializedCustomStatus is { Length: > 0 } ? m.ReadCustomStatusAs<SweepStatus>() : null,
            Failure = m?.FailureDetails?.ErrorMessage,
            Summary = m?.RuntimeStatus == OrchestrationRuntimeStatus.Completed && m.SerializedOutput is { Length: > 0 }
                ? m.ReadOutputAs<SweepSummary>() : null,
            Trials = trials,
        };
    }

    /// <summary>Stops every running trial gracefully and starts no more; the sweep then writes its results.</summary>
    public async Task<bool> StopAsync(string sweepId, CancellationToken cancellationToken = default)
    {
        RunPaths.ValidateRunId(sweepId);
        if (!await SweepSteps.IsSweepAsync(store, sweepId, cancellationToken)) return false;
        await new SweepCatalog(store).RequestStopAsync(sweepId, cancellationToken);
        string instanceId = await InstanceOfAsync(sweepId, cancellationToken) ?? sweepId;
        if (await client.GetInstanceAsync(instanceId, cancellationToken) is
            { RuntimeStatus: OrchestrationRuntimeStatus.Running or OrchestrationRuntimeStatus.Pending })
            await client.RaiseEventAsync(instanceId, TaskNames.StopEvent, "stop", cancellationToken);
        return true;
    }

    /// <summary>
    /// Continues a sweep as a new instance: finished trials keep their results, started ones continue from their own
    /// last growth cycle, the rest start. Refused while its instance still runs on this engine, and for a sweep that
    /// completed.
    /// </summary>
    public async Task<string> ResumeAsync(string sweepId, CancellationToken cancellationToken = default)
    {
        var listing = await new SweepCatalog(store).GetAsync(sweepId, cancellationToken)
                      ?? throw new RunNotFoundException(sweepId);
        if (listing.Status == "completed") throw new RunExistsException(sweepId, completed: true);
        string? current = await InstanceOfAsync(sweepId, cancellationToken);
        if (current is not null && await client.GetInstanceAsync(current, cancellationToken) is
            { RuntimeStatus: OrchestrationRuntimeStatus.Running or OrchestrationRuntimeStatus.Pending })
            throw new InvalidSpecException($"sweep '{sweepId}' is running; stop it first or watch it (`scalegrow runs show {sweepId}`)");
        // Past every instance this sweep had: the in-process engine forgets them, the store does not.
        int n = current is null ? 1 : Rank(current) + 1;
        while (await client.GetInstanceAsync($"{sweepId}.r{n}", cancellationToken) is not null) n++;
        string instanceId = $"{sweepId}.r{n}";
        await SetInstanceAsync(sweepId, instanceId, cancellationToken);
        await RunCatalog.WriteControlAsync(store, sweepId, stop: false, delete: false, cancellationToken);
        await client.ScheduleNewOrchestrationInstanceAsync(TaskNames.SweepRun, new SweepRunInput(sweepId),
            new StartOrchestrationOptions(instanceId), cancellationToken);
        return instanceId;
    }

    private static int Rank(string instanceId)
    {
        int dot = instanceId.LastIndexOf(".r", StringComparison.Ordinal);
        return dot > 0 && int.TryParse(instanceId.AsSpan(dot + 2), out int k) ? k : 0;
    }

    /// <summary>
    /// Deletes a sweep and all its trials: stop flags, termination and purge of every instance this engine knows,
    /// then the files (<see cref="SweepCatalog.DeleteAsync"/>). Null when neither the store nor the engine knows it.
    /// </summary>
    public async Task<int?> DeleteAsync(string sweepId, TimeSpan? waitForHolder = null,
        CancellationToken cancellationToken = default)
    {
        RunPaths.ValidateRunId(sweepId);
        if (!await SweepSteps.IsSweepAsync(store, sweepId, cancellationToken)) return null;
        var catalog = new SweepCatalog(store);
        await RunCatalog.WriteControlAsync(store, sweepId, stop: true, delete: true, cancellationToken);
        var instances = new List<string> { sweepId };
        for (int n = 1; n < 100 && await client.GetInstanceAsync($"{sweepId}.r{n}", cancellationToken) is not null; n++)
            instances.Add($"{sweepId}.r{n}");
        foreach (var id in instances) await EndAsync(id, cancellationToken);
        var runs = new RunsService(client, store);
        foreach (var trial in await catalog.TrialIdsAsync(sweepId, cancellationToken))
            await runs.DeleteAsync(trial, waitForHolder, cancellationToken);
        return await catalog.DeleteAsync(sweepId, waitForHolder, cancellationToken);
    }

    private async Task EndAsync(string instanceId, CancellationToken cancellationToken)
    {
        var m = await client.GetInstanceAsync(instanceId, cancellationToken);
        if (m is null) return;
        if (!m.IsCompleted) await client.TerminateInstanceAsync(instanceId, "deleted", cancellationToken);
        for (int wait = 0; wait < 50; wait++)
        {
            m = await client.GetInstanceAsync(instanceId, cancellationToken);
            if (m is null || m.IsCompleted) break;
            await Task.Delay(100, cancellationToken);
        }
        await client.PurgeInstanceAsync(instanceId, cancellationToken);
    }

    private static string InstancePath(string sweepId) => $"{RunPaths.Container}/{sweepId}/instance.json";

    private async Task SetInstanceAsync(string sweepId, string instanceId, CancellationToken cancellationToken) =>
        await store.WriteAsync(InstancePath(sweepId),
            Encoding.UTF8.GetBytes(new JsonObject { ["instanceId"] = instanceId }.ToJsonString()), null, cancellationToken);

    public async Task<string?> InstanceOfAsync(string sweepId, CancellationToken cancellationToken)
    {
        string path = InstancePath(sweepId);
        if (await store.GetInfoAsync(path, cancellationToken) is null) return null;
        return (string?)JsonNode.Parse(await store.ReadAllBytesAsync(path, cancellationToken))?["instanceId"];
    }
}

using System.Text;
using System.Text.Json.Nodes;
using ScaleGrow.Storage;

namespace ScaleGrow.Runs;

/// <summary>A run (or a sweep of runs) as its artifacts describe it.</summary>
public sealed record RunListing(string RunId, string Status, string? Arch, int Epochs, int Growths, double? Accuracy,
    string? StopReason, string? Report)
{
    /// <summary><c>run</c>, or <c>sweep</c> for a sweep of runs.</summary>
    public string Kind { get; init; } = "run";

    /// <summary>The sweep a trial belongs to.</summary>
    public string? Sweep { get; init; }

    /// <summary>Sweeps: trials in the plan, and how many have been recorded as finished.</summary>
    public int? Trials { get; init; }
    public int? TrialsFinished { get; init; }
}

/// <summary>
/// Runs as the artifact store knows them (no engine needed): which exist, how far they got (journal), whether they
/// finished (report). Also sets control flags and deletes runs.
/// </summary>
public sealed class RunCatalog(IArtifactStore store)
{
    public async Task<RunListing?> GetAsync(string runId, CancellationToken cancellationToken = default)
    {
        RunPaths.ValidateRunId(runId);
        if (await store.GetInfoAsync(RunPaths.Spec(runId), cancellationToken) is null) return null;
        var journal = await new RunJournal(store, runId).RunEntriesAsync(cancellationToken);
        string reportPath = RunPaths.Final(runId, "report.json");
        JsonNode? report = await store.GetInfoAsync(reportPath, cancellationToken) is null
            ? null
            : JsonNode.Parse(await store.ReadAllBytesAsync(reportPath, cancellationToken));
        var control = await store.GetInfoAsync(RunPaths.Control(runId), cancellationToken) is null
            ? null
            : JsonNode.Parse(await store.ReadAllBytesAsync(RunPaths.Control(runId), cancellationToken));
        string status = report is not null ? "completed"
            : (bool?)control?["stop"] == true ? "stopping"
            : journal.Count == 0 ? "submitted" : "incomplete";
        var epochs = journal.OfType<EpochEntry>().ToList();
        string? arch = (string?)report?["arch"]
                       ?? journal.OfType<GrowthEntry>().LastOrDefault()?.Action.ArchAfter
                       ?? journal.OfType<InitializeEntry>().FirstOrDefault()?.Arch;
        double? accuracy = (double?)report?["accuracy"] ?? epochs.LastOrDefault()?.ValidationAccuracy;
        return new RunListing(runId, status, arch, epochs.Count, journal.OfType<GrowthEntry>().Count(),
            accuracy, (string?)report?["stopReason"], report is null ? null : reportPath)
        {
            Sweep = SweepPaths.ParseTrialId(runId) is { } trial
                    && await store.GetInfoAsync(SweepPaths.Spec(trial.SweepId), cancellationToken) is not null
                ? trial.SweepId : null,
        };
    }

    public async Task<IReadOnlyList<EpochEntry>> EpochsAsync(string runId, CancellationToken cancellationToken = default) =>
        (await new RunJournal(store, runId).RunEntriesAsync(cancellationToken))
        .OfType<EpochEntry>().OrderBy(e => e.Epoch).ToList();

    public Task RequestStopAsync(string runId, CancellationToken cancellationToken = default) =>
        WriteControlAsync(store, runId, stop: true, delete: false, cancellationToken);

    /// <summary>How long <see cref="DeleteAsync"/> waits for a process executing the run to let go of it.</summary>
    public static readonly TimeSpan DefaultDeleteWait = TimeSpan.FromSeconds(120);

    /// <summary>
    /// Deletes a run and every file it has. A process still executing it is asked to stop at once (the control flag:
    /// its training step halts between batches and the run ends without fusing or reporting); the delete waits until
    /// no live process holds the run's <see cref="RunLease"/>, so that nothing is written after the files are gone
    /// (a deleted run used to go on writing steps, issue 16). The spec goes last, so an interrupted delete leaves a
    /// listed run that can be deleted again. Returns how many files were removed.
    /// </summary>
    /// <exception cref="RunBusyException">The holder did not let go within <paramref name="waitForHolder"/>; nothing
    /// was deleted.</exception>
    public async Task<int> DeleteAsync(string runId, TimeSpan? waitForHolder = null,
        CancellationToken cancellationToken = default)
    {
        await WriteControlAsync(store, runId, stop: true, delete: true, cancellationToken);
        var wait = waitForHolder ?? DefaultDeleteWait;
        var deadline = DateTime.UtcNow + wait;
        while (await RunLease.LiveHolderAsync(store, runId, cancellationToken) is { } holder)
        {
            if (DateTime.UtcNow > deadline)
                throw new RunBusyException(runId, holder, $"it did not stop within {wait.TotalSeconds:0} s of the " +
                                                          "delete request, so nothing was deleted; it stops at its next training batch: run the delete again then");
            await Task.Delay(250, cancellationToken);
        }
        var paths = new List<string>();
        await foreach (var info in store.ListAsync($"{RunPaths.Container}/{runId}/", cancellationToken)) paths.Add(info.Path);
        string spec = RunPaths.Spec(runId);
        foreach (var path in paths.Where(p => p != spec).Append(spec))
            await store.DeleteAsync(path, cancellationToken);
        return paths.Count;
    }

    public static Task WriteControlAsync(IArtifactStore store, string runId, bool stop, bool delete,
        CancellationToken cancellationToken) =>
        store.WriteAsync(RunPaths.Control(runId),
            Encoding.UTF8.GetBytes(new JsonObject { ["stop"] = stop, ["delete"] = delete }.ToJsonString()), null,
            cancellationToken);
}

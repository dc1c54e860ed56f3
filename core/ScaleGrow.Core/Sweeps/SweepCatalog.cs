using System.Text.Json;
using System.Text.Json.Nodes;
using ScaleGrow.Runs;
using ScaleGrow.Storage;

namespace ScaleGrow.Sweeps;

/// <summary>A trial as <c>runs show SWEEP</c> and <c>GET /api/sweeps/{id}</c> list it.</summary>
public sealed record SweepTrialView(int Index, string RunId, string Configuration, string State, int Epochs,
    string? Arch, double? Accuracy, long? ParametersFused, string? StopReason, string? Error);

/// <summary>
/// Sweeps as the artifact store knows them (no engine needed): their trials and how far each got, stop flags, and
/// deletion of a sweep with every trial. A trial is an ordinary run (<see cref="RunCatalog"/>) whose id is derived
/// from the sweep's.
/// </summary>
public sealed class SweepCatalog(IArtifactStore store)
{
    /// <summary>
    /// Every run and sweep in the store (<c>runs list</c>): a sweep's trials are runs whose <see cref="RunListing.Sweep"/>
    /// names it. Listed here rather than in <see cref="RunCatalog"/>, which knows runs only: sweeps build on runs.
    /// </summary>
    public async Task<IReadOnlyList<RunListing>> ListAllAsync(CancellationToken cancellationToken = default)
    {
        var ids = new SortedSet<string>(StringComparer.Ordinal);
        await foreach (var info in store.ListAsync($"{RunPaths.Container}/", cancellationToken))
        {
            var parts = info.Path.Split('/');
            if (parts.Length >= 3 && parts[2] is "spec.json" or "sweep-spec.json") ids.Add(parts[1]);
        }
        var runs = new RunCatalog(store);
        var list = new List<RunListing>();
        foreach (var id in ids)
        {
            if ((await runs.GetAsync(id, cancellationToken) ?? await GetAsync(id, cancellationToken)) is { } r)
                list.Add(r);
        }
        return list;
    }

    /// <summary>Every trial of the plan: recorded ones with their result, started ones with their progress so far,
    /// the rest pending.</summary>
    public async Task<IReadOnlyList<SweepTrialView>> TrialsAsync(string sweepId, CancellationToken cancellationToken = default)
    {
        var steps = new SweepSteps(store);
        var spec = await steps.ReadSpecAsync(sweepId, cancellationToken);
        var trials = await steps.TrialsAsync(sweepId, spec, cancellationToken);
        var catalog = new RunCatalog(store);
        var views = new List<SweepTrialView>();
        foreach (var t in trials)
        {
            if (t.Status is "not-started" or "over-budget")
            {
                var run = await catalog.GetAsync(t.RunId, cancellationToken);
                views.Add(run is null
                    ? new SweepTrialView(t.Index, t.RunId, t.Configuration, t.Status == "over-budget" ? t.Status : "pending",
                        0, null, null, null, null, null)
                    : new SweepTrialView(t.Index, t.RunId, t.Configuration, run.Status == "incomplete" ? "running" : run.Status,
                        run.Epochs, run.Arch, run.Accuracy, null, run.StopReason, null));
                continue;
            }
            views.Add(new SweepTrialView(t.Index, t.RunId, t.Configuration, t.Status, t.Epochs, t.Arch, t.Accuracy,
                t.ParametersFused, t.StopReason, t.Error));
        }
        return views;
    }

    /// <summary>The ids of the trials that have been registered as runs.</summary>
    public async Task<IReadOnlyList<string>> TrialIdsAsync(string sweepId, CancellationToken cancellationToken = default)
    {
        var ids = new SortedSet<string>(StringComparer.Ordinal);
        await foreach (var info in store.ListAsync($"{RunPaths.Container}/{sweepId}-t", cancellationToken))
        {
            var parts = info.Path.Split('/');
            if (parts.Length >= 3 && SweepPaths.ParseTrialId(parts[1]) is { } t && t.SweepId == sweepId) ids.Add(parts[1]);
        }
        return ids.ToList();
    }

    /// <summary>Stops a sweep gracefully: no trial starts any more; running trials halt between batches, then fuse,
    /// evaluate and report; the sweep then writes its results.</summary>
    public async Task RequestStopAsync(string sweepId, CancellationToken cancellationToken = default)
    {
        await RunCatalog.WriteControlAsync(store, sweepId, stop: true, delete: false, cancellationToken);
        var catalog = new RunCatalog(store);
        foreach (var id in await TrialIdsAsync(sweepId, cancellationToken))
            if ((await catalog.GetAsync(id, cancellationToken))?.Status is not (null or "completed"))
                await catalog.RequestStopAsync(id, cancellationToken);
    }

    /// <summary>
    /// Deletes a sweep and all its trials: flags first (no trial starts, running ones halt at once and the sweep ends
    /// without writing), then waits for the process executing the sweep to let go, then removes every trial's files
    /// and the sweep's own (spec last). Returns how many files were removed.
    /// </summary>
    public async Task<int> DeleteAsync(string sweepId, TimeSpan? waitForHolder = null,
        CancellationToken cancellationToken = default)
    {
        await RunCatalog.WriteControlAsync(store, sweepId, stop: true, delete: true, cancellationToken);
        var trials = await TrialIdsAsync(sweepId, cancellationToken);
        foreach (var id in trials)
            await RunCatalog.WriteControlAsync(store, id, stop: true, delete: true, cancellationToken);
        var wait = waitForHolder ?? RunCatalog.DefaultDeleteWait;
        var deadline = DateTime.UtcNow + wait;
        while (await RunLease.LiveHolderAsync(store, sweepId, cancellationToken) is { } holder)
        {
            if (DateTime.UtcNow > deadline)
                throw new RunBusyException(sweepId, holder, $"it did not stop within {wait.TotalSeconds:0} s of the " +
                                                            "delete request, so the sweep was not deleted; run the delete again");
            await Task.Delay(250, cancellationToken);
        }
        var catalog = new RunCatalog(store);
        int files = 0;
        foreach (var id in await TrialIdsAsync(sweepId, cancellationToken))
            files += await catalog.DeleteAsync(id, waitForHolder, cancellationToken);
        var paths = new List<string>();
        await foreach (var info in store.ListAsync($"{RunPaths.Container}/{sweepId}/", cancellationToken)) paths.Add(info.Path);
        string spec = SweepPaths.Spec(sweepId);
        foreach (var path in paths.Where(p => p != spec).Append(spec))
            await store.DeleteAsync(path, cancellationToken);
        return files + paths.Count;
    }

    /// <summary>The sweep as the run list shows it: finished (results written), stopping, or how many trials are
    /// recorded so far.</summary>
    public async Task<RunListing?> GetAsync(string sweepId, CancellationToken cancellationToken = default)
    {
        if (!await SweepSteps.IsSweepAsync(store, sweepId, cancellationToken)) return null;
        var results = SweepPaths.Result(sweepId, "sweep.json");
        bool done = await store.GetInfoAsync(results, cancellationToken) is not null;
        var control = await store.GetInfoAsync(RunPaths.Control(sweepId), cancellationToken) is null ? null
            : JsonNode.Parse(await store.ReadAllBytesAsync(RunPaths.Control(sweepId), cancellationToken));
        var journal = await new RunJournal(store, sweepId).EntriesAsync(SweepJson.Default.SweepJournalEntry,
            cancellationToken);
        int recorded = journal.OfType<TrialEntry>().Count();
        int total = 0;
        try
        {
            total = (int)(await new SweepSteps(store).ReadSpecAsync(sweepId, cancellationToken)).TrialCount;
        }
        catch (ScaleGrowException)
        {
            // A spec that no longer parses (e.g. a preset renamed since): still listed, so it can be deleted.
        }
        string status = done ? "completed" : (bool?)control?["stop"] == true ? "stopping"
            : journal.Count == 0 ? "submitted" : "incomplete";
        return new RunListing(sweepId, status, null, 0, 0, null, null, done ? results : null)
        {
            Kind = "sweep", Trials = total, TrialsFinished = recorded,
        };
    }

    public static JsonObject ToJson(IReadOnlyList<SweepTrialView> trials) => new()
    {
        ["trials"] = JsonSerializer.SerializeToNode(trials.ToList(), SweepCatalogJson.Default.ListSweepTrialView),
    };
}

[System.Text.Json.Serialization.JsonSourceGenerationOptions(
    PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
[System.Text.Json.Serialization.JsonSerializable(typeof(List<SweepTrialView>))]
internal partial class SweepCatalogJson : System.Text.Json.Serialization.JsonSerializerContext;

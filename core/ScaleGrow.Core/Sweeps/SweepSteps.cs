using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using ScaleGrow.Runs;
using ScaleGrow.Storage;

namespace ScaleGrow.Sweeps;

/// <summary>
/// The steps (activities) of a sweep over an artifact store: plan, prepare a trial (register it, or find how far an
/// earlier process got with it), record its outcome, read running trials' progress for early stopping, stop trials,
/// and write the results (sweep.json, sweep.md, pareto.png). Each is idempotent; the trials themselves are ordinary
/// growth runs (<see cref="RunSteps"/>).
/// </summary>
public sealed class SweepSteps(IArtifactStore store)
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Writes a sweep's spec (validated) so its orchestration can start; refuses to overwrite another one.</summary>
    public static async Task SubmitAsync(IArtifactStore store, string sweepId, SweepSpec spec,
        CancellationToken cancellationToken = default)
    {
        SweepPaths.ValidateSweepId(sweepId);
        var bytes = Encoding.UTF8.GetBytes(spec.Json);
        string path = SweepPaths.Spec(sweepId);
        if (await store.GetInfoAsync(path, cancellationToken) is not null)
        {
            if ((await store.ReadAllBytesAsync(path, cancellationToken)).AsSpan().SequenceEqual(bytes)) return;
            throw new InvalidSpecException($"sweep '{sweepId}' already exists with a different spec");
        }
        await store.WriteAsync(path, bytes, ArtifactWriteOptions.IfNotExists, cancellationToken);
    }

    public static async Task<bool> IsSweepAsync(IArtifactStore store, string id, CancellationToken cancellationToken = default) =>
        await store.GetInfoAsync(SweepPaths.Spec(id), cancellationToken) is not null;

    public async Task<SweepSpec> ReadSpecAsync(string sweepId, CancellationToken cancellationToken = default)
    {
        string path = SweepPaths.Spec(sweepId);
        return SweepSpec.Parse(Encoding.UTF8.GetString(await store.ReadAllBytesAsync(path, cancellationToken)), path);
    }

    public async Task<SweepPlan> PlanAsync(PlanSweepInput input, CancellationToken cancellationToken = default)
    {
        var spec = await ReadSpecAsync(input.SweepId, cancellationToken);
        var journal = new RunJournal(store, input.SweepId);
        // The first start's time stays: a resumed sweep's wall-clock budget counts from when it began.
        var started = (await journal.EntriesAsync(SweepJson.Default.SweepJournalEntry, cancellationToken))
            .OfType<SweepStartedEntry>().FirstOrDefault();
        DateTime startedUtc = started is null ? DateTime.UtcNow : DateTime.Parse(started.At).ToUniversalTime();
        if (started is null)
            await journal.UpsertAsync<SweepJournalEntry>("started", new SweepStartedEntry(startedUtc.ToString("O")),
                SweepJson.Default.SweepJournalEntry, cancellationToken);
        int trials = (int)Math.Min(spec.TrialCount, spec.BudgetTrials ?? int.MaxValue);
        return new SweepPlan(trials, spec.Parallel, spec.BudgetWallClockSeconds, startedUtc, spec.EarlyStopping);
    }

    public async Task<PrepareTrialResult> PrepareTrialAsync(PrepareTrialInput input,
        CancellationToken cancellationToken = default)
    {
        string runId = SweepPaths.TrialId(input.SweepId, input.Index);
        if (await RecordedAsync(input.SweepId, input.Index, cancellationToken) is { } recorded)
            return new PrepareTrialResult(runId, TrialStart.Done, null, null, recorded);
        var control = await ControlAsync(input.SweepId, cancellationToken);
        if (control.Stop || control.Delete) return new PrepareTrialResult(runId, TrialStart.Skip, null, null, null);
        // Finished before the sweep could record it (a process killed in between): record it now, never re-run it.
        if (await store.GetInfoAsync(RunPaths.Final(runId, "report.json"), cancellationToken) is not null)
        {
            var done = await RecordTrialAsync(new RecordTrialInput(input.SweepId, input.Index, false, null, null, false),
                cancellationToken);
            return new PrepareTrialResult(runId, TrialStart.Done, null, null, done.Trial);
        }
        string instancePath = $"{RunPaths.Container}/{runId}/instance.json";
        GrowthRunState? state = null;
        string instanceId = runId;
        if (await store.GetInfoAsync(RunPaths.Spec(runId), cancellationToken) is null)
        {
            var spec = await ReadSpecAsync(input.SweepId, cancellationToken);
            var trialSpec = spec.TrialSpec(input.Index, out _);
            if (spec.TrialSeconds is { } seconds) trialSpec = WithTimeBudget(trialSpec, seconds);
            await RunSteps.SubmitAsync(store, runId, trialSpec, cancellationToken);
        }
        else
        {
            // Started by an earlier process: continue from its own last growth cycle, under a new instance id.
            var entries = await new RunJournal(store, runId).RunEntriesAsync(cancellationToken);
            state = entries.OfType<StateEntry>().MaxBy(e => e.Step)?.State;
            string? previous = await store.GetInfoAsync(instancePath, cancellationToken) is null ? null
                : (string?)JsonNode.Parse(await store.ReadAllBytesAsync(instancePath, cancellationToken))?["instanceId"];
            if (previous is not null)
            {
                int dot = previous.LastIndexOf(".r", StringComparison.Ordinal);
                int n = dot > 0 && int.TryParse(previous.AsSpan(dot + 2), out int k) ? k + 1 : 1;
                instanceId = $"{runId}.r{n}";
            }
        }
        await RunCatalog.WriteControlAsync(store, runId, stop: false, delete: false, cancellationToken);
        await store.WriteAsync(instancePath,
            Encoding.UTF8.GetBytes(new JsonObject { ["instanceId"] = instanceId }.ToJsonString()), null, cancellationToken);
        return new PrepareTrialResult(runId, TrialStart.Run, instanceId, state, null);
    }

    /// <summary>
    /// Equal wall time: a fixed-size trial trains as many epochs as fit in <paramref name="seconds"/> at its measured
    /// time per epoch on this machine (<see cref="EpochProbe"/>, as bench §3 gave the baselines the growth runs' time).
    /// </summary>
    private static RunSpec WithTimeBudget(RunSpec spec, double seconds)
    {
        if (spec.Kind != RunKind.Train) return spec;
        double perEpoch = EpochProbe.SecondsPerEpoch(spec);
        return spec with { Epochs = Math.Clamp((int)Math.Round(seconds / perEpoch), 1, 10000) };
    }

    public async Task<RecordTrialResult> RecordTrialAsync(RecordTrialInput input,
        CancellationToken cancellationToken = default)
    {
        string runId = SweepPaths.TrialId(input.SweepId, input.Index);
        var spec = await ReadSpecAsync(input.SweepId, cancellationToken);
        spec.TrialSpec(input.Index, out var values);
        string reportPath = RunPaths.Final(runId, "report.json");
        JsonObject? report = input.Error is null && await store.GetInfoAsync(reportPath, cancellationToken) is not null
            ? JsonNode.Parse(await store.ReadAllBytesAsync(reportPath, cancellationToken))!.AsObject()
            : null;
        string? stopReason = (string?)report?["stopReason"];
        // Stopped by the sweep: its orchestration decided so, or `runs stop SWEEP` from another process set the
        // sweep's flag, which the trial's training step saw before the orchestration did.
        bool sweepStopped = input.StoppedBySweep || (await ControlAsync(input.SweepId, cancellationToken)).Stop;
        string status = input.Error is not null ? "failed"
            : report is null ? input.Deleted ? "deleted" : "failed"
            : input.PrunedReason is not null ? "pruned"
            : sweepStopped && stopReason?.StartsWith("stop requested", StringComparison.Ordinal) == true ? "stopped"
            : "completed";
        var epochs = report?["epochHistory"]?.AsArray().Select(e => (double)e!["validationAccuracy"]!).ToList()
                     ?? (await new RunCatalog(store).EpochsAsync(runId, cancellationToken))
                     .Select(e => e.ValidationAccuracy).ToList();
        var trial = new SweepTrialResult
        {
            Index = input.Index, RunId = runId, Status = status,
            Configuration = SweepSpec.ConfigurationOf(values),
            Axes = values.ToDictionary(v => v.Path, v => v.Value),
            Seed = (long?)report?["seed"], Arch = (string?)report?["finalArch"],
            Parameters = (long?)report?["parameters"], ParametersFused = (long?)report?["parametersFused"],
            Flops = (long?)report?["flops"], LatencyMsBatch1 = (double?)report?["latencyMsBatch1"],
            LatencyMsBatch64 = (double?)report?["latencyMsBatch64"], Accuracy = (double?)report?["accuracy"],
            WallSeconds = (double?)report?["wallSeconds"], Epochs = (int?)report?["epochs"] ?? epochs.Count,
            Growths = (int?)report?["growths"] ?? 0,
            StopReason = input.PrunedReason is { } pruned ? $"{pruned}; then {stopReason}" : stopReason,
            Error = input.Error ?? (report is null && !input.Deleted ? "the trial ended without a report" : null),
            ValidationAccuracies = epochs,
        };
        if (report is not null)
        {
            // The trial's own report says it belongs to a sweep and how it ended there (pruned trials are marked).
            report["sweep"] = new JsonObject
            {
                ["sweepId"] = input.SweepId, ["index"] = input.Index, ["status"] = status,
                ["configuration"] = trial.Configuration, ["prunedReason"] = input.PrunedReason,
            };
            await store.WriteAsync(reportPath,
                JsonSerializer.SerializeToUtf8Bytes(report, Indented), null,
                cancellationToken);
        }
        await new RunJournal(store, input.SweepId).UpsertAsync<SweepJournalEntry>($"trial-{input.Index:000}",
            new TrialEntry(input.Index, trial), SweepJson.Default.SweepJournalEntry, cancellationToken);
        var control = await ControlAsync(input.SweepId, cancellationToken);
        return new RecordTrialResult(trial, control.Delete);
    }

    /// <summary>Sets the stop flag of each trial: its training step halts between batches, then it fuses and reports.</summary>
    public async Task<bool> StopTrialsAsync(StopTrialsInput input, CancellationToken cancellationToken = default)
    {
        foreach (var runId in input.RunIds)
            await RunCatalog.WriteControlAsync(store, runId, stop: true, delete: false, cancellationToken);
        return true;
    }

    public async Task<SweepSummary> FinishAsync(FinishSweepInput input, CancellationToken cancellationToken = default)
    {
        var spec = await ReadSpecAsync(input.SweepId, cancellationToken);
        var trials = await TrialsAsync(input.SweepId, spec, cancellationToken);
        var results = SweepReport.Results(input.SweepId, spec, trials, input.StopReason, input.WallSeconds);
        string json = SweepPaths.Result(input.SweepId, "sweep.json"), md = SweepPaths.Result(input.SweepId, "sweep.md"),
            png = SweepPaths.Result(input.SweepId, "pareto.png");
        await store.WriteAsync(json, JsonSerializer.SerializeToUtf8Bytes(results,
            Indented), null, cancellationToken);
        await store.WriteAsync(md, Encoding.UTF8.GetBytes(SweepReport.Markdown(input.SweepId, trials, results)), null,
            cancellationToken);
        await store.WriteAsync(png, SweepReport.Pareto(input.SweepId, trials), null, cancellationToken);
        return new SweepSummary
        {
            SweepId = input.SweepId, Trials = trials.Count,
            ByStatus = trials.GroupBy(t => t.Status).ToDictionary(g => g.Key, g => g.Count()),
            StopReason = input.StopReason, WallSeconds = input.WallSeconds,
            TrialSeconds = trials.Sum(t => t.WallSeconds ?? 0), Results = json, Table = md, Plot = png,
        };
    }

    /// <summary>Every trial of the plan: its journaled result, or "not-started".</summary>
    public async Task<IReadOnlyList<SweepTrialResult>> TrialsAsync(string sweepId, SweepSpec spec,
        CancellationToken cancellationToken = default)
    {
        var recorded = (await new RunJournal(store, sweepId).EntriesAsync(SweepJson.Default.SweepJournalEntry,
                cancellationToken))
            .OfType<TrialEntry>().Select(e => e.Trial).ToDictionary(t => t.Index);
        int count = (int)Math.Min(spec.TrialCount, spec.BudgetTrials ?? int.MaxValue);
        var list = new List<SweepTrialResult>();
        for (int i = 0; i < (int)spec.TrialCount; i++)
        {
            if (recorded.TryGetValue(i, out var t)) { list.Add(t); continue; }
            spec.TrialSpec(i, out var values);
            list.Add(new SweepTrialResult
            {
                Index = i, RunId = SweepPaths.TrialId(sweepId, i), Status = i < count ? "not-started" : "over-budget",
                Configuration = SweepSpec.ConfigurationOf(values), Axes = values.ToDictionary(v => v.Path, v => v.Value),
            });
        }
        return list;
    }

    private async Task<SweepTrialResult?> RecordedAsync(string sweepId, int index, CancellationToken cancellationToken)
    {
        var trial = (await new RunJournal(store, sweepId).EntriesAsync(SweepJson.Default.SweepJournalEntry,
                cancellationToken))
            .OfType<TrialEntry>().FirstOrDefault(e => e.Key == $"trial-{index:000}")?.Trial;
        // A trial the sweep deleted or failed to record completely is prepared again; everything else is final.
        return trial is { Status: not "deleted" } ? trial : null;
    }

    private async Task<(bool Stop, bool Delete)> ControlAsync(string sweepId, CancellationToken cancellationToken)
    {
        string path = RunPaths.Control(sweepId);
        if (await store.GetInfoAsync(path, cancellationToken) is null) return (false, false);
        var node = JsonNode.Parse(await store.ReadAllBytesAsync(path, cancellationToken));
        return ((bool?)node?["stop"] == true, (bool?)node?["delete"] == true);
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, AllowOutOfOrderMetadataProperties = true)]
[JsonSerializable(typeof(SweepTrialResult))]
[JsonSerializable(typeof(SweepJournalEntry))]
[JsonSerializable(typeof(GrowthRunState))]
internal partial class SweepJson : JsonSerializerContext;

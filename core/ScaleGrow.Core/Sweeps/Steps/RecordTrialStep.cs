using System.Text.Json;
using System.Text.Json.Nodes;
using ScaleGrow.Runs;

namespace ScaleGrow.Sweeps;

/// <summary>How a child orchestration ended, as the sweep saw it.</summary>
public sealed record RecordTrialInput(string SweepId, int Index, bool Deleted, string? Error, string? PrunedReason,
    bool StoppedBySweep);

/// <summary>The recorded trial, and whether the sweep itself was deleted meanwhile (then it ends at once).</summary>
public sealed record RecordTrialResult(SweepTrialResult Trial, bool SweepDeleted);

/// <summary>The <c>RecordTrial</c> activity of a sweep (see <see cref="RunAsync"/>).</summary>
public sealed class RecordTrialStep(SweepSteps sweeps)
{
    /// <summary>The activity's name, as the sweep orchestration calls it.</summary>
    public const string Name = "RecordTrial";

    private SweepSteps Context { get; } = sweeps;

    public async Task<RecordTrialResult> RunAsync(RecordTrialInput input,
        CancellationToken cancellationToken = default)
    {
        string runId = SweepPaths.TrialId(input.SweepId, input.Index);
        var spec = await Context.ReadSpecAsync(input.SweepId, cancellationToken);
        spec.TrialSpec(input.Index, out var values);
        string reportPath = RunPaths.Final(runId, "report.json");
        JsonObject? report = input.Error is null && await Context.Store.GetInfoAsync(reportPath, cancellationToken) is not null
            ? JsonNode.Parse(await Context.Store.ReadAllBytesAsync(reportPath, cancellationToken))!.AsObject()
            : null;
        string? stopReason = (string?)report?["stopReason"];
        // Stopped by the sweep: its orchestration decided so, or `runs stop SWEEP` from another process set the
        // sweep's flag, which the trial's training step saw before the orchestration did.
        bool sweepStopped = input.StoppedBySweep || (await Context.ControlAsync(input.SweepId, cancellationToken)).Stop;
        string status = input.Error is not null ? "failed"
            : report is null ? input.Deleted ? "deleted" : "failed"
            : input.PrunedReason is not null ? "pruned"
            : sweepStopped && stopReason?.StartsWith("stop requested", StringComparison.Ordinal) == true ? "stopped"
            : "completed";
        var epochs = report?["epochHistory"]?.AsArray().Select(e => (double)e!["validationAccuracy"]!).ToList()
                     ?? (await new RunCatalog(Context.Store).EpochsAsync(runId, cancellationToken))
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
            await Context.Store.WriteAsync(reportPath,
                JsonSerializer.SerializeToUtf8Bytes(report, SweepSteps.Indented), null,
                cancellationToken);
        }
        await new RunJournal(Context.Store, input.SweepId).UpsertAsync<SweepJournalEntry>($"trial-{input.Index:000}",
            new TrialEntry(input.Index, trial), SweepJson.Default.SweepJournalEntry, cancellationToken);
        var control = await Context.ControlAsync(input.SweepId, cancellationToken);
        return new RecordTrialResult(trial, control.Delete);
    }

}

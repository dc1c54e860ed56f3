using System.Text.Json.Serialization;
using ScaleGrow.Runs;

namespace ScaleGrow.Sweeps;

// Small records between the sweep orchestration and its activities (SweepSteps): ids, counts, metrics — no specs of
// every trial, no tensors (docs/architecture.md, "Who may depend on whom").

/// <summary>What the orchestrator needs to schedule a sweep.</summary>
public sealed record SweepPlan(int Trials, int Parallel, double? WallClockSeconds, DateTime StartedUtc,
    EarlyStoppingOptions? EarlyStopping);

public sealed record PlanSweepInput(string SweepId);

public sealed record PrepareTrialInput(string SweepId, int Index);

public enum TrialStart
{
    /// <summary>Start (or continue) the trial as a child orchestration.</summary>
    [JsonStringEnumMemberName("run")] Run,
    /// <summary>Finished before (its result is journaled): never run again.</summary>
    [JsonStringEnumMemberName("done")] Done,
    /// <summary>The sweep is stopping: do not start it.</summary>
    [JsonStringEnumMemberName("skip")] Skip,
}

/// <summary>How a trial starts: a fresh run (<see cref="State"/> null) or the continuation of its own last journaled
/// growth cycle, under a new instance id when an earlier instance exists.</summary>
public sealed record PrepareTrialResult(string RunId, TrialStart Start, string? InstanceId, GrowthRunState? State,
    SweepTrialResult? Done);

/// <summary>One trial's outcome, as sweep.json lists it.</summary>
public sealed record SweepTrialResult
{
    public required int Index { get; init; }
    public required string RunId { get; init; }

    /// <summary><c>completed</c>, <c>pruned</c> (ASHA), <c>stopped</c> (the sweep was stopped or ran out of time),
    /// <c>failed</c>, <c>deleted</c> or <c>not-started</c>.</summary>
    public required string Status { get; init; }
    public string Configuration { get; init; } = "";
    public IReadOnlyDictionary<string, string> Axes { get; init; } = new Dictionary<string, string>();
    public long? Seed { get; init; }
    public string? Arch { get; init; }
    public long? Parameters { get; init; }
    public long? ParametersFused { get; init; }
    public long? Flops { get; init; }
    public double? LatencyMsBatch1 { get; init; }
    public double? LatencyMsBatch64 { get; init; }
    public double? Accuracy { get; init; }
    public double? WallSeconds { get; init; }
    public int Epochs { get; init; }
    public int Growths { get; init; }
    public string? StopReason { get; init; }
    public string? Error { get; init; }

    /// <summary>Validation accuracy after each epoch (what ASHA compares at its rungs).</summary>
    public IReadOnlyList<double> ValidationAccuracies { get; init; } = [];
}

/// <summary>How a child orchestration ended, as the sweep saw it.</summary>
public sealed record RecordTrialInput(string SweepId, int Index, bool Deleted, string? Error, string? PrunedReason,
    bool StoppedBySweep);

/// <summary>The recorded trial, and whether the sweep itself was deleted meanwhile (then it ends at once).</summary>
public sealed record RecordTrialResult(SweepTrialResult Trial, bool SweepDeleted);

/// <summary>What a trial tells its sweep after each training step: validation accuracy after each epoch it trained
/// (epoch counts from 1), so early stopping can judge it at its rungs as soon as it reaches them.</summary>
public sealed record TrialEpochs(string RunId, IReadOnlyList<int> Epochs, IReadOnlyList<double> ValidationAccuracies);

public sealed record StopTrialsInput(string SweepId, IReadOnlyList<string> RunIds);

public sealed record FinishSweepInput(string SweepId, string? StopReason, double WallSeconds);

/// <summary>A finished sweep, as its orchestration returns it.</summary>
public sealed record SweepSummary
{
    public required string SweepId { get; init; }
    public required int Trials { get; init; }
    public required IReadOnlyDictionary<string, int> ByStatus { get; init; }
    public string? StopReason { get; init; }
    public double WallSeconds { get; init; }

    /// <summary>Sum of the trials' own wall times (the compute the sweep orchestrated).</summary>
    public double TrialSeconds { get; init; }
    public required string Results { get; init; }
    public required string Table { get; init; }
    public required string Plot { get; init; }
}

/// <summary>What a sweep publishes as custom status: counts and the trials running now.</summary>
public sealed record SweepStatus(string Phase, int Trials, int Finished, int Failed, int Pruned,
    IReadOnlyList<string> Running, string? StopReason);

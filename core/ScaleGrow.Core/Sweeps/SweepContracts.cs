using System.Text.Json.Serialization;
using ScaleGrow.Runs;

namespace ScaleGrow.Sweeps;

// Small records between the sweep orchestration and its activities (SweepSteps): ids, counts, metrics — no specs of
// every trial, no tensors (docs/architecture.md, "Who may depend on whom").

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

/// <summary>What a trial tells its sweep after each training step: validation accuracy after each epoch it trained
/// (epoch counts from 1), so early stopping can judge it at its rungs as soon as it reaches them.</summary>
public sealed record TrialEpochs(string RunId, IReadOnlyList<int> Epochs, IReadOnlyList<double> ValidationAccuracies);

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

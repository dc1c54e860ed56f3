using System.Text.Json.Serialization;
using ScaleGrow.Growth;
using ScaleGrow.Training;

namespace ScaleGrow.Runs;

// Small records that cross the boundary between the orchestrator and the steps (activities). They carry artifact
// names and metrics, never tensors (DESIGN.md "State lives in blobs").

/// <summary>A model checkpoint and its optimizer state, by artifact path, produced at step <see cref="Step"/>.</summary>
public sealed record RunCheckpoint(int Step, string Model, string Optimizer);

/// <summary>Where training stands: the next epoch to run and the first batch of it (mid-epoch resumption).</summary>
public sealed record TrainingPosition(int Epoch, int Batch)
{
    public static readonly TrainingPosition Start = new(0, 0);
}

/// <summary>
/// The learning-rate schedule's segment: cosine from <see cref="Initial"/> to <see cref="Minimum"/> over
/// <see cref="Epochs"/> epochs starting at global epoch <see cref="StartEpoch"/>; warm-up only in the first segment.
/// When growth stops early, fine-tuning starts a new segment from the current rate (see docs/growth.md).
/// </summary>
public sealed record ScheduleSegment(double Initial, double Minimum, int StartEpoch, double Epochs, double WarmupEpochs)
{
    public LearningRateSchedule For(long stepsPerEpoch) => new(Initial, Minimum,
        (long)Math.Ceiling(Epochs * stepsPerEpoch), (long)Math.Ceiling(WarmupEpochs * stepsPerEpoch),
        Offset: (long)StartEpoch * stepsPerEpoch);
}

/// <summary>What happened in one epoch of a run.</summary>
public sealed record EpochRecord
{
    public required int Epoch { get; init; }
    public required string Phase { get; init; }
    public required double TrainLoss { get; init; }
    public required double TrainAccuracy { get; init; }
    public required double ValidationLoss { get; init; }
    public required double ValidationAccuracy { get; init; }
    public required double Seconds { get; init; }
    public required double LearningRate { get; init; }
    public required string Arch { get; init; }
    public required long Parameters { get; init; }

    /// <summary>Where the epoch trained (<see cref="Training.ComputeDevice.Name"/>); null in runs from before devices.</summary>
    public string? Device { get; init; }

    /// <summary>The precision the epoch trained in (fp32 where bf16/fp16 fell back on a CPU); null before devices.</summary>
    public string? Precision { get; init; }
}

public enum RunKind
{
    /// <summary>Fixed-size training of a given architecture.</summary>
    [JsonStringEnumMemberName("train")] Train,
    /// <summary>AdaGrow: grow from a seed model (algorithm 3-1).</summary>
    [JsonStringEnumMemberName("grow")] Grow,
    /// <summary>ScaleNet: (pre)train, expand deeper with shared layers and adapters, train on.</summary>
    [JsonStringEnumMemberName("scale")] Scale,
}

/// <summary>What the orchestrator needs from a run's spec to make its decisions (no data paths, no tensors).</summary>
public sealed record RunSettings
{
    public required RunKind Kind { get; init; }
    public required long Seed { get; init; }
    public required GrowthOptions Growth { get; init; }
    public required TrainingOptions Training { get; init; }

    /// <summary>Epochs of a fixed-size training run.</summary>
    public int Epochs { get; init; }

    /// <summary>Upper bound on a single TrainInterval's duration (long intervals are split and checkpointed).</summary>
    public double MaxIntervalSeconds { get; set; } = 600;

    public bool Quantize { get; init; }

    /// <summary>Export the final models as ONNX (the spec's <c>export</c> section).</summary>
    public bool Export { get; init; }

    /// <summary>Scale runs: epochs before the expansion (0: the run starts from a pretrained checkpoint).</summary>
    public int PretrainEpochs { get; init; }
}

public sealed record ExpandInput(string RunId, RunCheckpoint Checkpoint, int Step);

/// <summary>The expanded model's checkpoint (fresh optimizer state) and its size before and after.</summary>
public sealed record ExpandResult(RunCheckpoint Checkpoint, string ArchitectureJson, string Arch, long Parameters,
    long ParametersBefore);

public sealed record InitializeRunInput(string RunId);

/// <param name="Device">Where the model was built (<see cref="Training.ComputeDevice.Name"/>).</param>
public sealed record InitializeRunResult(RunCheckpoint Checkpoint, string ArchitectureJson, string Arch,
    long Parameters, RunSettings Settings, string? Device = null);

public sealed record TrainIntervalInput(string RunId, RunCheckpoint Checkpoint, int Step, TrainingPosition Position,
    int UntilEpoch, ScheduleSegment Schedule, string Phase, double MaxSeconds);

public sealed record TrainIntervalResult(RunCheckpoint Checkpoint, TrainingPosition Position,
    IReadOnlyList<EpochRecord> Epochs, bool StopRequested, bool DeleteRequested, string? Device = null);

public sealed record ScoreImportanceInput(string RunId, RunCheckpoint Checkpoint);

public sealed record InsertModuleInput(string RunId, RunCheckpoint Checkpoint, int Step, string GrownArchitectureJson,
    GrowthAction Action, InitOptions Init, long Seed, int Epoch);

public sealed record InsertModuleResult(string Model, GrowthAction Action, string ArchitectureJson, string Arch,
    long Parameters, long ParametersFused);

/// <param name="Reset">Parameters whose values were rewritten (a branch merge): their moments start at zero.</param>
public sealed record MigrateOptimizerInput(string RunId, RunCheckpoint Checkpoint, int Step, string NewModel,
    OptimizerMigrationStrategy Strategy, IReadOnlyList<string>? Reset = null);

/// <summary>Merge a CNN's branches into their main Conv-BN before fine-tuning (growth.fineTuneBranches = merge).</summary>
public sealed record MergeBranchesInput(string RunId, RunCheckpoint Checkpoint, int Step, long Seed, int Epoch);

/// <summary>
/// The merged model, or <see cref="Model"/> = null when there was nothing to merge (no unit has more than its main
/// branch). <see cref="Rewritten"/>: the parameters whose values the merge rewrote.
/// </summary>
public sealed record MergeBranchesResult(string? Model, string ArchitectureJson, string Arch, long Parameters,
    long ParametersFused, IReadOnlyList<string> Rewritten);

public sealed record FuseInput(string RunId, RunCheckpoint Checkpoint);

/// <param name="Device">Where the fusion computed (read from the fused model's parameters).</param>
public sealed record FuseResult(string FusedModel, long Parameters, long ParametersFused, string? Device = null);

public sealed record EvaluateInput(string RunId, string Model, bool MeasureLatency);

public sealed record EvaluationResult
{
    /// <summary>Classification accuracy; for language models, top-1 next-token accuracy.</summary>
    public required double Accuracy { get; init; }

    /// <summary>Mean loss per sample (per target token for language models).</summary>
    public required double Loss { get; init; }

    /// <summary>Language models: exp(<see cref="Loss"/>), per token of the run's tokenizer.</summary>
    public double? Perplexity { get; init; }

    /// <summary>Test samples (target tokens for language models).</summary>
    public required long Samples { get; init; }
    public required long Parameters { get; init; }
    public required long Flops { get; init; }
    public double? LatencyMsBatch1 { get; init; }
    public double? LatencyMsBatch64 { get; init; }

    /// <summary>Where the model was measured (the latencies are this device's), read from the model's parameters.</summary>
    public string? Device { get; init; }

    /// <summary>Intra-op threads of the process that measured it (CPU latency depends on them).</summary>
    public int? Threads { get; init; }
}

public sealed record FinalizeInput(string RunId, string Model, string FusedModel, EvaluationResult Evaluation,
    string? StopReason, double WallSeconds, QuantizeModelResult? Quantized = null, ExportModelResult? Exported = null);

public sealed record QuantizeModelInput(string RunId, string FusedModel);

/// <summary>Export the fused final model (and the quantized one, when there is one) as ONNX.</summary>
public sealed record ExportModelInput(string RunId, string FusedModel, string? QuantizedModel);

/// <summary>The exported files: <c>final/model.onnx</c>, <c>final/model.w{bits}.onnx</c>, and a text model's
/// tokenizer <c>final/model.tokenizer.json</c>.</summary>
public sealed record ExportModelResult(string Onnx, long Bytes, string? QuantizedOnnx, long? QuantizedBytes,
    string? Tokenizer, int Opset, IReadOnlyList<string> Notes);

/// <summary>The quantized final model (packed checkpoint) and its headline numbers; the full report is a blob.</summary>
public sealed record QuantizeModelResult(string Model, string Report, string Method, int Bits, double? AccuracyBefore,
    double? AccuracyAfter, long Fp32Bytes, long QuantizedBytes);

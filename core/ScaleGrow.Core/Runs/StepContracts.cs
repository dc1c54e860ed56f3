using System.Text.Json.Serialization;
using ScaleGrow.Growth;
using ScaleGrow.Training;

namespace ScaleGrow.Runs;

// Small records that cross the boundary between the orchestrator and the steps (activities). They carry artifact
// names and metrics, never tensors (docs/architecture.md "A run's life").

/// <summary>A model checkpoint and its optimizer state, by artifact path, produced at step <see cref="Step"/>.</summary>
public sealed record RunCheckpoint(int Step, string Model, string Optimizer);

/// <summary>
/// Where training stands: the next epoch to run and the first batch of it (mid-epoch resumption), and what the
/// activities before trained of that epoch (<see cref="Partial"/>, null at an epoch's start), so the epoch's record
/// covers all of its batches when it is split across activities.
/// </summary>
public sealed record TrainingPosition(int Epoch, int Batch, PartialEpoch? Partial = null)
{
    public static readonly TrainingPosition Start = new(0, 0);
}

/// <summary>
/// Growth points inside an epoch (<see cref="GrowthOptions.IntervalsPerEpoch"/>): part <c>k</c> of <c>parts</c> ends at
/// batch <c>⌊k·batches/parts⌋</c>; part 0 is the epoch's start. Pure arithmetic, shared by the orchestrator (which
/// decides where to train to) and the TrainInterval step (which maps a part to a batch).
/// </summary>
public static class GrowthPoints
{
    public static int BatchOf(int part, int parts, int batches) => (int)((long)part * batches / parts);

    /// <summary>The first growth point after <paramref name="p"/>, as (epoch, part); part 0 is an epoch's start.</summary>
    public static (int Epoch, int Part) Next(TrainingPosition p, int parts, int batches)
    {
        if (parts <= 1) return (p.Epoch + 1, 0);
        if (p.Batch == 0) return (p.Epoch, 1);
        if (batches <= 0)
            throw new InvalidOperationException($"position {p.Epoch}/{p.Batch} inside an epoch of unknown length");
        for (int k = 1; k < parts; k++)
            if (BatchOf(k, parts, batches) > p.Batch) return (p.Epoch, k);
        return (p.Epoch + 1, 0);
    }

    /// <summary>Whether <paramref name="p"/> is before the point (epoch, part); a batch count of 0 = not known yet.</summary>
    public static bool Before(TrainingPosition p, int epoch, int part, int parts, int batches) =>
        p.Epoch < epoch || (p.Epoch == epoch && part > 0 && (p.Batch == 0 || p.Batch < BatchOf(part, parts, batches)));

    /// <summary>Whether <paramref name="p"/> (inside an epoch) is one of its growth points.</summary>
    public static bool IsInsideEpochPoint(TrainingPosition p, int parts, int batches)
    {
        if (p.Batch == 0 || parts <= 1 || batches <= 0) return false;
        for (int k = 1; k < parts; k++)
            if (BatchOf(k, parts, batches) == p.Batch) return true;
        return false;
    }
}

/// <summary>The validation at a growth point inside an epoch (the stopping rule's signal there).</summary>
public sealed record ValidationPoint(int Epoch, int Batch, double ValidationAccuracy, double ValidationLoss);

/// <summary>
/// The batches of an epoch trained so far, summed: an epoch longer than an activity's time limit is trained by several
/// <c>TrainInterval</c> activities, and its loss, accuracy and seconds are those of all of them.
/// </summary>
/// <param name="Correct">Right predictions (samples, or target tokens for a language model).</param>
public sealed record PartialEpoch(long Samples, double LossSum, long Correct, double Seconds)
{
    public static PartialEpoch Of(EpochMetrics metrics) => metrics.Samples == 0
        ? new PartialEpoch(0, 0, 0, metrics.Seconds)
        : new PartialEpoch(metrics.Samples, metrics.Loss * metrics.Samples,
            (long)Math.Round(metrics.Accuracy * metrics.Samples), metrics.Seconds);

    public PartialEpoch Add(PartialEpoch more) =>
        new(Samples + more.Samples, LossSum + more.LossSum, Correct + more.Correct, Seconds + more.Seconds);

    public double MeanLoss() => Samples > 0 ? LossSum / Samples : double.NaN;

    public double MeanAccuracy() => Samples > 0 ? (double)Correct / Samples : double.NaN;
}

/// <summary>
/// The learning-rate schedule's segment: cosine from <see cref="Initial"/> to <see cref="Minimum"/> over
/// <see cref="Epochs"/> epochs starting at global epoch <see cref="StartEpoch"/>; warm-up only in the first segment.
/// Fine-tuning starts a new segment from the current rate, unless <c>growth.fineTuneSchedule</c> is <c>continue</c>
/// and growth used its whole phase (docs/growth.md).
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

    /// <summary>Where the epoch trained (<see cref="ComputeDevice.Name"/>); null in runs from before devices.</summary>
    public string? Device { get; init; }

    /// <summary>The precision the epoch trained in (fp32 where bf16/fp16 fell back on a CPU); null before devices.</summary>
    public string? Precision { get; init; }

    /// <summary>
    /// When the epoch ended, validation included (UTC, ISO 8601), for time-to-accuracy plots: an activity that stops
    /// mid-epoch is journaled later than its last whole epoch ended. Null in runs from before this field.
    /// </summary>
    public string? EndedAt { get; init; }
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


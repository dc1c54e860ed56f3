using System.Text.Json.Serialization;

namespace ScaleGrow.Training;

public enum OptimizerKind
{
    [JsonStringEnumMemberName("sgd")] Sgd,
    [JsonStringEnumMemberName("adamw")] AdamW,
}

/// <summary>
/// The number format training computes in (<see cref="TrainingOptions.Precision"/>). Anything but
/// <see cref="Fp32"/> trains a low-precision working copy against fp32 master weights (<see cref="MixedPrecision"/>).
/// </summary>
public enum TrainingPrecision
{
    [JsonStringEnumMemberName("fp32")] Fp32,
    [JsonStringEnumMemberName("bf16")] Bf16,
    [JsonStringEnumMemberName("fp16")] Fp16,
}

/// <summary>
/// How a model is trained. Defaults are the thesis's CNN growth settings (table 3-18: SGD, initial LR 0.1, cosine);
/// the fixed-size baselines of the thesis used Adam 5e-3 with weight decay 5e-4 (also table 3-18).
/// </summary>
public sealed record TrainingOptions
{
    public OptimizerKind Optimizer { get; set; } = OptimizerKind.Sgd;
    public double LearningRate { get; set; } = 0.1;
    public double MinLearningRate { get; init; }
    public double Momentum { get; set; } = 0.9;
    public bool Nesterov { get; init; }
    public double WeightDecay { get; set; } = 5e-4;

    /// <summary>
    /// Apply weight decay to norm scales/shifts and biases too (PyTorch's default for SGD, and what the thesis's
    /// plain "SGD" implies). Under it, the γ of a scale-invariant BN shrinks unless the loss keeps it up — the
    /// network-slimming effect that makes |γ| informative about importance.
    /// </summary>
    public bool DecayNormsAndBiases { get; set; } = true;
    public double Beta1 { get; set; } = 0.9;
    public double Beta2 { get; set; } = 0.999;
    public double Epsilon { get; set; } = 1e-8;
    public int BatchSize { get; set; } = 128;
    public int EvalBatchSize { get; set; } = 500;
    public double LabelSmoothing { get; init; }
    public double WarmupEpochs { get; init; }

    /// <summary>
    /// Batches of training inputs over which every batch norm's running statistics are re-estimated after each epoch,
    /// before validation (and so before fusion, which folds them in); 0 turns it off. The EMA statistics training
    /// keeps lag the weights at high learning rates: on the quick run, eval-mode validation accuracy read 36.6 %
    /// where the re-estimated statistics gave 79.3 % (docs/growth.md). Cost, measured on the quick run: 3–10 s per
    /// epoch more than without it (about 10–25 % of an epoch of its 10.8k images, the most at the final, multi-branch
    /// size); a fixed cost per epoch, so a smaller share on larger training sets. Models without batch norms skip it.
    /// </summary>
    public int NormRecalibrationBatches { get; set; } = 20;

    /// <summary>
    /// fp32 (the default), or mixed precision with fp32 master weights (Micikevicius et al. 2018, "Mixed Precision
    /// Training"): bf16, or fp16 with dynamic loss scaling. fp32 stays the default until a GPU measurement shows bf16
    /// keeps the accuracy; on the CPU the low precisions are slow and meant for tests (docs/architecture.md).
    /// </summary>
    public TrainingPrecision Precision { get; set; } = TrainingPrecision.Fp32;

    public void Validate()
    {
        static void Check(bool ok, string message)
        {
            if (!ok) throw new InvalidSpecException("training: " + message);
        }
        // Upper bounds far above any useful value: 1e30 or 1e308 used to pass and fail only once training diverged (issue 16).
        Check(LearningRate is > 0 and <= 10, $"learningRate must be in (0, 10], got {LearningRate}");
        Check(MinLearningRate >= 0 && MinLearningRate <= LearningRate, "minLearningRate must be in [0, learningRate]");
        Check(Momentum is >= 0 and < 1, $"momentum must be in [0, 1), got {Momentum}");
        Check(WeightDecay is >= 0 and <= 1, $"weightDecay must be in [0, 1], got {WeightDecay}");
        Check(Beta1 is >= 0 and < 1 && Beta2 is >= 0 and < 1, "beta1 and beta2 must be in [0, 1)");
        Check(Epsilon > 0, "epsilon must be positive");
        Check(BatchSize is >= 1 and <= 65536, $"batchSize must be in 1..65536, got {BatchSize}");
        Check(EvalBatchSize is >= 1 and <= 65536, $"evalBatchSize must be in 1..65536, got {EvalBatchSize}");
        Check(LabelSmoothing is >= 0 and < 1, $"labelSmoothing must be in [0, 1), got {LabelSmoothing}");
        Check(WarmupEpochs is >= 0 and <= 10000, $"warmupEpochs must be in 0..10000, got {WarmupEpochs}");
        Check(NormRecalibrationBatches is >= 0 and <= 10000,
            $"normRecalibrationBatches must be in 0..10000, got {NormRecalibrationBatches}");
        // The string converter also takes integers: 7 would parse.
        Check(Enum.IsDefined(Precision), $"precision must be fp32, bf16 or fp16, got {(int)Precision}");
    }
}

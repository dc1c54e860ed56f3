using ScaleGrow.Training;

namespace ScaleGrow.Growth;

/// <summary>
/// How a growth run grows (algorithm 3-1). Defaults are the thesis's CNN settings (table 3-18): grow every 3 epochs,
/// one width growth then two depth growths (table 3-8), 70% of layers widened (table 3-3), greedy placement
/// (table 3-6), branches sampled at random with replacement (table 3-7), inherited initialisation (table 3-9) and
/// optimizer state (table 3-10).
/// </summary>
public sealed record GrowthOptions
{
    /// <summary>Epochs trained between growths (table 3-4: 3 for CNNs; table 3-13: 5 for Transformers).</summary>
    public int IntervalEpochs { get; set; } = 3;

    /// <summary>
    /// Growth points per epoch, with <see cref="IntervalEpochs"/> 1: 2 grows after every half epoch, so a run reaches
    /// its final size in half the epochs and trains longer at it. Each point is validated for the stopping rule, which
    /// then tests every interval of this length. Null (not written, so older specs keep their fingerprints) means 1.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public int? IntervalsPerEpoch { get; set; }

    /// <summary>Growth points per epoch in effect (<see cref="IntervalsPerEpoch"/>, 1 when not given).</summary>
    public int PointsPerEpoch() => IntervalsPerEpoch ?? 1;

    /// <summary>Growth kinds in turn: 'w' width, 'd' depth ("wdd" = one width per two depth growths).</summary>
    public string Pattern { get; set; } = "wdd";

    /// <summary>Maximum epochs of the growth phase (N in algorithm 3-1).</summary>
    public int MaxEpochs { get; set; } = 100;

    /// <summary>Fine-tuning epochs after growth stops (M in algorithm 3-1).</summary>
    public int FineTuneEpochs { get; init; }

    /// <summary>CNNs: fine-tune the grown branches (<c>keep</c>) or the plain network they merge into (<c>merge</c>).</summary>
    public FineTuneBranches FineTuneBranches { get; set; } = FineTuneBranches.Keep;

    /// <summary>
    /// The fine-tuning phase's learning rate: a new cosine from the current rate (<c>restart</c>, the default) or the
    /// run's planned cosine going on when growth used its whole phase (<c>continue</c>). Not written when it is the
    /// default, so the fingerprints of specs from before this option do not change.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public FineTuneSchedule FineTuneSchedule { get; set; } = FineTuneSchedule.Restart;

    public double WidthFraction { get; set; } = 0.7;
    public BranchSampling BranchSampling { get; set; } = BranchSampling.RandomWithReplacement;
    public DepthPlacement DepthPlacement { get; set; } = DepthPlacement.Greedy;

    /// <summary>Transformers: a new head (default) or wider heads (table 3-12).</summary>
    public TransformerWidthGrowth TransformerWidth { get; set; } = TransformerWidthGrowth.Heads;

    /// <summary>Wider-heads growth: per-head widening (0: seed head dim ÷ seed heads, filled in by the run spec).</summary>
    public int HeadDimStep { get; set; }
    public InitOptions Init { get; set; } = new();
    public OptimizerMigrationStrategy OptimizerMigration { get; set; } = OptimizerMigrationStrategy.Inherit;
    public StoppingOptions Stopping { get; set; } = new();

    public void Validate()
    {
        static void Check(bool ok, string message)
        {
            if (!ok) throw new InvalidSpecException("growth: " + message);
        }
        Check(IntervalEpochs is >= 1 and <= 10000, $"intervalEpochs must be in 1..10000, got {IntervalEpochs}");
        Check(IntervalsPerEpoch is null or >= 1 and <= 64, $"intervalsPerEpoch must be in 1..64, got {IntervalsPerEpoch}");
        Check(PointsPerEpoch() == 1 || IntervalEpochs == 1,
            $"intervalsPerEpoch {IntervalsPerEpoch} splits one-epoch intervals only: intervalEpochs must be 1, got {IntervalEpochs}");
        Check(!string.IsNullOrEmpty(Pattern) && Pattern.All(c => c is 'w' or 'd'),
            $"pattern must be a non-empty string of 'w' and 'd', got '{Pattern}'");
        Check(MaxEpochs is >= 1 and <= 10000, $"maxEpochs must be in 1..10000, got {MaxEpochs}");
        Check(HeadDimStep is >= 0 and <= 4096, $"headDimStep must be in 0..4096, got {HeadDimStep}");
        Check(FineTuneEpochs is >= 0 and <= 10000, $"fineTuneEpochs must be in 0..10000, got {FineTuneEpochs}");
        Check(WidthFraction is > 0 and <= 1, $"widthFraction must be in (0, 1], got {WidthFraction}");
        Check(Init.Scale > 0 && double.IsFinite(Init.Scale), $"init scale must be positive, got {Init.Scale}");
        Stopping.Validate();
    }

    public GrowthKind KindOfGrowth(int growthIndex) =>
        Pattern[growthIndex % Pattern.Length] == 'w' ? GrowthKind.Width : GrowthKind.Depth;
}

/// <summary>
/// When growth stops (thesis 3.3.2 (3)); any combination may be set and the first that holds stops growth.
/// </summary>
public sealed record StoppingOptions
{
    /// <summary>Target architecture, e.g. "VGG-2-2-2": each block grows up to its count, then growth stops.</summary>
    public string? TargetArch { get; init; }

    /// <summary>Parameter budget B: post-fusion parameters ≤ B and pre-fusion ≤ 1.5·B (a growth that would break it
    /// is not made, and growth stops).</summary>
    public long? ParameterBudget { get; init; }

    /// <summary>Automatic stopping on saturating validation accuracy (on by default, as in the thesis).</summary>
    public bool Auto { get; set; } = true;

    /// <summary>
    /// Minimum gain of the EMA-smoothed validation accuracy between two consecutive growths, in accuracy points
    /// (fraction of 1: 0.03 = 3 points, the thesis's default "3%").
    /// </summary>
    public double Threshold { get; set; } = 0.03;

    /// <summary>How many growths may fall short of the threshold before growth stops (thesis default 1: the second
    /// shortfall stops).</summary>
    public int Tolerance { get; set; } = 1;

    /// <summary>EMA weight of the history (our choice; the thesis does not state it): ema = β·ema + (1−β)·acc.</summary>
    public double EmaBeta { get; set; } = 0.7;

    /// <summary>Wall-clock budget for the growth phase, in seconds.</summary>
    public double? WallClockSeconds { get; init; }

    public void Validate()
    {
        if (ParameterBudget is <= 0) throw new InvalidSpecException("stopping: parameterBudget must be positive");
        if (Threshold is < 0 or > 1) throw new InvalidSpecException($"stopping: threshold must be in [0, 1], got {Threshold}");
        if (Tolerance < 0) throw new InvalidSpecException($"stopping: tolerance must be non-negative, got {Tolerance}");
        if (EmaBeta is < 0 or >= 1) throw new InvalidSpecException($"stopping: emaBeta must be in [0, 1), got {EmaBeta}");
        if (WallClockSeconds is <= 0) throw new InvalidSpecException("stopping: wallClockSeconds must be positive");
    }
}

using System.Text.Json.Serialization;

namespace ScaleGrow.Growth;

/// <summary>Where a depth growth inserts its layer (thesis 3.3.3 (1), table 3-6).</summary>
public enum DepthPlacement
{
    /// <summary>Most important block by |γ|, right after its most important layer (the thesis's choice).</summary>
    [JsonStringEnumMemberName("greedy")] Greedy,
    [JsonStringEnumMemberName("random")] Random,
    /// <summary>
    /// CNNs: the most important block other than the one that took the previous depth growth, appended at its end
    /// (the rule of the authors' public code).
    /// </summary>
    [JsonStringEnumMemberName("greedy-exclude-last")] GreedyExcludeLast,
    /// <summary>Blocks in turn, appending at the block's end.</summary>
    [JsonStringEnumMemberName("sequential")] Sequential,
    /// <summary>Transformers (table 3-11): before the first layer.</summary>
    [JsonStringEnumMemberName("first")] First,
    /// <summary>Transformers (table 3-11): after the last layer.</summary>
    [JsonStringEnumMemberName("last")] Last,
}

/// <summary>
/// What the fine-tuning phase trains after growth ends (CNNs). The thesis fine-tunes the multi-branch network and
/// fuses at the very end; merging first trains the plain network of the same architecture, which is cheaper per epoch.
/// </summary>
public enum FineTuneBranches
{
    /// <summary>Fine-tune the network as grown, every branch training (the thesis's algorithm 3-1).</summary>
    [JsonStringEnumMemberName("keep")] Keep,

    /// <summary>
    /// Merge every unit's branches into its main Conv-BN first (function-preserving, see
    /// <c>Models.Cnn.CnnBranchMerge</c>), then fine-tune the plain network.
    /// </summary>
    [JsonStringEnumMemberName("merge")] Merge,
}

/// <summary>
/// The learning rate of the fine-tuning phase (docs/growth.md, "Schedule and stopping"). A run plans one cosine over
/// <c>maxEpochs + fineTuneEpochs</c>; what happens to it when growth ends is this choice.
/// </summary>
public enum FineTuneSchedule
{
    /// <summary>
    /// Fine-tuning starts a new cosine from the current rate to the minimum over <c>fineTuneEpochs</c>, whether growth
    /// stopped early or used its whole phase (what every run did before this option; the default).
    /// </summary>
    [JsonStringEnumMemberName("restart")] Restart,

    /// <summary>
    /// When growth used its whole phase the planned cosine goes on, so the run's learning rate is, epoch by epoch, the
    /// one a fixed network trained for the same epochs gets; only when growth stops early does fine-tuning start a
    /// new cosine from the current rate (the planned one would not reach the minimum).
    /// </summary>
    [JsonStringEnumMemberName("continue")] Continue,
}

/// <summary>How a width growth picks the branch to add to a unit (thesis 3.3.3 (2), table 3-7).</summary>
public enum BranchSampling
{
    [JsonStringEnumMemberName("random-with-replacement")] RandomWithReplacement,
    [JsonStringEnumMemberName("random-without-replacement")] RandomWithoutReplacement,
    /// <summary>The branch most different from those the unit already has, never repeating one.</summary>
    [JsonStringEnumMemberName("greedy-without-replacement")] GreedyWithoutReplacement,
}

/// <summary>How parameters created by a growth are initialised (thesis 3.3.4 (1), table 3-9; 3-15).</summary>
public enum InitStrategy
{
    /// <summary>The initialiser the model's existing layers used (Kaiming for convolutions).</summary>
    [JsonStringEnumMemberName("inherit")] Inherit,
    [JsonStringEnumMemberName("zeros")] Zeros,
    /// <summary>U(−a, a) with a = <see cref="InitOptions.Scale"/>.</summary>
    [JsonStringEnumMemberName("uniform")] Uniform,
    /// <summary>N(0, σ) with σ = <see cref="InitOptions.Scale"/>.</summary>
    [JsonStringEnumMemberName("gaussian")] Gaussian,
    /// <summary>N(μ, σ) fitted to the same kind of tensor in neighbouring layers.</summary>
    [JsonStringEnumMemberName("gaussian-fit-local")] GaussianFitLocal,
    /// <summary>N(μ, σ) fitted to the same kind of tensor in all existing layers.</summary>
    [JsonStringEnumMemberName("gaussian-fit-global")] GaussianFitGlobal,
}

/// <summary>
/// Initialisation of new parameters. Every strategy applies to weight tensors (convolution and linear kernels, and
/// the new slices of widened ones); new norms start at γ = 1, β = 0 and new biases at 0 as in the model's own
/// initialiser — so <c>zeros</c> gives zero kernels under working norms, as the thesis's 40% result (table 3-9)
/// implies (zeroing the norms too would leave the new layer dead) — unless
/// <see cref="PreserveFunction"/> starts new norms at γ = 0 so that a growth leaves the function unchanged.
/// </summary>
public sealed record InitOptions
{
    public InitStrategy Strategy { get; set; } = InitStrategy.Inherit;

    /// <summary>a for uniform, σ for gaussian (table 3-9 tried 0.01, 0.1, 0.3).</summary>
    public double Scale { get; set; } = 0.1;

    public bool PreserveFunction { get; init; }
}

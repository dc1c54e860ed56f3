namespace ScaleGrow.Training;

/// <summary>
/// Dynamic loss scaling for fp16 training (Micikevicius et al. 2018, "Mixed Precision Training", section 3.2; the
/// schedule of PyTorch's GradScaler): the loss is multiplied by <see cref="Scale"/> before the backward pass so that
/// small gradients do not flush to zero in fp16, and the gradients are divided by it again in fp32. A step whose
/// gradients hold an infinity or a NaN is skipped and the scale halves; after <see cref="GrowthInterval"/> finite
/// steps in a row it doubles. bf16 has fp32's exponent range and needs none of this.
/// </summary>
public sealed class LossScaler
{
    /// <param name="initialScale">2^16, the paper's and GradScaler's starting point: high, so the first steps find
    /// the largest scale that does not overflow by halving.</param>
    /// <param name="growthInterval">Finite steps in a row before the scale doubles (GradScaler: 2000). Tests use a
    /// few.</param>
    /// <param name="minScale">The scale never drops below this. A step that overflows at the minimum means the
    /// unscaled fp16 gradients overflow: <see cref="Update"/> throws rather than skip every step from then on.</param>
    public LossScaler(double initialScale = 65536, int growthInterval = 2000, double minScale = 1)
    {
        if (!(minScale > 0) || !double.IsFinite(minScale))
            throw new ArgumentOutOfRangeException(nameof(minScale), minScale,
                "the minimum loss scale must be positive");
        if (!(initialScale >= minScale) || !double.IsFinite(initialScale))
            throw new ArgumentOutOfRangeException(nameof(initialScale), initialScale,
                $"the initial loss scale must be finite and at least the minimum {minScale}");
        if (growthInterval < 1)
            throw new ArgumentOutOfRangeException(nameof(growthInterval), growthInterval,
                "the growth interval must be at least one step");
        Scale = initialScale;
        GrowthInterval = growthInterval;
        MinScale = minScale;
    }

    /// <summary>What the loss is multiplied by before the backward pass.</summary>
    public double Scale { get; private set; }

    public int GrowthInterval { get; }
    public double MinScale { get; }

    /// <summary>Finite steps since the scale last changed (or since the last skipped step).</summary>
    public int FiniteStepsInARow { get; private set; }

    /// <summary>Steps skipped for non-finite gradients since this scaler was made.</summary>
    public long SkippedSteps { get; private set; }

    /// <summary>
    /// Records one step's outcome and moves the scale: ×0.5 (not below <see cref="MinScale"/>) on non-finite
    /// gradients, ×2 after <see cref="GrowthInterval"/> finite steps in a row. Returns whether the optimizer should
    /// step.
    /// </summary>
    public bool Update(bool gradientsFinite, long step)
    {
        if (gradientsFinite)
        {
            if (++FiniteStepsInARow >= GrowthInterval)
            {
                Scale *= 2;
                FiniteStepsInARow = 0;
            }
            return true;
        }
        if (Scale <= MinScale)
            throw new ScaleGrowException(
                $"training diverged: fp16 gradients are not finite at step {step} even at the minimum loss scale " +
                $"{MinScale:g3}; train in bf16 or fp32");
        Scale = Math.Max(MinScale, Scale * 0.5);
        FiniteStepsInARow = 0;
        SkippedSteps++;
        return false;
    }
}

using System.Globalization;
using ScaleGrow.Models;
using ScaleGrow.Models.Cnn;

namespace ScaleGrow.Growth;

/// <summary>
/// The small, deterministic state a growth run carries between steps for its decisions (the orchestrator keeps it;
/// no tensors). EMA values are validation accuracies as fractions.
/// </summary>
public sealed record GrowthProgress
{
    public int Epoch { get; init; }
    public int Growths { get; init; }
    public int WidthGrowths { get; init; }
    public int DepthGrowths { get; init; }

    /// <summary>The block the last depth growth went to (CNNs), for <see cref="DepthPlacement.GreedyExcludeLast"/>.</summary>
    public int? LastDepthBlock { get; init; }
    public double? Ema { get; init; }
    public double? EmaAtLastGrowth { get; init; }
    public int Shortfalls { get; init; }
    public string? StopReason { get; init; }
    public bool Stopped => StopReason is not null;
}

/// <summary>Stopping rules of thesis 3.3.2 (3), as pure functions over <see cref="GrowthProgress"/>.</summary>
public static class StoppingRules
{
    /// <summary>Folds one epoch's validation accuracy into the EMA.</summary>
    public static GrowthProgress RecordEpoch(GrowthProgress p, double validationAccuracy, StoppingOptions o) =>
        p with
        {
            Epoch = p.Epoch + 1,
            Ema = p.Ema is { } ema ? o.EmaBeta * ema + (1 - o.EmaBeta) * validationAccuracy : validationAccuracy,
            // The first epoch is the reference of the first growth point, so that point is tested too.
            EmaAtLastGrowth = p.Ema is null && p.EmaAtLastGrowth is null ? validationAccuracy : p.EmaAtLastGrowth,
        };

    /// <summary>
    /// Called at every growth point (the end of an interval), before deciding a growth. Automatic rule: the gain of
    /// the EMA since the previous growth point (for the first growth point: since the first epoch) below
    /// <see cref="StoppingOptions.Threshold"/> counts as a shortfall; more than <see cref="StoppingOptions.Tolerance"/>
    /// shortfalls stop growth, and so does an EMA within the threshold of 100 % (nothing left to gain). Also the
    /// wall-clock budget.
    /// </summary>
    public static GrowthProgress AtGrowthPoint(GrowthProgress p, StoppingOptions o, double elapsedSeconds)
    {
        if (p.Stopped) return p;
        if (o.WallClockSeconds is { } budget && elapsedSeconds >= budget)
            return p with { StopReason = $"wall-clock budget of {budget:0}s spent ({elapsedSeconds:0}s)" };
        if (!o.Auto || p.Ema is not { } ema) return p with { EmaAtLastGrowth = p.Ema };
        if (1 - ema < o.Threshold)
            // No growth can gain the threshold when less error than that is left: the task is served.
            return p with
            {
                EmaAtLastGrowth = ema,
                StopReason = string.Create(CultureInfo.InvariantCulture,
                    $"automatic: EMA validation accuracy {ema * 100:0.00} % leaves less than the threshold " +
                    $"({o.Threshold * 100:0.##} points) to gain"),
            };
        // The first growth point is compared with the first epoch; with a one-epoch interval that is the same
        // epoch, so there is nothing to test yet.
        if (p.EmaAtLastGrowth is not { } previous || (p.Growths == 0 && p.Epoch < 2))
            return p with { EmaAtLastGrowth = ema };
        double gain = ema - previous;
        int shortfalls = p.Shortfalls + (gain < o.Threshold ? 1 : 0);
        var next = p with { EmaAtLastGrowth = ema, Shortfalls = shortfalls };
        if (shortfalls > o.Tolerance)
            next = next with
            {
                StopReason = string.Create(CultureInfo.InvariantCulture,
                    $"automatic: EMA validation accuracy gained {gain * 100:0.00} points since the last growth " +
                    $"(threshold {o.Threshold * 100:0.##}), shortfall {shortfalls} > tolerance {o.Tolerance}"),
            };
        return next;
    }

    /// <summary>
    /// Parses a target architecture like "VGG-2-2-2" against the run's model: same family, one count per block,
    /// none below the current depth. Returns the maximum layers per block.
    /// </summary>
    public static int[] ParseTarget(string target, CnnSpec spec)
    {
        var parts = target.Trim().Split('-');
        if (parts.Length < 2)
            throw new InvalidSpecException($"target architecture '{target}' must look like VGG-2-2-2");
        int firstCount = Array.FindIndex(parts, s => s.Length > 0 && s.All(char.IsDigit));
        if (firstCount <= 0)
            throw new InvalidSpecException($"target architecture '{target}' must look like VGG-2-2-2");
        var family = CnnSpec.ParseFamily(string.Join("-", parts[..firstCount]));
        if (family != spec.Family)
            throw new InvalidSpecException(
                $"target architecture '{target}' is a {CnnSpec.FamilyName(family)}, the run grows a {CnnSpec.FamilyName(spec.Family)}");
        var counts = new int[parts.Length - firstCount];
        for (int i = 0; i < counts.Length; i++)
            if (!int.TryParse(parts[firstCount + i], NumberStyles.None, CultureInfo.InvariantCulture, out counts[i])
                || counts[i] > 64)
                throw new InvalidSpecException($"target architecture '{target}': '{parts[firstCount + i]}' is not a layer count");
        if (counts.Length != spec.Blocks.Count)
            throw new InvalidSpecException(
                $"target architecture '{target}' has {counts.Length} blocks, the model has {spec.Blocks.Count}");
        for (int b = 0; b < counts.Length; b++)
            if (counts[b] < spec.Blocks[b].Layers.Count)
                throw new InvalidSpecException(
                    $"target architecture '{target}' is impossible: block {b + 1} already has {spec.Blocks[b].Layers.Count} layers");
        return counts;
    }

    /// <summary>Post-fusion parameters ≤ B and pre-fusion parameters ≤ 1.5·B (thesis 3.3.2 (3)).</summary>
    public static bool WithinBudget(ArchitectureSpec spec, long budget)
    {
        var stats = ModelStats.Of(spec);
        return stats.ParametersFused <= budget && stats.Parameters <= 1.5 * budget;
    }

    /// <summary>A budget smaller than the seed model can never be met: an error before any training starts.</summary>
    public static void CheckBudgetAgainstSeed(ArchitectureSpec seed, long budget)
    {
        if (!WithinBudget(seed, budget))
        {
            var stats = ModelStats.Of(seed);
            throw new InvalidSpecException(
                $"parameter budget {budget} is smaller than the seed model ({stats.ParametersFused} parameters fused, " +
                $"{stats.Parameters} unfused)");
        }
    }
}

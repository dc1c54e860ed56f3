using ScaleGrow.Models;
using ScaleGrow.Models.Cnn;

namespace ScaleGrow.Growth;

/// <summary>The outcome of a growth decision: a grown spec and what was done, or why growth stops.</summary>
public sealed record GrowthDecision(ArchitectureSpec? Spec, GrowthAction? Action, string? StopReason);

/// <summary>
/// The "decide" step of the growth loop (algorithm 3-1, lines 9–12): pure and deterministic — the growth kind from
/// the pattern, the place from the importance scores, random choices from the run's seed and the growth index —
/// with the target-architecture and parameter-budget rules applied. Called by the orchestrator between activities.
/// </summary>
public static class GrowthPlanner
{
    public static GrowthDecision Decide(ArchitectureSpec spec, ImportanceReport scores, GrowthProgress progress,
        GrowthOptions options, long runSeed) =>
        ModelFamilies.Part<IGrowableFamily>(spec, "growth").Decide(spec, scores, progress, options, runSeed);

    /// <summary>The CNN decision (thesis 3.3): width or depth from the pattern, the other when the first finds
    /// nothing to grow.</summary>
    public static GrowthDecision DecideCnn(CnnSpec cnn, ImportanceReport scores, GrowthProgress progress,
        GrowthOptions options, long runSeed)
    {
        int[]? target = options.Stopping.TargetArch is { } t ? StoppingRules.ParseTarget(t, cnn) : null;
        if (target is not null && cnn.Blocks.Select(b => b.Layers.Count).SequenceEqual(target))
            return new GrowthDecision(null, null, $"target architecture {options.Stopping.TargetArch} reached");
        var rng = new Random(Seeds.DeriveInt(runSeed, "growth", progress.Growths));
        var first = options.KindOfGrowth(progress.Growths);
        var plan = Plan(cnn, scores, first, progress, options, target, rng)
                   ?? Plan(cnn, scores, first == GrowthKind.Width ? GrowthKind.Depth : GrowthKind.Width, progress,
                       options, target, rng);
        if (plan is null) return new GrowthDecision(null, null, "nothing left to grow");
        if (options.Stopping.ParameterBudget is { } budget && !StoppingRules.WithinBudget(plan.Value.Spec, budget))
        {
            var stats = ModelStats.Of(plan.Value.Spec);
            return new GrowthDecision(null, null,
                $"parameter budget {budget}: the next growth ({plan.Value.Action.ArchAfter}) would have " +
                $"{stats.ParametersFused} fused / {stats.Parameters} unfused parameters");
        }
        return new GrowthDecision(plan.Value.Spec, plan.Value.Action, null);
    }

    /// <summary>The Transformer decision (thesis 3.4): depth or width from the pattern, the target's done half
    /// skipped.</summary>
    public static GrowthDecision DecideTransformer(ScaleGrow.Models.Transformer.TransformerSpec spec,
        ImportanceReport scores, GrowthProgress progress, GrowthOptions options, long runSeed)
    {
        var target = options.Stopping.TargetArch is { } t ? ParseTransformerTarget(t, spec) : ((int, int)?)null;
        var kind = options.KindOfGrowth(progress.Growths);
        if (target is { } tt)
        {
            bool depthDone = spec.Layers.Count >= tt.Item1, widthDone = spec.Width >= tt.Item2;
            if (depthDone && widthDone)
                return new GrowthDecision(null, null, $"target architecture {options.Stopping.TargetArch} reached");
            if (kind == GrowthKind.Depth && depthDone) kind = GrowthKind.Width;
            else if (kind == GrowthKind.Width && widthDone) kind = GrowthKind.Depth;
        }
        var rng = new Random(Seeds.DeriveInt(runSeed, "growth", progress.Growths));
        var (grown, action) = kind == GrowthKind.Width
            ? TransformerGrowth.GrowWidth(spec, options.TransformerWidth, options.HeadDimStep)
            : TransformerGrowth.GrowDepth(spec, scores, options.DepthPlacement, rng);
        if (target is { } t2 && grown.Width > t2.Item2)
            return new GrowthDecision(null, null, $"target architecture {options.Stopping.TargetArch} reached");
        if (options.Stopping.ParameterBudget is { } budget && !StoppingRules.WithinBudget(grown, budget))
            return new GrowthDecision(null, null,
                $"parameter budget {budget}: the next growth ({action.ArchAfter}) would exceed it");
        return new GrowthDecision(grown, action, null);
    }

    /// <summary>Parses "ViT-D4W384" / "BERT-D3W384" into (depth, width).</summary>
    public static (int Depth, int Width) ParseTransformerTarget(string target,
        ScaleGrow.Models.Transformer.TransformerSpec spec)
    {
        var m = System.Text.RegularExpressions.Regex.Match(target.Trim(), @"^(ViT|BERT)-D(\d{1,3})W(\d{1,5})$",
            System.Text.RegularExpressions.RegexOptions.IgnoreCase);
        if (!m.Success)
            throw new InvalidSpecException($"target architecture '{target}' must look like ViT-D4W384 or BERT-D3W384");
        int depth = int.Parse(m.Groups[2].Value), width = int.Parse(m.Groups[3].Value);
        if (depth < spec.Layers.Count || width < spec.Width)
            throw new InvalidSpecException($"target architecture '{target}' is impossible: the model is already {spec.ArchString}");
        return (depth, width);
    }

    private static (CnnSpec Spec, GrowthAction Action)? Plan(CnnSpec spec, ImportanceReport scores, GrowthKind kind,
        GrowthProgress progress, GrowthOptions options, int[]? target, Random rng) =>
        kind == GrowthKind.Width
            ? CnnGrowthPlanner.GrowWidth(spec, scores, options.WidthFraction, options.BranchSampling, rng)
            : CnnGrowthPlanner.GrowDepth(spec, scores, options.DepthPlacement, progress.DepthGrowths, target, rng,
                progress.LastDepthBlock);
}

using System.Globalization;
using ScaleGrow.Models.Cnn;

namespace ScaleGrow.Growth;

/// <summary>
/// Decides where and what to grow (thesis 3.3.3) — deterministic given the spec, the importance scores and the
/// random generator, which callers seed from the run's seed and the growth step.
/// </summary>
public static class CnnGrowthPlanner
{
    /// <summary>
    /// One depth growth (table 3-2: one layer at a time). Greedy: the block with the largest score, right after its
    /// highest-scoring layer (at the start of an empty block). Blocks that reached <paramref name="maxLayersPerBlock"/>
    /// are skipped; returns null when every block is full.
    /// </summary>
    /// <param name="lastDepthBlock">The block the previous depth growth went to (null before the first): what
    /// <see cref="DepthPlacement.GreedyExcludeLast"/> leaves out.</param>
    public static (CnnSpec Spec, GrowthAction Action)? GrowDepth(CnnSpec spec, ImportanceReport scores,
        DepthPlacement placement, int depthGrowthIndex, IReadOnlyList<int>? maxLayersPerBlock, Random rng,
        int? lastDepthBlock = null)
    {
        var open = Enumerable.Range(0, spec.Blocks.Count)
            .Where(b => maxLayersPerBlock is null || spec.Blocks[b].Layers.Count < maxLayersPerBlock[b]).ToList();
        if (open.Count == 0) return null;
        int block, position;
        string reason;
        switch (placement)
        {
            case DepthPlacement.Greedy:
                block = open.OrderByDescending(b => scores.Blocks[b].Score).ThenBy(b => b).First();
                var layers = spec.Blocks[block].Layers;
                if (layers.Count == 0)
                {
                    position = 0;
                    reason = $"greedy: block {block} has the largest feeding-unit |γ| ({F(scores.Blocks[block].Score)}); empty, insert first";
                }
                else
                {
                    var layerScores = scores.LayersOfBlock(block).ToDictionary(l => l.LayerId, l => l.Score);
                    int best = Enumerable.Range(0, layers.Count)
                        .OrderByDescending(i => layerScores.GetValueOrDefault(layers[i].Id)).ThenBy(i => i).First();
                    position = best + 1;
                    reason = $"greedy: block {block} has the largest feeding-unit |γ| ({F(scores.Blocks[block].Score)}); " +
                             $"after its most important layer L{layers[best].Id} ({F(layerScores.GetValueOrDefault(layers[best].Id))})";
                }
                break;
            case DepthPlacement.GreedyExcludeLast:
                // The public AdaGrow code's rule: the highest-scoring block other than the one grown last time,
                // appended at its end. Feeding-unit scores keep the seed's stage order (docs/growth.md), so plain
                // greedy puts every layer into one block; leaving out the last one spreads depth by importance.
                var candidates = open.Count > 1 && lastDepthBlock is { } last ? open.Where(b => b != last).ToList() : open;
                block = candidates.OrderByDescending(b => scores.Blocks[b].Score).ThenBy(b => b).First();
                position = spec.Blocks[block].Layers.Count;
                reason = $"greedy-exclude-last: block {block} has the largest feeding-unit |γ| " +
                         $"({F(scores.Blocks[block].Score)})" +
                         (lastDepthBlock is { } l && candidates.Count < open.Count ? $" except block {l}, grown last" : "") +
                         "; appended";
                break;
            case DepthPlacement.Random:
                block = open[rng.Next(open.Count)];
                position = rng.Next(spec.Blocks[block].Layers.Count + 1);
                reason = $"random: block {block}, position {position}";
                break;
            case DepthPlacement.Sequential:
                block = open[depthGrowthIndex % open.Count];
                position = spec.Blocks[block].Layers.Count;
                reason = $"sequential: block {block}, appended";
                break;
            default:
                throw new InvalidSpecException($"depth placement '{placement}' does not apply to CNNs");
        }
        return CnnGrowthOperators.InsertLayer(spec, block, position, reason);
    }

    /// <summary>
    /// One width growth: the top <paramref name="fraction"/> of all layers by importance (table 3-3: 70%), down-sampling
    /// layers and the stem included, each get one new branch per Conv-BN unit, sampled from the branches that fit the
    /// unit (figure 3-5). Returns null when no unit can take a branch (without-replacement sampling exhausted).
    /// </summary>
    public static (CnnSpec Spec, GrowthAction Action)? GrowWidth(CnnSpec spec, ImportanceReport scores,
        double fraction, BranchSampling sampling, Random rng)
    {
        if (fraction is <= 0 or > 1) throw new InvalidSpecException($"width fraction must be in (0, 1], got {fraction}");
        var ranked = scores.Layers.OrderByDescending(l => l.Score).ThenBy(l => l.LayerId).ToList();
        int take = Math.Max(1, (int)Math.Ceiling(fraction * ranked.Count));
        var chosen = ranked.Take(take).ToList();
        var layersById = spec.AllLayers().ToDictionary(l => l.Layer.Id);
        var additions = new List<(int, string, string)>();
        foreach (var li in chosen)
        {
            var (role, index, layer) = layersById[li.LayerId];
            var geometry = CnnGeometry.UnitsOf(spec, role, index);
            for (int u = 0; u < geometry.Count; u++)
            {
                var kind = SampleBranch(geometry[u], layer.Units[u], sampling, rng);
                if (kind is not null) additions.Add((layer.Id, geometry[u].Name, kind.Value.Name));
            }
        }
        if (additions.Count == 0) return null;
        string reason = $"{take} of {ranked.Count} layers by |γ| (fraction {F(fraction)}), branches sampled " +
                        SamplingName(sampling);
        return CnnGrowthOperators.AddBranches(spec, additions, reason);
    }

    /// <summary>The branch to add to one unit, or null when sampling without replacement has nothing left.</summary>
    public static BranchKind? SampleBranch(UnitGeometry geometry, UnitSpec unit, BranchSampling sampling, Random rng)
    {
        var fitting = BranchKind.All.Where(k => k.FitsIn(geometry)).ToList();
        var present = unit.Branches.Select(b => b.Kind).ToHashSet();
        switch (sampling)
        {
            case BranchSampling.RandomWithReplacement:
                return fitting[rng.Next(fitting.Count)];
            case BranchSampling.RandomWithoutReplacement:
                var left = fitting.Where(k => !present.Contains(k.Name)).ToList();
                return left.Count == 0 ? null : left[rng.Next(left.Count)];
            case BranchSampling.GreedyWithoutReplacement:
                var existing = unit.Branches.Select(b => BranchKind.Parse(b.Kind)).ToList();
                return fitting.Where(k => !present.Contains(k.Name))
                    .Select(k => (Kind: (BranchKind?)k, Distance: existing.Min(e => Distance(k, e, geometry))))
                    .OrderByDescending(c => c.Distance).Select(c => c.Kind).FirstOrDefault();
            default:
                throw new InvalidSpecException($"unknown branch sampling {sampling}");
        }
    }

    /// <summary>
    /// "Functional difference" of two branches (the thesis orders branches by it without defining it): one minus
    /// the intersection-over-union of their kernel footprints, plus one when their kinds differ (convolution vs.
    /// identity vs. pooling). So BN alone is the first pick for a plain conv, then footprints far from those present.
    /// </summary>
    public static double Distance(BranchKind a, BranchKind b, UnitGeometry g)
    {
        var fa = a.Footprint(g).ToHashSet();
        var fb = b.Footprint(g).ToHashSet();
        double inter = fa.Intersect(fb).Count(), union = fa.Union(fb).Count();
        return 1 - inter / union + (a.Type == b.Type ? 0 : 1);
    }

    private static string SamplingName(BranchSampling s) => s switch
    {
        BranchSampling.RandomWithReplacement => "at random with replacement",
        BranchSampling.RandomWithoutReplacement => "at random without replacement",
        _ => "greedily without replacement",
    };

    private static string F(double x) => x.ToString("0.###", CultureInfo.InvariantCulture);
}

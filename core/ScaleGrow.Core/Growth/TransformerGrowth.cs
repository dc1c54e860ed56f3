using System.Globalization;
using ScaleGrow.Models.Transformer;

namespace ScaleGrow.Growth;

/// <summary>How a Transformer width growth widens (thesis 3.4.1, table 3-12).</summary>
public enum TransformerWidthGrowth
{
    /// <summary>One more attention head everywhere (the thesis's choice).</summary>
    [System.Text.Json.Serialization.JsonStringEnumMemberName("heads")] Heads,
    /// <summary>Every head wider by head_dim / heads (the ablation).</summary>
    [System.Text.Json.Serialization.JsonStringEnumMemberName("head-dim")] HeadDim,
}

/// <summary>
/// Transformer growth operators and placement (thesis 3.4): width = one more head in every layer (the model stays
/// isotropic: Q, K, V, O, MLP, norms and embeddings all widen by one head's dimension) or wider heads; depth = one
/// new layer after the layer with the largest norm scale (greedy), or first / last / random (table 3-11).
/// </summary>
public static class TransformerGrowth
{
    /// <param name="headDimStep">Wider heads: how much each head widens (0: the seed's head dim ÷ heads is unknown
    /// here, so the current head dim ÷ heads). Runs pass the seed's, so every width growth adds one seed head's
    /// worth of width, as a new head would, and the two ablation arms grow alike.</param>
    public static (TransformerSpec Spec, GrowthAction Action) GrowWidth(TransformerSpec spec, TransformerWidthGrowth how,
        int headDimStep = 0)
    {
        int step = headDimStep > 0 ? headDimStep : Math.Max(1, spec.HeadDim / spec.Heads);
        var grown = how == TransformerWidthGrowth.Heads
            ? spec with { Heads = spec.Heads + 1 }
            : spec with { HeadDim = spec.HeadDim + step };
        grown.Validate();
        return (grown, new GrowthAction
        {
            Kind = GrowthKind.Width, ArchBefore = spec.ArchString, ArchAfter = grown.ArchString,
            Reason = how == TransformerWidthGrowth.Heads
                ? $"heads {spec.Heads} -> {grown.Heads} (head dim {spec.HeadDim})"
                : $"head dim {spec.HeadDim} -> {grown.HeadDim} ({spec.Heads} heads)",
        });
    }

    public static (TransformerSpec Spec, GrowthAction Action) GrowDepth(TransformerSpec spec, ImportanceReport scores,
        DepthPlacement placement, Random rng)
    {
        var layers = spec.Layers.ToList();
        int position;
        string reason;
        switch (placement)
        {
            case DepthPlacement.Greedy:
                if (layers.Count == 0)
                {
                    position = 0;
                    reason = "greedy: no layers yet";
                    break;
                }
                var byId = scores.Layers.ToDictionary(l => l.LayerId, l => l.Score);
                int best = Enumerable.Range(0, layers.Count)
                    .OrderByDescending(i => byId.GetValueOrDefault(layers[i].Id)).ThenBy(i => i).First();
                position = best + 1;
                reason = string.Create(CultureInfo.InvariantCulture,
                    $"greedy: after L{layers[best].Id}, the layer with the largest LayerNorm |γ| ({byId.GetValueOrDefault(layers[best].Id):0.###})");
                break;
            case DepthPlacement.First:
                position = 0;
                reason = "first";
                break;
            case DepthPlacement.Last:
            case DepthPlacement.Sequential:
                position = layers.Count;
                reason = "last";
                break;
            case DepthPlacement.Random:
                position = rng.Next(layers.Count + 1);
                reason = $"random: position {position}";
                break;
            default:
                throw new InvalidSpecException($"depth placement {placement} does not apply to Transformers");
        }
        var layer = new TransformerLayerSpec { Id = spec.NextId };
        layers.Insert(position, layer);
        var grown = spec with { Layers = layers, NextId = spec.NextId + 1 };
        grown.Validate();
        return (grown, new GrowthAction
        {
            Kind = GrowthKind.Depth, ArchBefore = spec.ArchString, ArchAfter = grown.ArchString, Block = 0,
            Position = position, AfterLayerId = position == 0 ? null : layers[position - 1].Id, NewLayerId = layer.Id,
            Reason = reason,
        });
    }
}

using ScaleGrow.Models.Adapters;
namespace ScaleGrow.Scaling;

/// <summary>
/// How to expand a pretrained model with ScaleNet (issue 8; arXiv 2510.18431). The mapping default is the paper's
/// reported one (cyclic); the adapter defaults are not public and were chosen from our ablations
/// (docs/scalenet.md, bench/RESULTS-scalenet.md).
/// </summary>
public sealed record ScaleNetOptions
{
    public LayerMappingKind Mapping { get; set; } = LayerMappingKind.Cyclic;

    /// <summary>The expanded depth L'; null means <see cref="DepthFactor"/> × L.</summary>
    public int? TargetLayers { get; init; }

    /// <summary>Used when <see cref="TargetLayers"/> is null: L' = round(factor × L).</summary>
    public double DepthFactor { get; set; } = 2;

    public AdapterKind Adapter { get; set; } = AdapterKind.ParallelBottleneck;
    public int Rank { get; set; } = 8;
    public AdapterPlacement Where { get; set; } = AdapterPlacement.Both;

    /// <summary>Every instance gets its own norms, initialised from its shared layer's.</summary>
    public bool OwnNorms { get; init; }

    /// <summary>Train only the per-instance parameters (adapters, LoRA, own norms); the shared weights stay frozen.
    /// </summary>
    public bool TrainAdaptersOnly { get; init; }

    /// <summary>True: new instances share tensors with their pretrained layer (ScaleNet). False: they get independent
    /// copies of its values (progressive stacking; the baseline with all-new parameters).</summary>
    public bool ShareWeights { get; set; } = true;

    public int TargetFor(int originalLayers)
    {
        int target = TargetLayers ?? (int)Math.Round(DepthFactor * originalLayers);
        if (TargetLayers is null && !(DepthFactor >= 1 && double.IsFinite(DepthFactor)))
            throw new InvalidSpecException($"scalenet: depth factor must be at least 1, got {DepthFactor}");
        return target;
    }

    /// <summary>The per-instance adapter spec, or null when instances carry nothing of their own.</summary>
    public AdapterSpec? AdapterSpec =>
        Adapter == AdapterKind.None && !OwnNorms
            ? null
            : new AdapterSpec { Kind = Adapter, Rank = Rank, Where = Where, OwnNorms = OwnNorms };
}

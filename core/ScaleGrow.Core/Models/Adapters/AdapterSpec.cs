using System.Text.Json.Serialization;

namespace ScaleGrow.Models.Adapters;

/// <summary>
/// The kind of per-instance adjustment a ScaleNet layer instance carries (issue 8; the paper's adapter design is not
/// public, so these are our options, chosen between by the ablations in bench/RESULTS-scalenet.md).
/// </summary>
public enum AdapterKind
{
    /// <summary>No adapter (sharing alone, or own norms alone).</summary>
    [JsonStringEnumMemberName("none")] None,

    /// <summary>A parallel bottleneck beside the sub-layer: down to r, GELU, up (starting at zero).</summary>
    [JsonStringEnumMemberName("parallel-bottleneck")] ParallelBottleneck,

    /// <summary>A per-instance low-rank change ΔW = B·A of the shared linear weights; B starts at zero.</summary>
    [JsonStringEnumMemberName("lora")] Lora,
}

/// <summary>Which sub-layers of a layer instance get adapters.</summary>
public enum AdapterPlacement
{
    [JsonStringEnumMemberName("attention")] Attention,
    [JsonStringEnumMemberName("mlp")] Mlp,
    [JsonStringEnumMemberName("both")] Both,
}

/// <summary>
/// The per-instance parameters of one layer instance of a weight-shared stack (ScaleNet: "each layer instance gets its
/// own small set of adjustment parameters, implemented as parallel adapter modules"). All of them start so that the
/// instance computes exactly what its shared layer computes: bottleneck up-projections and LoRA's B are zero, and own
/// norms start as copies of the shared layer's norms.
/// </summary>
public sealed record AdapterSpec
{
    public required AdapterKind Kind { get; init; }

    /// <summary>Bottleneck width, or LoRA rank. Ignored for <see cref="AdapterKind.None"/>.</summary>
    public int Rank { get; set; } = 8;

    public AdapterPlacement Where { get; set; } = AdapterPlacement.Both;

    /// <summary>The instance has its own (unshared) norms instead of the shared layer's.</summary>
    public bool OwnNorms { get; init; }

    [JsonIgnore] public bool OnAttention => Kind != AdapterKind.None && Where != AdapterPlacement.Mlp;
    [JsonIgnore] public bool OnMlp => Kind != AdapterKind.None && Where != AdapterPlacement.Attention;

    /// <summary>Throws <see cref="InvalidSpecException"/> naming <paramref name="where"/> when inconsistent.</summary>
    public void Validate(string where, int width)
    {
        if (!Enum.IsDefined(Kind)) throw new InvalidSpecException($"{where}: unknown adapter kind {(int)Kind}");
        if (!Enum.IsDefined(Where)) throw new InvalidSpecException($"{where}: unknown adapter placement {(int)Where}");
        if (Kind != AdapterKind.None && (Rank < 1 || Rank > Math.Max(1, width)))
            throw new InvalidSpecException(
                $"{where}: adapter rank must be in 1..{width} (the model width), got {Rank}");
    }
}

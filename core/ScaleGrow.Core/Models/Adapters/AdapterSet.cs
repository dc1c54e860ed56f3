using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Models.Adapters;

/// <summary>
/// The linear maps of one layer that LoRA can adjust and adapters are counted over: <paramref name="Key"/> is the name
/// the LoRA pair gets (<c>lora.q.a</c>), <paramref name="InAttention"/> says which sub-layer it belongs to.
/// </summary>
public sealed record ProjectionShape(string Key, int In, int Out, bool InAttention);

/// <summary>
/// The parallel bottleneck adapters of one layer instance (module name <c>adapter</c>, children <c>attn</c> and/or
/// <c>mlp</c>), or null when the instance's <see cref="AdapterSpec"/> asks for none.
/// </summary>
public sealed class AdapterSet : nn.Module
{
    private readonly ParallelAdapter? attn;
    private readonly ParallelAdapter? mlp;

    private AdapterSet(AdapterSpec spec, int width, bool bias) : base("adapter")
    {
        if (spec.OnAttention) attn = new ParallelAdapter("attn", width, spec.Rank, bias);
        if (spec.OnMlp) mlp = new ParallelAdapter("mlp", width, spec.Rank, bias);
        RegisterComponents();
    }

    public static AdapterSet? Create(AdapterSpec? spec, int width, bool bias) =>
        spec is { Kind: AdapterKind.ParallelBottleneck } ? new AdapterSet(spec, width, bias) : null;

    /// <summary>The attention adapter's output for the attention's input <paramref name="h"/>, or null.</summary>
    public Tensor? Attention(Tensor h) => attn?.forward(h);

    /// <summary>The MLP adapter's output for the MLP's input <paramref name="h"/>, or null.</summary>
    public Tensor? Mlp(Tensor h) => mlp?.forward(h);

    /// <summary><paramref name="output"/> plus the adapter's contribution, when there is one.</summary>
    public static Tensor AddTo(Tensor output, Tensor? adapted) => adapted is null ? output : output + adapted;
}

/// <summary>
/// The LoRA pairs of one layer instance (module name <c>lora</c>, one child per adjusted projection: <c>q</c>,
/// <c>k</c>, <c>v</c>, <c>o</c> for attention; <c>fc1</c>, <c>fc2</c> or <c>gate</c>, <c>up</c>, <c>down</c> for the
/// MLP).
/// The shared layer's modules call <see cref="Project"/> with the instance's deltas, so one set of shared weights
/// serves every instance while each adds its own ΔW.
/// </summary>
public sealed class LowRankDeltas : nn.Module
{
    private readonly Dictionary<string, LowRankDelta> _deltas = new(StringComparer.Ordinal);

    private LowRankDeltas(AdapterSpec spec, IEnumerable<ProjectionShape> projections) : base("lora")
    {
        foreach (var p in projections)
        {
            if (p.InAttention ? !spec.OnAttention : !spec.OnMlp) continue;
            var delta = new LowRankDelta(p.Key, p.In, p.Out, spec.Rank);
            _deltas.Add(p.Key, delta);
            register_module(p.Key, delta);
        }
    }

    public static LowRankDeltas? Create(AdapterSpec? spec, IEnumerable<ProjectionShape> projections) =>
        spec is { Kind: AdapterKind.Lora } ? new LowRankDeltas(spec, projections) : null;

    /// <summary><c>linear(x)</c> plus this instance's low-rank change of it, if it has one for
    /// <paramref name="key"/>.</summary>
    public static Tensor Project(nn.Module<Tensor, Tensor> linear, LowRankDeltas? deltas, string key, Tensor x)
    {
        var y = linear.forward(x);
        return deltas is not null && deltas._deltas.TryGetValue(key, out var d) ? y + d.forward(x) : y;
    }
}

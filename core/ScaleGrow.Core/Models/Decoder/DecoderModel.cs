using ScaleGrow.Models.Adapters;
using ScaleGrow.Models.Transformer;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScaleGrow.Models.Decoder;

/// <summary>
/// A Llama-style decoder built from a <see cref="DecoderSpec"/>: token ids (B, T) → next-token logits (B, T, V).
/// Parameter names: <c>embed.weight</c>, <c>layers.L{id}.{norm1,attn.q,attn.k,attn.v,attn.o,norm2,mlp.gate,mlp.up,
/// mlp.down}.weight</c>, <c>norm.weight</c>, <c>head.weight</c> (absent when tied to the embedding). ScaleNet
/// instances add <c>layers.L{id}.adapter.*</c> / <c>layers.L{id}.lora.*</c> as in the encoder.
/// </summary>
public sealed class DecoderModel : nn.Module<Tensor, Tensor>, IScaleGrowModel
{
    private readonly Embedding embed;
    private readonly DecoderLayerStack layers;
    private readonly RmsNorm norm;
    private readonly Linear? head;

    public DecoderModel(DecoderSpec spec) : base("decoder")
    {
        spec.Validate();
        Spec = spec;
        embed = nn.Embedding(spec.VocabSize, spec.Hidden);
        layers = new DecoderLayerStack("layers", spec);
        norm = new RmsNorm("norm", spec.Hidden, spec.RmsNormEps);
        if (!spec.TieEmbeddings) head = nn.Linear(spec.Hidden, spec.VocabSize, hasBias: false);
        RegisterComponents();
        DecoderInit.Apply(this);
    }

    public DecoderSpec Spec { get; }
    ArchitectureSpec IScaleGrowModel.Spec => Spec;
    public nn.Module<Tensor, Tensor> Module => this;
    public IReadOnlyList<DecoderLayer> Layers => layers.Layers;
    public Embedding Embedding => embed;
    public RmsNorm FinalNorm => norm;

    /// <summary>The head's weight (V, W): its own, or the embedding's when tied.</summary>
    public Tensor HeadWeight => head?.weight ?? embed.weight!;

    public override Tensor forward(Tensor ids)
    {
        long t = ids.shape[1];
        if (t > Spec.MaxPositions)
            throw new InvalidSpecException($"decoder: sequence of {t} tokens exceeds maxPositions {Spec.MaxPositions}");
        var (cos, sin) = RotaryEmbedding.Tables(Spec, t, ids.device);                      // (T, d)
        var x = embed.forward(ids);                                                         // (B, T, W)
        x = layers.forward(x, cos, sin);
        return Logits(norm.forward(x));                                                     // (B, T, V)
    }

    /// <summary>Final-normed hidden states (…, W) → logits (…, V).</summary>
    public Tensor Logits(Tensor hidden) => nn.functional.linear(hidden, HeadWeight);
}

/// <summary>The decoder's layers, registered as <c>L{id}</c> (owners first) and run in the spec's order.</summary>
public sealed class DecoderLayerStack : nn.Module<Tensor, Tensor>
{
    private readonly IReadOnlyList<DecoderLayer> _layers;

    public DecoderLayerStack(string name, DecoderSpec spec) : base(name)
    {
        _layers = LayerInstances.Build<DecoderLayer>(this, spec.Layers,
            (l, owner) => new DecoderLayer($"L{l.Id}", spec, l, owner));
    }

    public IReadOnlyList<DecoderLayer> Layers => _layers;

    public override Tensor forward(Tensor x) =>
        throw new InvalidOperationException("the decoder's layers need rotary tables; call forward(x, cos, sin)");

    public Tensor forward(Tensor x, Tensor cos, Tensor sin)
    {
        foreach (var layer in _layers) x = layer.forward(x, cos, sin);
        return x;
    }
}

/// <summary>
/// One Llama layer: x + Attn(RMSNorm(x)), then x + SwiGLU(RMSNorm(x)). A ScaleNet instance runs its owner's attention
/// and MLP (and norms, unless it has its own) and adds its adapters beside each sub-layer, as the encoder does.
/// </summary>
public sealed class DecoderLayer : nn.Module<Tensor, Tensor>
{
    private readonly RmsNorm norm1;
    private readonly GroupedQueryAttention attn;
    private readonly RmsNorm norm2;
    private readonly SwiGluMlp mlp;
    private readonly AdapterSet? adapter;
    private readonly LowRankDeltas? lora;

    public DecoderLayer(string name, DecoderSpec spec, TransformerLayerSpec layer, DecoderLayer? owner) : base(name)
    {
        bool ownNorms = owner is null || layer.Adapter is { OwnNorms: true };
        norm1 = ownNorms ? new RmsNorm("norm1", spec.Hidden, spec.RmsNormEps) : owner!.norm1;
        attn = owner?.attn ?? new GroupedQueryAttention("attn", spec);
        norm2 = ownNorms ? new RmsNorm("norm2", spec.Hidden, spec.RmsNormEps) : owner!.norm2;
        mlp = owner?.mlp ?? new SwiGluMlp("mlp", spec.Hidden, spec.Intermediate);
        // Llama's linear maps have no biases; its adapters follow suit.
        adapter = AdapterSet.Create(layer.Adapter, spec.Hidden, bias: false);
        lora = LowRankDeltas.Create(layer.Adapter, spec.LayerProjections);
        RegisterComponents();
    }

    public IReadOnlyList<RmsNorm> Norms => [norm1, norm2];

    public override Tensor forward(Tensor x) =>
        throw new InvalidOperationException("a decoder layer needs rotary tables; call forward(x, cos, sin)");

    public Tensor forward(Tensor x, Tensor cos, Tensor sin)
    {
        var h = norm1.forward(x);
        x = x + AdapterSet.AddTo(attn.forward(h, cos, sin, lora), adapter?.Attention(h));
        h = norm2.forward(x);
        return x + AdapterSet.AddTo(mlp.forward(h, lora), adapter?.Mlp(h));
    }
}

/// <summary>
/// Causal grouped-query attention (Ainslie et al. 2023): <c>heads</c> query heads share <c>kvHeads</c> key/value heads,
/// query head h reading key/value head h / (heads / kvHeads) (Hugging Face's <c>repeat_kv</c>). No biases.
/// </summary>
public sealed class GroupedQueryAttention : nn.Module<Tensor, Tensor>
{
    private readonly Linear q, k, v, o;
    private readonly int _heads, _kvHeads, _headDim;

    public GroupedQueryAttention(string name, DecoderSpec spec) : base(name)
    {
        _heads = spec.Heads;
        _kvHeads = spec.KvHeads;
        _headDim = spec.HeadDim;
        q = nn.Linear(spec.Hidden, spec.Heads * spec.HeadDim, hasBias: false);
        k = nn.Linear(spec.Hidden, spec.KvHeads * spec.HeadDim, hasBias: false);
        v = nn.Linear(spec.Hidden, spec.KvHeads * spec.HeadDim, hasBias: false);
        o = nn.Linear(spec.Heads * spec.HeadDim, spec.Hidden, hasBias: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) =>
        throw new InvalidOperationException("attention needs rotary tables; call forward(x, cos, sin, lora)");

    public Tensor forward(Tensor x, Tensor cos, Tensor sin, LowRankDeltas? lora)
    {
        long b = x.shape[0], t = x.shape[1];
        Tensor Split(Tensor y, int heads) => y.view(b, t, heads, _headDim).transpose(1, 2);  // (B, H, T, d)
        var query = RotaryEmbedding.Apply(Split(LowRankDeltas.Project(q, lora, "q", x), _heads), cos, sin);
        var key = RotaryEmbedding.Apply(Split(LowRankDeltas.Project(k, lora, "k", x), _kvHeads), cos, sin);
        var value = Split(LowRankDeltas.Project(v, lora, "v", x), _kvHeads);
        if (_kvHeads != _heads)
        {
            key = key.repeat_interleave(_heads / _kvHeads, 1);                                // (B, H, T, d)
            value = value.repeat_interleave(_heads / _kvHeads, 1);
        }
        var attended = nn.functional.scaled_dot_product_attention(query, key, value, null, 0.0, true);
        var merged = attended.transpose(1, 2).reshape(b, t, _heads * _headDim);             // (B, T, H·d)
        return LowRankDeltas.Project(o, lora, "o", merged);                                 // (B, T, W)
    }
}

/// <summary>Llama's gated MLP (Shazeer 2020): down(SiLU(gate(x)) ⊙ up(x)), no biases.</summary>
public sealed class SwiGluMlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear gate, up, down;

    public SwiGluMlp(string name, int hidden, int intermediate) : base(name)
    {
        gate = nn.Linear(hidden, intermediate, hasBias: false);
        up = nn.Linear(hidden, intermediate, hasBias: false);
        down = nn.Linear(intermediate, hidden, hasBias: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => forward(x, null);

    public Tensor forward(Tensor x, LowRankDeltas? lora)
    {
        var gated = nn.functional.silu(LowRankDeltas.Project(gate, lora, "gate", x))
                    * LowRankDeltas.Project(up, lora, "up", x);                             // (…, I)
        return LowRankDeltas.Project(down, lora, "down", gated);                            // (…, W)
    }
}

/// <summary>Llama's initialiser: N(0, 0.02) for embedding and linear weights, RMSNorm γ = 1; adapters keep theirs.
/// </summary>
public static class DecoderInit
{
    public const double Std = 0.02;

    public static void Apply(nn.Module module)
    {
        using var noGrad = torch.no_grad();
        foreach (var (name, p) in module.named_parameters())
        {
            if (LayerInstances.IsAdapterParameter(name)) continue;
            if (p.dim() == 1) p.fill_(1);
            else p.normal_(0, Std);
        }
    }
}

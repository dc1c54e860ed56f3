using ScaleGrow.Models.Adapters;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScaleGrow.Models.Transformer;

/// <summary>
/// A growable pre-norm Transformer encoder classifier built from a <see cref="TransformerSpec"/> (thesis 3.4):
/// ViT (patch embedding, class token, learned positions) or BERT-style (token + position embeddings, [CLS] pooling at
/// position 0, padding masked). Parameter names: <c>embed.patch.weight</c>, <c>embed.cls</c>, <c>embed.pos</c>,
/// <c>embed.tokens.weight</c>, <c>layers.L{id}.{norm1,attn.q,attn.k,attn.v,attn.o,norm2,mlp.fc1,mlp.fc2}.*</c>,
/// <c>norm.*</c>, <c>head.*</c>. ScaleNet instances (<see cref="TransformerLayerSpec.SharesWith"/>) reuse their owner's
/// modules and add <c>layers.L{id}.adapter.{attn,mlp}.{down,up}.*</c>, <c>layers.L{id}.lora.{q,k,v,o,fc1,fc2}.{a,b}</c>
/// and, with own norms, their own <c>layers.L{id}.norm{1,2}.*</c>.
/// </summary>
public sealed class TransformerModel : nn.Module<Tensor, Tensor>, IScaleGrowModel
{
    private readonly TransformerEmbedding embed;
    private readonly TransformerLayerStack layers;
    private readonly LayerNorm norm;
    private readonly Linear head;

    public TransformerModel(TransformerSpec spec) : base("transformer")
    {
        spec.Validate();
        Spec = spec;
        embed = new TransformerEmbedding("embed", spec);
        layers = new TransformerLayerStack("layers", spec);
        norm = nn.LayerNorm(spec.Width);
        head = nn.Linear(spec.Width, spec.NumClasses);
        RegisterComponents();
        TransformerInit.Apply(this);
    }

    public TransformerSpec Spec { get; }
    ArchitectureSpec IScaleGrowModel.Spec => Spec;
    public nn.Module<Tensor, Tensor> Module => this;
    public IReadOnlyList<TransformerLayer> Layers => layers.Layers;
    public LayerNorm FinalNorm => norm;
    public TransformerEmbedding Embedding => embed;
    public Linear Head => head;

    /// <summary>Images (B, C, H, W) float, or token ids (B, T) int64 for text.</summary>
    public override Tensor forward(Tensor input)
    {
        Tensor? keyMask = null;
        if (Spec.Modality == TransformerModality.Text)
            keyMask = input.ne(Spec.PadTokenId).unsqueeze(1).unsqueeze(1); // (B, 1, 1, T): attend to real tokens
        var x = embed.forward(input);                                        // (B, T, W)
        x = layers.forward(x, keyMask);
        x = norm.forward(x[.., 0]);                                          // (B, W) class token / [CLS]
        return head.forward(x);                                              // (B, classes)
    }
}

/// <summary>Patch or token embeddings plus learned positions (and the class token for images).</summary>
public sealed class TransformerEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d? patch;
    private readonly Embedding? tokens;
    private readonly Parameter? cls;
    private readonly Parameter pos;
    private readonly TransformerModality _modality;

    public TransformerEmbedding(string name, TransformerSpec spec) : base(name)
    {
        _modality = spec.Modality;
        if (spec.Modality == TransformerModality.Image)
        {
            patch = nn.Conv2d(spec.InputChannels, spec.Width, spec.PatchSize, stride: spec.PatchSize);
            cls = new Parameter(torch.zeros(1, 1, spec.Width));
        }
        else
        {
            tokens = nn.Embedding(spec.VocabSize, spec.Width);
        }
        pos = new Parameter(torch.zeros(1, spec.Tokens, spec.Width));
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        if (_modality == TransformerModality.Image)
        {
            var p = patch!.forward(input).flatten(2).transpose(1, 2);                 // (B, N, W)
            var c = cls!.expand(p.shape[0], -1, -1);                                    // (B, 1, W)
            return torch.cat([c, p], 1) + pos;                                          // (B, N+1, W)
        }
        long t = input.shape[1];
        return tokens!.forward(input) + pos[.., TensorIndex.Slice(0, t)];              // (B, T, W)
    }
}

/// <summary>The layers, registered as <c>L{id}</c> and run in the spec's order.</summary>
public sealed class TransformerLayerStack : nn.Module<Tensor, Tensor>
{
    private readonly IReadOnlyList<TransformerLayer> _layers;

    public TransformerLayerStack(string name, TransformerSpec spec) : base(name)
    {
        _layers = LayerInstances.Build<TransformerLayer>(this, spec.Layers,
            (l, owner) => new TransformerLayer($"L{l.Id}", spec, l, owner));
    }

    public IReadOnlyList<TransformerLayer> Layers => _layers;

    public override Tensor forward(Tensor x) => forward(x, null);

    public Tensor forward(Tensor x, Tensor? keyMask)
    {
        foreach (var layer in _layers) x = layer.forward(x, keyMask);
        return x;
    }
}

/// <summary>
/// Pre-norm encoder layer: x + Attn(LN(x)), then x + MLP(LN(x)). A ScaleNet instance built with an owner runs the
/// owner's attention and MLP modules (and norms, unless it has its own) and adds its adapters in parallel to each
/// sub-layer, reading the sub-layer's normed input: x + Attn(h) + A_attn(h), h = LN(x).
/// </summary>
public sealed class TransformerLayer : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm norm1;
    private readonly MultiHeadAttention attn;
    private readonly LayerNorm norm2;
    private readonly Mlp mlp;
    private readonly AdapterSet? adapter;
    private readonly LowRankDeltas? lora;

    public TransformerLayer(string name, TransformerSpec spec) : this(name, spec, new TransformerLayerSpec { Id = 0 },
        null)
    {
    }

    /// <param name="owner">For an instance that shares weights: the layer that owns them.</param>
    public TransformerLayer(string name, TransformerSpec spec, TransformerLayerSpec layer, TransformerLayer? owner)
        : base(name)
    {
        bool ownNorms = owner is null || layer.Adapter is { OwnNorms: true };
        norm1 = ownNorms ? nn.LayerNorm(spec.Width) : owner!.norm1;
        attn = owner?.attn ?? new MultiHeadAttention("attn", spec.Width, spec.Heads, spec.HeadDim);
        norm2 = ownNorms ? nn.LayerNorm(spec.Width) : owner!.norm2;
        mlp = owner?.mlp ?? new Mlp("mlp", spec.Width, spec.MlpHidden);
        adapter = AdapterSet.Create(layer.Adapter, spec.Width, bias: true);
        lora = LowRankDeltas.Create(layer.Adapter, Projections(spec));
        RegisterComponents();
    }

    /// <summary>The linear maps of a layer of <paramref name="spec"/>, for LoRA and for counting adapters.</summary>
    public static IReadOnlyList<ProjectionShape> Projections(TransformerSpec spec) =>
    [
        new("q", spec.Width, spec.Width, true), new("k", spec.Width, spec.Width, true),
        new("v", spec.Width, spec.Width, true), new("o", spec.Width, spec.Width, true),
        new("fc1", spec.Width, spec.MlpHidden, false), new("fc2", spec.MlpHidden, spec.Width, false),
    ];

    /// <summary>The layer's norms, read for depth placement (thesis 3.4.1: "post-norm" scale of the layer).</summary>
    public IReadOnlyList<LayerNorm> Norms => [norm1, norm2];

    public override Tensor forward(Tensor x) => forward(x, null);

    public Tensor forward(Tensor x, Tensor? keyMask)
    {
        var h = norm1.forward(x);
        x = x + AdapterSet.AddTo(attn.forward(h, keyMask, lora), adapter?.Attention(h));
        h = norm2.forward(x);
        return x + AdapterSet.AddTo(mlp.forward(h, lora), adapter?.Mlp(h));
    }
}

/// <summary>Multi-head self-attention with separate Q, K, V, O projections (head h owns rows h·d…(h+1)·d).</summary>
public sealed class MultiHeadAttention : nn.Module<Tensor, Tensor>
{
    private readonly Linear q, k, v, o;
    private readonly int _heads, _headDim;

    public MultiHeadAttention(string name, int width, int heads, int headDim) : base(name)
    {
        _heads = heads;
        _headDim = headDim;
        int inner = heads * headDim;
        q = nn.Linear(width, inner);
        k = nn.Linear(width, inner);
        v = nn.Linear(width, inner);
        o = nn.Linear(inner, width);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => forward(x, null);

    public Tensor forward(Tensor x, Tensor? keyMask, LowRankDeltas? lora = null)
    {
        long b = x.shape[0], t = x.shape[1];
        Tensor Split(Tensor y) => y.view(b, t, _heads, _headDim).transpose(1, 2);     // (B, H, T, d)
        var attended = nn.functional.scaled_dot_product_attention(Split(LowRankDeltas.Project(q, lora, "q", x)),
            Split(LowRankDeltas.Project(k, lora, "k", x)), Split(LowRankDeltas.Project(v, lora, "v", x)),
            attn_mask: keyMask);                                                        // (B, H, T, d)
        var merged = attended.transpose(1, 2).reshape(b, t, _heads * _headDim);        // (B, T, H·d)
        return LowRankDeltas.Project(o, lora, "o", merged);                            // (B, T, W)
    }
}

/// <summary>Position-wise MLP: Linear, GELU, Linear.</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1, fc2;

    public Mlp(string name, int width, int hidden) : base(name)
    {
        fc1 = nn.Linear(width, hidden);
        fc2 = nn.Linear(hidden, width);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => forward(x, null);

    public Tensor forward(Tensor x, LowRankDeltas? lora) =>
        LowRankDeltas.Project(fc2, lora, "fc2", nn.functional.gelu(LowRankDeltas.Project(fc1, lora, "fc1", x)));
}

/// <summary>
/// The Transformer initialiser (what "inherit" reuses): truncated-normal-like N(0, 0.02) for linear, embedding and
/// patch weights and positions, zero biases, LayerNorm γ = 1, β = 0 (the ViT/BERT convention). ScaleNet adapters and
/// LoRA pairs keep their own initialisation (zero outputs), so they are skipped.
/// </summary>
public static class TransformerInit
{
    public const double Std = 0.02;

    public static void Apply(nn.Module module)
    {
        using var noGrad = torch.no_grad();
        foreach (var (name, p) in module.named_parameters())
        {
            if (ScaleGrow.Models.Adapters.LayerInstances.IsAdapterParameter(name)) continue;
            if (name.EndsWith("norm1.weight") || name.EndsWith("norm2.weight") || name == "norm.weight")
                p.fill_(1);
            else if (p.dim() == 1)
                p.zero_();
            else
                p.normal_(0, Std);
        }
    }
}

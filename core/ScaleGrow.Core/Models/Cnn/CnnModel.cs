using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScaleGrow.Models.Cnn;

/// <summary>
/// A growable CNN built from a <see cref="CnnSpec"/> (table 3-1): stem, blocks of layers separated by down-sampling
/// layers, and a head (BN, global average pooling, linear classifier).
/// Parameter names: <c>stem.conv.b0.conv.weight</c>, <c>block1.L7.conv1.b9.bn.weight</c>, <c>down0.norm.weight</c>,
/// <c>head.fc.weight</c>; after fusion a unit's weights are <c>….conv1.fused.weight</c> and <c>.bias</c>.
/// </summary>
public sealed class CnnModel : nn.Module<Tensor, Tensor>, IScaleGrowModel
{
    private readonly CnnLayer stem;
    private readonly List<CnnBlock> _blocks = new();
    private readonly List<DownsampleLayer> _downs = new();
    private readonly CnnHead head;

    public CnnModel(CnnSpec spec) : base("cnn")
    {
        spec.Validate();
        Spec = spec;
        stem = CnnLayer.Create(spec, LayerRole.Stem, 0, spec.Stem);
        register_module("stem", stem);
        for (int b = 0; b < spec.Blocks.Count; b++)
        {
            var block = new CnnBlock($"block{b}", spec, b);
            _blocks.Add(block);
            register_module($"block{b}", block);
            if (b < spec.Downsamples.Count)
            {
                var down = (DownsampleLayer)CnnLayer.Create(spec, LayerRole.Downsample, b, spec.Downsamples[b]);
                _downs.Add(down);
                register_module($"down{b}", down);
            }
        }
        head = new CnnHead("head", spec.StageWidths[^1], spec.NumClasses);
        register_module("head", head);
        CnnInit.Apply(this);
    }

    public CnnSpec Spec { get; }
    ArchitectureSpec IScaleGrowModel.Spec => Spec;
    public nn.Module<Tensor, Tensor> Module => this;

    public CnnLayer Stem => stem;
    public IReadOnlyList<CnnBlock> Blocks => _blocks;
    public IReadOnlyList<DownsampleLayer> Downsamples => _downs;
    public CnnHead Head => head;

    /// <summary>
    /// The Conv-BN unit that produces block <paramref name="b"/>'s input: the stem's for block 0, otherwise the
    /// preceding down-sampling layer's. Its BN scales score the block (see <c>ImportanceScorer</c>).
    /// </summary>
    public nn.Module<Tensor, Tensor> BlockInputUnit(int b) => b == 0 ? stem.Units[0] : _downs[b - 1].Units[0];

    public override Tensor forward(Tensor x)
    {
        // (B, Cin, H, W)
        var y = stem.call(x);
        for (int b = 0; b < _blocks.Count; b++)
        {
            y = _blocks[b].call(y);
            if (b < _downs.Count) y = _downs[b].call(y);
        }
        return head.call(y); // (B, classes)
    }

    /// <summary>
    /// The input that layer <paramref name="position"/> of block <paramref name="block"/> receives: the forward pass up
    /// to (not including) that layer. Used to calibrate a new layer to its input (function-preserving growth).
    /// </summary>
    public Tensor ForwardTo(int block, int position, Tensor x)
    {
        var y = stem.call(x); // (B, C0, H, W)
        for (int b = 0; b < block; b++)
        {
            y = _blocks[b].call(y);
            y = _downs[b].call(y);
        }
        var layers = _blocks[block].Layers;
        for (int i = 0; i < position; i++) y = layers[i].call(y);
        return y; // (B, C_block, H', W')
    }

    /// <summary>Every layer in forward order with its role and index, like <see cref="CnnSpec.AllLayers"/>.</summary>
    public IEnumerable<(LayerRole Role, int Index, CnnLayer Layer)> AllLayers()
    {
        yield return (LayerRole.Stem, 0, stem);
        for (int b = 0; b < _blocks.Count; b++)
        {
            foreach (var layer in _blocks[b].Layers) yield return (LayerRole.Block, b, layer);
            if (b < _downs.Count) yield return (LayerRole.Downsample, b, _downs[b]);
        }
    }
}

/// <summary>A block: its layers registered under <c>L{id}</c>, run in the spec's order.</summary>
public sealed class CnnBlock : nn.Module<Tensor, Tensor>
{
    private readonly List<CnnLayer> _layers = new();

    public CnnBlock(string name, CnnSpec spec, int index) : base(name)
    {
        foreach (var layerSpec in spec.Blocks[index].Layers)
        {
            var layer = CnnLayer.Create(spec, LayerRole.Block, index, layerSpec);
            _layers.Add(layer);
            register_module($"L{layerSpec.Id}", layer);
        }
    }

    public IReadOnlyList<CnnLayer> Layers => _layers;

    public override Tensor forward(Tensor x)
    {
        foreach (var layer in _layers) x = layer.call(x);
        return x;
    }
}

/// <summary>
/// Head: BN over the last block's output, global average pooling, linear classifier (table 3-1 plus the BN). The BN
/// makes the last block's feeding unit scale-invariant like every other block's — each is followed by a BN — so
/// their γ can be compared when scoring blocks; without it the unit next to the classifier carries the logit scale
/// in its γ and always looks most important.
/// </summary>
public sealed class CnnHead : nn.Module<Tensor, Tensor>
{
    private readonly BatchNorm2d norm;
    private readonly Linear fc;

    public CnnHead(string name, int channels, int classes) : base(name)
    {
        norm = nn.BatchNorm2d(channels, eps: ConvBranch.BatchNormEps);
        fc = nn.Linear(channels, classes);
        RegisterComponents();
    }

    public BatchNorm2d Norm => norm;
    public Linear Classifier => fc;

    public override Tensor forward(Tensor x) =>
        fc.call(nn.functional.adaptive_avg_pool2d(norm.call(x), 1).flatten(1)); // (B, classes)
}

/// <summary>
/// The initialiser of the CNN families — the one "inherit" reuses for grown modules (thesis 3.3.4, table 3-9):
/// Kaiming-normal convolutions (fan-out, ReLU), BN γ = 1 and β = 0, classifier N(0, 0.01) with zero bias.
/// </summary>
public static class CnnInit
{
    public static void Apply(nn.Module module)
    {
        using var noGrad = torch.no_grad();
        foreach (var (_, m) in module.named_modules())
        {
            switch (m)
            {
                case Conv2d conv:
                    nn.init.kaiming_normal_(conv.weight!, mode: nn.init.FanInOut.FanOut,
                        nonlinearity: nn.init.NonlinearityType.ReLU);
                    if (conv.bias is not null) nn.init.zeros_(conv.bias);
                    break;
                case BatchNorm2d bn:
                    nn.init.ones_(bn.weight!);
                    nn.init.zeros_(bn.bias!);
                    break;
                case Linear linear:
                    nn.init.normal_(linear.weight!, 0, 0.01);
                    if (linear.bias is not null) nn.init.zeros_(linear.bias);
                    break;
            }
        }
    }
}

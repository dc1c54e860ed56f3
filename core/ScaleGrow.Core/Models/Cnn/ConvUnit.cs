using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScaleGrow.Models.Cnn;

/// <summary>
/// A module that can be structurally re-parameterized (RepVGG / Diverse Branch Block style): it reports the one
/// convolution kernel and bias equivalent to it in eval mode, and returns a plain module built from them.
/// </summary>
public interface IReparameterizable
{
    /// <summary>Equivalent (weight [out, in/groups, kh, kw], bias [out]) in eval mode; caller owns the tensors.</summary>
    (Tensor Weight, Tensor Bias) EquivalentKernel();

    /// <summary>A new plain module computing the same function in eval mode. Safe to call more than once.</summary>
    nn.Module<Tensor, Tensor> Fuse();
}

/// <summary>
/// One Conv-BN unit of table 3-1 with its parallel re-parameterizable branches (thesis 3.3.3 (2), figure 3-5):
/// the outputs of all branches are summed. Branches are registered under <c>b{id}</c> so names stay stable.
/// </summary>
public sealed class ConvUnit : nn.Module<Tensor, Tensor>, IReparameterizable
{
    private readonly List<ConvBranch> _branches = new();

    public ConvUnit(string name, UnitGeometry geometry, UnitSpec spec) : base(name)
    {
        Geometry = geometry;
        foreach (var b in spec.Branches)
        {
            var branch = new ConvBranch(geometry, BranchKind.Parse(b.Kind));
            _branches.Add(branch);
            register_module($"b{b.Id}", branch);
        }
        Spec = spec;
    }

    public UnitGeometry Geometry { get; }
    public UnitSpec Spec { get; }
    public IReadOnlyList<ConvBranch> Branches => _branches;

    public override Tensor forward(Tensor x)
    {
        // (B, Cin, H, W) -> (B, Cout, H/stride, W/stride)
        var y = _branches[0].call(x);
        for (int i = 1; i < _branches.Count; i++) y = y + _branches[i].call(x);
        return y;
    }

    public (Tensor Weight, Tensor Bias) EquivalentKernel()
    {
        using var scope = torch.NewDisposeScope();
        var (w, b) = _branches[0].EquivalentKernel();
        for (int i = 1; i < _branches.Count; i++)
        {
            var (wi, bi) = _branches[i].EquivalentKernel();
            w = w + wi;
            b = b + bi;
        }
        return (w.MoveToOuterDisposeScope(), b.MoveToOuterDisposeScope());
    }

    public nn.Module<Tensor, Tensor> Fuse()
    {
        var fused = new FusedConvUnit(GetName(), Geometry);
        using var scope = torch.NewDisposeScope();
        var (w, b) = EquivalentKernel();
        fused.Load(w, b);
        return fused;
    }

    /// <summary>How many branches touch each kernel position (the thesis's overlap count, 4.2.2).</summary>
    public int[,] OverlapCounts() => CountOverlap(Geometry, Spec);

    public static int[,] CountOverlap(UnitGeometry g, UnitSpec spec)
    {
        var counts = new int[g.KernelH, g.KernelW];
        foreach (var b in spec.Branches)
            foreach (var (r, c) in BranchKind.Parse(b.Kind).Footprint(g))
                counts[r, c]++;
        return counts;
    }
}

/// <summary>One branch: a convolution, identity or average pooling, followed by its own batch norm.</summary>
public sealed class ConvBranch : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d? conv;
    private readonly AvgPool2d? pool;
    private readonly BatchNorm2d bn;
    private readonly UnitGeometry _g;

    public ConvBranch(UnitGeometry g, BranchKind kind) : base(kind.Name)
    {
        _g = g;
        Kind = kind;
        switch (kind.Type)
        {
            case BranchType.Conv:
                conv = nn.Conv2d(g.InChannels, g.OutChannels, (kind.KernelH, kind.KernelW),
                    stride: (g.Stride, g.Stride), padding: (kind.KernelH / 2, kind.KernelW / 2),
                    groups: g.Groups, bias: false);
                break;
            case BranchType.AvgPool:
                pool = nn.AvgPool2d((g.KernelH, g.KernelW), stride: (g.Stride, g.Stride),
                    padding: (g.KernelH / 2, g.KernelW / 2), count_include_pad: true);
                break;
        }
        bn = nn.BatchNorm2d(g.OutChannels, eps: BatchNormEps);
        RegisterComponents();
    }

    public const double BatchNormEps = 1e-5;

    public BranchKind Kind { get; }
    public Conv2d? Conv => conv;
    public BatchNorm2d Norm => bn;

    public override Tensor forward(Tensor x)
    {
        Tensor y = Kind.Type switch
        {
            BranchType.Conv => conv!.call(x),
            BranchType.AvgPool => pool!.call(x),
            _ => _g.Stride == 1 ? x : x[.., .., TensorIndex.Slice(null, null, _g.Stride),
                TensorIndex.Slice(null, null, _g.Stride)],
        };
        return bn.call(y);
    }

    /// <summary>This branch as a main-kernel-sized convolution with bias (eval-mode BN folded in).</summary>
    public (Tensor Weight, Tensor Bias) EquivalentKernel()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        int inPerGroup = _g.InChannels / _g.Groups;
        var like = bn.weight!; // the kernel is built where, and in the type, the branch computes
        var (device, type) = (like.device, like.dtype);
        var kernel = torch.zeros(_g.OutChannels, inPerGroup, _g.KernelH, _g.KernelW, dtype: type, device: device);
        int top, left;
        switch (Kind.Type)
        {
            case BranchType.Conv:
                top = (_g.KernelH - Kind.KernelH) / 2;
                left = (_g.KernelW - Kind.KernelW) / 2;
                kernel[.., .., TensorIndex.Slice(top, top + Kind.KernelH), TensorIndex.Slice(left, left + Kind.KernelW)]
                    = conv!.weight!.detach();
                break;
            case BranchType.Identity:
            case BranchType.AvgPool:
                // Channel i reads its own input channel, whose index inside its group is i % inPerGroup.
                var channels = torch.arange(_g.OutChannels, dtype: ScalarType.Int64, device: device);
                var local = channels % inPerGroup;
                if (Kind.Type == BranchType.Identity)
                {
                    kernel.index_put_(torch.ones(_g.OutChannels, dtype: type, device: device), channels, local,
                        torch.full(_g.OutChannels, _g.KernelH / 2, dtype: ScalarType.Int64, device: device),
                        torch.full(_g.OutChannels, _g.KernelW / 2, dtype: ScalarType.Int64, device: device));
                }
                else
                {
                    var window = torch.full(new long[] { _g.OutChannels, _g.KernelH, _g.KernelW },
                        1.0 / (_g.KernelH * _g.KernelW), dtype: type, device: device);
                    kernel.index_put_(window, channels, local);
                }
                break;
        }
        var std = (bn.running_var!.detach() + BatchNormEps).sqrt();
        var t = bn.weight!.detach() / std;
        var weight = kernel * t.reshape(-1, 1, 1, 1);
        var bias = bn.bias!.detach() - bn.running_mean!.detach() * t;
        return (weight.MoveToOuterDisposeScope(), bias.MoveToOuterDisposeScope());
    }
}

/// <summary>A unit after re-parameterization: one plain convolution with bias, registered as <c>fused</c>.</summary>
public sealed class FusedConvUnit : nn.Module<Tensor, Tensor>, IReparameterizable
{
    private readonly Conv2d fused;

    public FusedConvUnit(string name, UnitGeometry g) : base(name)
    {
        Geometry = g;
        fused = nn.Conv2d(g.InChannels, g.OutChannels, (g.KernelH, g.KernelW), stride: (g.Stride, g.Stride),
            padding: (g.KernelH / 2, g.KernelW / 2), groups: g.Groups, bias: true);
        RegisterComponents();
    }

    public UnitGeometry Geometry { get; }
    public Conv2d Conv => fused;

    public override Tensor forward(Tensor x) => fused.call(x);

    internal void Load(Tensor weight, Tensor bias)
    {
        using var noGrad = torch.no_grad();
        fused.weight!.copy_(weight);
        fused.bias!.copy_(bias);
    }

    public (Tensor Weight, Tensor Bias) EquivalentKernel() => (fused.weight!.detach().clone(), fused.bias!.detach().clone());

    public nn.Module<Tensor, Tensor> Fuse()
    {
        var copy = new FusedConvUnit(GetName(), Geometry);
        copy.Load(fused.weight!.detach(), fused.bias!.detach());
        return copy;
    }
}

using ScaleGrow.Models.Cnn;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Models;

public class CnnFusionTests
{
    public static IEnumerable<object[]> Families() =>
        Enum.GetValues<CnnFamily>().SelectMany(f => new[] { new object[] { f, 2 }, new object[] { f, 3 } });

    [Theory]
    [MemberData(nameof(Families))]
    public void FusedModelMatchesUnfusedForEveryBranchKind(CnnFamily family, int downsamplings)
    {
        torch.manual_seed(7);
        var spec = WithEveryFittingBranch(CnnSpecs.Fixed(family, 10,
            Enumerable.Repeat(2, downsamplings + 1).ToArray(), inputChannels: 3, imageSize: 17,
            stageWidths: family == CnnFamily.MobileNetV3
                ? Enumerable.Range(1, downsamplings + 1).Select(i => 8 * i).ToArray()
                : Enumerable.Range(1, downsamplings + 1).Select(i => 8 * i).ToArray()));
        using var model = new CnnModel(spec);
        RandomizeNorms(model);
        model.eval();
        using var fused = CnnFusion.Fuse(model);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var x = torch.randn(4, 3, 17, 17);
        var expected = model.forward(x);
        var actual = fused.forward(x);
        double maxAbs = (expected - actual).abs().max().item<float>();
        double scale = expected.abs().max().item<float>();
        Assert.True(scale > 0.5, $"logits too small ({scale}) for the comparison to mean anything");
        Assert.True(maxAbs <= 1e-4, $"{spec.ArchString}: fused vs unfused max-abs {maxAbs} (logit scale {scale})");
        Assert.DoesNotContain(fused.named_parameters(), p => p.name.Contains(".b", StringComparison.Ordinal)
            && p.name.Contains("bn", StringComparison.Ordinal));
    }

    /// <summary>Adds to every unit every branch kind that fits it (depthwise, pointwise, stride 2 included).</summary>
    internal static CnnSpec WithEveryFittingBranch(CnnSpec spec)
    {
        int nextId = spec.NextId;
        LayerSpec Grow(LayerRole role, int index, LayerSpec layer)
        {
            var geometry = CnnGeometry.UnitsOf(spec, role, index);
            var units = layer.Units.Select((u, i) => u with
            {
                Branches = u.Branches.Concat(BranchKind.All.Where(k => k.FitsIn(geometry[i]))
                    .Select(k => new BranchSpec { Id = nextId++, Kind = k.Name })).ToArray(),
            }).ToArray();
            return layer with { Units = units };
        }
        var stem = Grow(LayerRole.Stem, 0, spec.Stem);
        var blocks = spec.Blocks.Select((b, bi) => new BlockSpec
        { Layers = b.Layers.Select(l => Grow(LayerRole.Block, bi, l)).ToArray() }).ToArray();
        var downs = spec.Downsamples.Select((d, di) => Grow(LayerRole.Downsample, di, d)).ToArray();
        return spec with { Stem = stem, Blocks = blocks, Downsamples = downs, NextId = nextId };
    }

    /// <summary>
    /// Random γ/β, then running statistics gathered from random inputs (train-mode passes) and jittered, so the
    /// statistics are random but activations stay at a realistic scale (logits of order 1–100, where fp32 fusion
    /// error is meaningful against a 1e-4 bound).
    /// </summary>
    internal static void RandomizeNorms(nn.Module<Tensor, Tensor> model, int channels = 3, int size = 17)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var norms = model.named_modules().Select(m => m.module).OfType<BatchNorm2d>().ToList();
        foreach (var bn in norms)
        {
            bn.weight!.uniform_(0.5, 1.5);
            bn.bias!.uniform_(-0.5, 0.5);
        }
        foreach (var linear in model.named_modules().Select(m => m.module).OfType<Linear>())
            linear.weight!.normal_(0, 1.0 / Math.Sqrt(linear.weight!.shape[1]));
        model.train();
        for (int i = 0; i < 30; i++) model.forward(torch.randn(8, channels, size, size));
        foreach (var bn in norms)
        {
            bn.running_mean!.add_(torch.randn_like(bn.running_mean!) * 0.1);
            bn.running_var!.mul_(torch.rand_like(bn.running_var!) * 0.5 + 0.75);
        }
        model.eval();
    }
}

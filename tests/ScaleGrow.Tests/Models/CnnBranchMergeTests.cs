using ScaleGrow.Models.Cnn;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Models;

public class CnnBranchMergeTests
{
    public static IEnumerable<object[]> Families() => Enum.GetValues<CnnFamily>().Select(f => new object[] { f });

    private static CnnModel Branched(CnnFamily family)
    {
        torch.manual_seed(11);
        var spec = CnnFusionTests.WithEveryFittingBranch(CnnSpecs.Fixed(family, 10, [2, 2, 2], inputChannels: 3,
            imageSize: 17, stageWidths: [8, 16, 24]));
        var model = new CnnModel(spec);
        CnnFusionTests.RandomizeNorms(model);
        return model;
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void MergedModelComputesWhatTheBranchedOneDoesInEvalMode(CnnFamily family)
    {
        using var model = Branched(family);
        using var scope = torch.NewDisposeScope();
        var calibration = torch.randn(64, 3, 17, 17);
        var (merged, rewritten) = CnnBranchMerge.Merge(model, calibration);
        using var _ = merged;
        using var noGrad = torch.no_grad();
        model.eval();
        merged.eval();
        var x = torch.randn(16, 3, 17, 17);
        var expected = model.forward(x);
        var actual = merged.forward(x);
        double maxAbs = (expected - actual).abs().max().item<float>();
        double scale = expected.abs().max().item<float>();
        Assert.True(scale > 0.5, $"logits too small ({scale}) for the comparison to mean anything");
        Assert.True(maxAbs <= 1e-3 * Math.Max(1, scale), $"{family}: merged vs branched max-abs {maxAbs} (scale {scale})");

        // Every unit is now its main branch alone, under the same names; the rewritten names are real parameters.
        Assert.False(CnnBranchMerge.HasBranches(merged.Spec));
        Assert.Equal(model.Spec.ArchString, merged.Spec.ArchString);
        var branchedNames = model.named_parameters().Select(p => p.name).ToHashSet();
        var mergedNames = merged.named_parameters().Select(p => p.name).ToHashSet();
        Assert.Subset(branchedNames, mergedNames);
        Assert.True(mergedNames.Count < branchedNames.Count);
        Assert.Subset(mergedNames, rewritten.ToHashSet());
        Assert.Equal(3 * CountUnits(model.Spec), rewritten.Count);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void MergedModelTrainsLikeTheBranchedOneOnTheCalibrationBatch(CnnFamily family)
    {
        // In train mode every norm uses the batch's statistics. When the branched model's running statistics are the
        // calibration batch's own (momentum 1), its train-mode pass over that batch folds exactly like eval mode, and
        // the merged model, whose BNs measured their statistics on the same batch, must compute the same.
        using var model = Branched(family);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var calibration = torch.randn(64, 3, 17, 17);
        foreach (var bn in model.named_modules().Select(m => m.module).OfType<TorchSharp.Modules.BatchNorm2d>())
            bn.momentum = 1.0;
        model.train();
        model.forward(calibration);
        var expected = model.forward(calibration);
        var (merged, _) = CnnBranchMerge.Merge(model, calibration);
        using var _m = merged;
        merged.train();
        var actual = merged.forward(calibration);
        double scale = expected.abs().max().item<float>();
        double maxAbs = (expected - actual).abs().max().item<float>();
        Assert.True(scale > 0.1, $"logits too small ({scale}) for the comparison to mean anything");
        Assert.True(maxAbs <= 1e-3 * Math.Max(1, scale), $"{family}: train-mode merged vs branched {maxAbs} (scale {scale})");
    }

    [Fact]
    public void MergeLeavesTheBranchedModelAsItWas()
    {
        using var model = Branched(CnnFamily.ResNet);
        using var scope = torch.NewDisposeScope();
        var before = model.state_dict().ToDictionary(e => e.Key, e => e.Value.clone());
        var (merged, _) = CnnBranchMerge.Merge(model, torch.randn(32, 3, 17, 17));
        merged.Dispose();
        foreach (var (name, value) in model.state_dict())
            Assert.True((value == before[name]).all().item<bool>(), $"{name} changed");
    }

    [Fact]
    public void MergedKernelKeepsTheMainKernelsNormPerChannel()
    {
        using var model = Branched(CnnFamily.Vgg);
        using var scope = torch.NewDisposeScope();
        var (merged, _) = CnnBranchMerge.Merge(model, torch.randn(32, 3, 17, 17));
        using var _m = merged;
        var oldMain = ((ConvUnit)model.Stem.Units[0]).Branches[0].Conv!.weight!.flatten(1).norm(1);
        var newMain = ((ConvUnit)merged.Stem.Units[0]).Branches[0].Conv!.weight!.flatten(1).norm(1);
        Assert.True(torch.allclose(oldMain, newMain, rtol: 1e-4, atol: 1e-6));
        // …while the kernel itself changed: it now carries the other branches too.
        Assert.False(((ConvUnit)model.Stem.Units[0]).Branches[0].Conv!.weight!
            .allclose(((ConvUnit)merged.Stem.Units[0]).Branches[0].Conv!.weight!));
    }

    [Fact]
    public void FusedModelIsRefused()
    {
        using var model = Branched(CnnFamily.Vgg);
        using var fused = CnnFusion.Fuse(model);
        using var scope = torch.NewDisposeScope();
        var error = Assert.Throws<InvalidSpecException>(() => CnnBranchMerge.Merge(fused, torch.randn(4, 3, 17, 17)));
        Assert.Contains("already fused", error.Message);
    }

    private static int CountUnits(CnnSpec spec) =>
        spec.AllLayers().Sum(l => l.Layer.Units.Count(u => u.Branches.Count > 1));
}

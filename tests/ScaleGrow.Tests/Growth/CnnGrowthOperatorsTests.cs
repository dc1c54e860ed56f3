using ScaleGrow.Growth;
using ScaleGrow.Models;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Growth;

public class CnnGrowthOperatorsTests
{
    public static IEnumerable<object[]> Families() => Enum.GetValues<CnnFamily>().Select(f => new object[] { f });

    private static CnnSpec SmallSeed(CnnFamily family) =>
        CnnSpecs.Seed(family, 5, inputChannels: 2, imageSize: 12, stageWidths: [8, 12, 16]);

    [Theory]
    [MemberData(nameof(Families))]
    public void DepthGrowthKeepsEveryOldParameterNameAndValueAndAddsOneLayer(CnnFamily family)
    {
        torch.manual_seed(1);
        var seed = SmallSeed(family);
        using var model = new CnnModel(seed);
        var (grownSpec, action) = CnnGrowthOperators.InsertLayer(seed, 1, 0);
        var (grown, newNames) = ModelRebuilder.Rebuild(model, grownSpec, new InitOptions(), 3);
        Assert.Single(grownSpec.Blocks[1].Layers);
        Assert.Equal(action.NewLayerId, grownSpec.Blocks[1].Layers[0].Id);
        var old = model.state_dict();
        var fresh = grown.Module.state_dict();
        foreach (var (name, t) in old)
            Assert.True(fresh[name].eq(t).all().item<bool>(), $"{name} changed");
        Assert.NotEmpty(newNames);
        Assert.All(newNames, n => Assert.StartsWith($"block1.L{action.NewLayerId}.", n));
        Assert.Equal(old.Count + newNames.Count + fresh.Keys.Count(k => !old.ContainsKey(k) && !newNames.Contains(k)), fresh.Count);
        using var x = torch.randn(2, 2, 12, 12);
        grown.Module.eval();
        Assert.Equal(new long[] { 2, 5 }, grown.Module.forward(x).shape);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void WidthGrowthWithZeroGammaLeavesTheFunctionUnchanged(CnnFamily family)
    {
        torch.manual_seed(2);
        var spec = CnnSpecs.Fixed(family, 5, [1, 2, 1], inputChannels: 2, imageSize: 12, stageWidths: [8, 12, 16]);
        using var model = new CnnModel(spec);
        CnnFusionTests.RandomizeNorms(model, channels: 2, size: 12);
        var scores = ImportanceScorer.Score(model);
        var plan = CnnGrowthPlanner.GrowWidth(spec, scores, 1.0, BranchSampling.RandomWithReplacement, new Random(4));
        Assert.NotNull(plan);
        var (grownSpec, action) = plan.Value;
        Assert.Equal(spec.AllLayers().Sum(l => l.Layer.Units.Count), action.Branches.Count); // every unit of every layer
        var (grown, newNames) = ModelRebuilder.Rebuild(model, grownSpec,
            new InitOptions { PreserveFunction = true }, 5);
        Assert.All(newNames, n => Assert.Contains(action.Branches, b => n.Contains($".b{b.BranchId}.")));
        AssertSameOutput(model, grown);
    }

    /// <summary>Function preservation: in eval mode the grown model answers a random batch as the original does.
    /// </summary>
    private static void AssertSameOutput(CnnModel model, IScaleGrowModel grown)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        model.eval();
        grown.Module.eval();
        var x = torch.randn(3, 2, 12, 12);
        double diff = (model.forward(x) - grown.Module.forward(x)).abs().max().item<float>();
        Assert.True(diff < 1e-5, $"output changed by {diff}");
    }

    [Theory]
    [InlineData(CnnFamily.ResNet)]
    [InlineData(CnnFamily.Bottleneck)]
    public void ResidualDepthGrowthWithZeroGammaLeavesTheFunctionUnchanged(CnnFamily family)
    {
        torch.manual_seed(3);
        var spec = CnnSpecs.Fixed(family, 5, [1, 1, 1], inputChannels: 2, imageSize: 12, stageWidths: [8, 12, 16]);
        using var model = new CnnModel(spec);
        CnnFusionTests.RandomizeNorms(model, channels: 2, size: 12);
        var (grownSpec, _) = CnnGrowthOperators.InsertLayer(spec, 0, 1);
        var (grown, _) = ModelRebuilder.Rebuild(model, grownSpec, new InitOptions { PreserveFunction = true }, 5);
        AssertSameOutput(model, grown);
    }

    /// <summary>
    /// Function-preserving depth growth keeps every new layer trainable: the residual branch's first units keep the
    /// inherited γ = 1 and their kernels get gradients from the first step; only the last unit's γ starts at 0.
    /// </summary>
    [Theory]
    [InlineData(CnnFamily.ResNet)]
    [InlineData(CnnFamily.Bottleneck)]
    [InlineData(CnnFamily.MobileNetV3)]
    public void FunctionPreservingResidualLayersStartAtZeroGammaAndStillGetGradients(CnnFamily family)
    {
        torch.manual_seed(4);
        var spec = CnnSpecs.Fixed(family, 5, [1, 0, 0], inputChannels: 2, imageSize: 12, stageWidths: [8, 12, 16]);
        using var model = new CnnModel(spec);
        var (grownSpec, action) = CnnGrowthOperators.InsertLayer(spec, 0, 1);
        var (grown, _) = ModelRebuilder.Rebuild(model, grownSpec, new InitOptions { PreserveFunction = true }, 5);
        using var scope = torch.NewDisposeScope();
        var layer = ((CnnModel)grown).Blocks[0].Layers[1];
        Assert.Equal(action.NewLayerId, layer.Spec.Id);
        var units = layer.Units.Cast<ConvUnit>().ToList();
        Assert.All(units[..^1], u => Assert.Equal(1f, u.Branches[0].Norm.weight!.min().item<float>()));
        Assert.Equal(0f, units[^1].Branches[0].Norm.weight!.abs().max().item<float>());
        grown.Module.train();
        var logits = grown.Module.forward(torch.randn(6, 2, 12, 12));
        nn.functional.cross_entropy(logits, torch.tensor(new long[] { 0, 1, 2, 3, 4, 0 })).backward();
        Assert.True(units[^1].Branches[0].Norm.weight!.grad!.abs().max().item<float>() > 0, "last γ gets no gradient");
        grown.Module.Dispose();
    }

    /// <summary>
    /// A function-preserving VGG layer (identity kernel, BN set to undo its own normalisation from the calibration
    /// batch's statistics) leaves eval-mode logits unchanged wherever it goes, and in train mode changes them only by
    /// how far a batch's statistics are from the calibration batch's.
    /// </summary>
    [Theory]
    [InlineData(0, 0)]
    [InlineData(0, 1)]
    [InlineData(1, 0)]
    [InlineData(2, 0)]
    public void FunctionPreservingVggLayerPassesItsInputThrough(int block, int position)
    {
        torch.manual_seed(6);
        var spec = CnnSpecs.Fixed(CnnFamily.Vgg, 5, [1, 0, 0], inputChannels: 2, imageSize: 12, stageWidths: [8, 12, 16]);
        spec = CnnFusionTests.WithEveryFittingBranch(spec); // multi-branch units before the new layer
        using var model = new CnnModel(spec);
        CnnFusionTests.RandomizeNorms(model, channels: 2, size: 12);
        var (grownSpec, _) = CnnGrowthOperators.InsertLayer(spec, block, position);
        using var scope = torch.NewDisposeScope();
        var calibration = torch.randn(256, 2, 12, 12);
        var (grown, _) = ModelRebuilder.Rebuild(model, grownSpec, new InitOptions { PreserveFunction = true }, 5,
            calibration);
        using (torch.no_grad())
        {
            model.eval();
            grown.Module.eval();
            var x = torch.randn(8, 2, 12, 12);
            var before = model.forward(x);
            double diff = (before - grown.Module.forward(x)).abs().max().item<float>();
            Assert.True(diff < 1e-4, $"eval output changed by {diff} (scale {before.abs().max().item<float>()})");
            // Train mode: compare the new layer's output with its input on a fresh batch of the same distribution.
            var g = (CnnModel)grown;
            g.train();
            var batch = torch.randn(256, 2, 12, 12);
            var input = g.ForwardTo(block, position, batch);
            var output = g.Blocks[block].Layers[position].forward(input);
            double relative = ((output - input).norm() / input.norm()).item<float>();
            Assert.True(relative < 0.1, $"train-mode output differs from the input by {relative:P1}");
        }
        Assert.Throws<InvalidSpecException>(() => ModelRebuilder.Rebuild(model, grownSpec,
            new InitOptions { PreserveFunction = true }, 5));
        grown.Module.Dispose();
    }

    [Fact]
    public void GreedyExcludeLastSkipsTheBlockGrownLastTimeAndAppends()
    {
        var spec = CnnSpecs.Fixed(CnnFamily.Vgg, 5, [2, 0, 0], stageWidths: [8, 12, 16]);
        var scores = new ImportanceReport([new(0, 0.9), new(1, 0.5), new(2, 0.7)],
            spec.AllLayers().Select(l => new LayerImportance(l.Layer.Id, l.Role, l.Index, 1)).ToList());
        var first = CnnGrowthPlanner.GrowDepth(spec, scores, DepthPlacement.GreedyExcludeLast, 0, null, new Random(1))!
            .Value.Action;
        Assert.Equal((0, 2), (first.Block!.Value, first.Position!.Value)); // no previous growth: plain greedy, appended
        var next = CnnGrowthPlanner.GrowDepth(spec, scores, DepthPlacement.GreedyExcludeLast, 1, null, new Random(1),
            lastDepthBlock: 0)!.Value.Action;
        Assert.Equal((2, 0), (next.Block!.Value, next.Position!.Value)); // block 0 grew last: the next best, block 2
        Assert.Contains("except block 0", next.Reason);
        // Only block 0 still open (target 3-0-0): it is taken even though it grew last.
        var only = CnnGrowthPlanner.GrowDepth(spec, scores, DepthPlacement.GreedyExcludeLast, 1, [3, 0, 0],
            new Random(1), lastDepthBlock: 0)!.Value.Action;
        Assert.Equal(0, only.Block);
    }

    [Fact]
    public void GreedyDepthGrowthInsertsIntoTheMostImportantBlockAfterItsMostImportantLayer()
    {
        var spec = CnnSpecs.Fixed(CnnFamily.Vgg, 5, [3, 1, 0], stageWidths: [8, 12, 16]);
        var b0 = spec.Blocks[0].Layers;
        var scores = new ImportanceReport(
            [new BlockImportance(0, 0.9), new BlockImportance(1, 0.5), new BlockImportance(2, 0.7)],
            [
                new LayerImportance(b0[0].Id, LayerRole.Block, 0, 0.1),
                new LayerImportance(b0[1].Id, LayerRole.Block, 0, 0.8),
                new LayerImportance(b0[2].Id, LayerRole.Block, 0, 0.3),
            ]);
        var (grown, action) = CnnGrowthPlanner.GrowDepth(spec, scores, DepthPlacement.Greedy, 0, null, new Random(1))!.Value;
        Assert.Equal(0, action.Block);
        Assert.Equal(2, action.Position);
        Assert.Equal(b0[1].Id, action.AfterLayerId);
        Assert.Equal(action.NewLayerId, grown.Blocks[0].Layers[2].Id);
        Assert.Equal(new[] { b0[0].Id, b0[1].Id }, grown.Blocks[0].Layers.Take(2).Select(l => l.Id));
        // With block 0 full (target 3-…), the next most important block (2, empty) gets it, at its start.
        var (_, next) = CnnGrowthPlanner.GrowDepth(spec, scores, DepthPlacement.Greedy, 0, [3, 5, 5], new Random(1))!.Value;
        Assert.Equal(2, next.Block);
        Assert.Equal(0, next.Position);
    }

    [Fact]
    public void SequentialPlacementAppendsToBlocksInTurnAndRandomIsDeterministic()
    {
        var spec = CnnSpecs.Seed(CnnFamily.Vgg, 5);
        var scores = new ImportanceReport([new(0, 1), new(1, 1), new(2, 1)], []);
        for (int i = 0; i < 6; i++)
        {
            var (grown, action) = CnnGrowthPlanner.GrowDepth(spec, scores, DepthPlacement.Sequential, i, null, new Random(0))!.Value;
            Assert.Equal(i % 3, action.Block);
            Assert.Equal(spec.Blocks[i % 3].Layers.Count, action.Position);
            spec = grown;
        }
        var a = CnnGrowthPlanner.GrowDepth(spec, scores, DepthPlacement.Random, 0, null, new Random(42))!.Value.Action;
        var b = CnnGrowthPlanner.GrowDepth(spec, scores, DepthPlacement.Random, 0, null, new Random(42))!.Value.Action;
        Assert.Equal((a.Block, a.Position), (b.Block, b.Position));
    }

    [Fact]
    public void BranchSpaceRespectsPointwiseAndDepthwiseUnits()
    {
        var spec = CnnSpecs.Fixed(CnnFamily.MobileNetV3, 5, [1, 0, 0]);
        var layer = spec.Blocks[0].Layers[0];
        var geometry = CnnGeometry.UnitsOf(spec, LayerRole.Block, 0);
        var rng = new Random(9);
        for (int i = 0; i < 50; i++)
        {
            // expand/project are 1x1 with different channel counts: only a parallel 1x1 fits.
            Assert.Equal("conv1x1", CnnGrowthPlanner.SampleBranch(geometry[0], layer.Units[0],
                BranchSampling.RandomWithReplacement, rng)!.Value.Name);
            var dw = CnnGrowthPlanner.SampleBranch(geometry[1], layer.Units[1], BranchSampling.RandomWithReplacement, rng)!.Value;
            Assert.True(dw.FitsIn(geometry[1]));
            Assert.True(dw.KernelH <= 3 && dw.KernelW <= 3);
        }
        // Depthwise branches stay depthwise in the built model.
        var (grownSpec, _) = CnnGrowthOperators.AddBranches(spec, [(layer.Id, "dw", "conv1x3"), (layer.Id, "dw", "bn")]);
        using var model = new CnnModel(grownSpec);
        var dwUnit = (ConvUnit)model.Blocks[0].Layers[0].Units[1];
        Assert.Equal(geometry[1].InChannels, dwUnit.Branches[1].Conv!.groups);
    }

    [Fact]
    public void SamplingWithoutReplacementNeverRepeatsAndRunsOut()
    {
        var spec = CnnSpecs.Fixed(CnnFamily.Vgg, 5, [1, 0, 0]);
        var g = CnnGeometry.UnitsOf(spec, LayerRole.Block, 0)[0];
        foreach (var sampling in new[] { BranchSampling.RandomWithoutReplacement, BranchSampling.GreedyWithoutReplacement })
        {
            var unit = spec.Blocks[0].Layers[0].Units[0];
            var rng = new Random(3);
            var picked = new List<string>();
            while (CnnGrowthPlanner.SampleBranch(g, unit, sampling, rng) is { } kind)
            {
                picked.Add(kind.Name);
                unit = unit with { Branches = [.. unit.Branches, new BranchSpec { Id = 100 + picked.Count, Kind = kind.Name }] };
            }
            // 3x3 main: bn, 1x1, 1x3, 3x1, avgpool fit besides the 3x3 already there.
            Assert.Equal(new[] { "avgpool", "bn", "conv1x1", "conv1x3", "conv3x1" }, picked.Order().ToArray());
            if (sampling == BranchSampling.GreedyWithoutReplacement) Assert.Equal("bn", picked[0]);
        }
    }

    [Fact]
    public void GrowingAFusedModelIsRejected()
    {
        var spec = CnnSpecs.Seed(CnnFamily.Vgg, 5) with { Fused = true };
        Assert.Throws<InvalidSpecException>(() => CnnGrowthOperators.InsertLayer(spec, 0, 0));
    }
    /// <summary>
    /// Why `zeros` kills plain (VGG) depth growth (bench/RESULTS.md §3): the new Conv-BN-ReLU layer outputs BN's
    /// β = 0 for every input, exactly at ReLU's kink, where its gradient is 0. No gradient reaches the new layer or
    /// anything before it, and everything after it sees the same input for every sample. The inherited initialiser
    /// trains the same layer.
    /// </summary>
    [Theory]
    [InlineData(InitStrategy.Zeros, true)]
    [InlineData(InitStrategy.Inherit, false)]
    public void AZeroKernelVggLayerBlocksEveryGradientAtItsReluAndMakesTheOutputConstant(InitStrategy strategy,
        bool dead)
    {
        torch.manual_seed(7);
        var spec = CnnSpecs.Fixed(CnnFamily.Vgg, 5, [1, 0, 0], inputChannels: 2, imageSize: 12,
            stageWidths: [8, 12, 16]);
        using var model = new CnnModel(spec);
        var (grownSpec, action) = CnnGrowthOperators.InsertLayer(spec, 1, 0);
        var (grown, newNames) = ModelRebuilder.Rebuild(model, grownSpec, new InitOptions { Strategy = strategy }, 3);
        using var scope = torch.NewDisposeScope();
        grown.Module.train();
        var x = torch.randn(6, 2, 12, 12);
        var logits = grown.Module.forward(x);
        nn.functional.cross_entropy(logits, torch.tensor(new long[] { 0, 1, 2, 3, 4, 0 })).backward();
        var parameters = grown.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        double GradNorm(string name) => parameters[name].grad is { } g ? g.abs().max().item<float>() : 0;
        string kernel = Assert.Single(newNames, n => n.EndsWith(".weight") && parameters[n].dim() == 4);
        string stemKernel = parameters.Keys.First(n => n.StartsWith("stem.") && parameters[n].dim() == 4);
        double spread = (logits - logits[0]).abs().max().item<float>();
        if (dead)
        {
            Assert.All(newNames, n => Assert.Equal(0, GradNorm(n)));
            Assert.Equal(0, GradNorm(stemKernel)); // nothing before the dead layer learns either
            Assert.True(spread < 1e-6, $"logits differ between samples by {spread}: the input still matters");
        }
        else
        {
            Assert.True(GradNorm(kernel) > 0, $"{kernel}: no gradient");
            Assert.True(GradNorm(stemKernel) > 0, $"{stemKernel}: no gradient");
            Assert.True(spread > 1e-4, $"logits barely depend on the input ({spread})");
        }
        Assert.StartsWith($"block1.L{action.NewLayerId}.", kernel);
        grown.Module.Dispose();
    }
}

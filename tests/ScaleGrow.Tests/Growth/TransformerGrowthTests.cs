using ScaleGrow.Growth;
using ScaleGrow.Models;
using ScaleGrow.Models.Transformer;
using ScaleGrow.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Growth;

public class TransformerGrowthTests
{
    private static TransformerSpec Vit(int layers = 2, int heads = 2) =>
        TransformerSpec.Seed(TransformerModality.Image, 5, headDim: 8, layers: layers, heads: heads) with
        {
            InputChannels = 1,
            ImageSize = 8,
            PatchSize = 4,
        };

    private static TransformerSpec Bert(int layers = 2) =>
        TransformerSpec.Seed(TransformerModality.Text, 3, headDim: 8, layers: layers) with
        {
            VocabSize = 50,
            MaxLength = 12,
        };

    private static Tensor Input(TransformerSpec spec)
    {
        if (spec.Modality == TransformerModality.Image) return torch.randn(3, 1, 8, 8);
        var ids = torch.randint(1, spec.VocabSize, new long[] { 3, spec.MaxLength });
        ids[0, 8..] = torch.tensor(0L); // padding in the first sequence
        return ids;
    }

    /// <summary>Gives every parameter non-trivial values so preserved-function checks mean something.</summary>
    private static void Randomize(nn.Module model)
    {
        using var noGrad = torch.no_grad();
        foreach (var (name, p) in model.named_parameters())
            p.copy_(name.Contains("norm") && name.EndsWith("weight") ? torch.rand_like(p) + 0.5 : torch.randn_like(p) * 0.3);
    }

    [Fact]
    public void CountedParametersMatchTheBuiltModel()
    {
        foreach (var spec in new[] { Vit(3, 3), Bert(2) })
        {
            using var model = new TransformerModel(spec);
            Assert.Equal(ModelStats.CountParameters(model), ModelStats.Of(spec).Parameters);
        }
    }

    [Fact]
    public void HeadGrowthKeepsNamesAndPutsOldWeightsInTheLeadingSlices()
    {
        torch.manual_seed(1);
        var spec = Vit();
        using var model = new TransformerModel(spec);
        Randomize(model);
        var (grown, action) = TransformerGrowth.GrowWidth(spec, TransformerWidthGrowth.Heads);
        Assert.Equal(3, grown.Heads);
        Assert.Equal(24, grown.Width);
        var (rebuilt, newNames) = ModelRebuilder.Rebuild(model, grown, new InitOptions { Strategy = InitStrategy.Gaussian }, 2);
        Assert.Empty(newNames); // widening creates no new tensors, only new slices
        var old = model.state_dict();
        var fresh = rebuilt.Module.state_dict();
        Assert.Equal(old.Keys.Order(), fresh.Keys.Order());
        foreach (var (name, t) in old)
        {
            var slice = fresh[name][t.shape.Select(d => TensorIndex.Slice(0, d)).ToArray()];
            Assert.True(slice.eq(t).all().item<bool>(), $"{name}: old values not in the leading slice");
        }
        var q = fresh[$"layers.L0.attn.q.weight"];
        Assert.Equal(new long[] { 24, 24 }, q.shape);
        Assert.True(q[16.., ..].abs().sum().item<float>() > 0, "the new head's rows were initialised");
        Assert.Contains("heads 2 -> 3", action.Reason);
    }

    [Fact]
    public void BothWidthGrowthsAddOneSeedHeadOfWidthPerGrowthSoTheAblationArmsGrowAlike()
    {
        var seed = TransformerSpec.Seed(TransformerModality.Image, 10, headDim: 32, layers: 1, heads: 2);
        var run = new ScaleGrow.Runs.RunSpec
        {
            Model = new ScaleGrow.Runs.ModelRequest { Family = "vit", Heads = 2, HeadDim = 32 },
        };
        int step = run.Settings().Growth.HeadDimStep;
        Assert.Equal(16, step);
        TransformerSpec heads = seed, wider = seed;
        for (int i = 1; i <= 5; i++)
        {
            heads = TransformerGrowth.GrowWidth(heads, TransformerWidthGrowth.Heads, step).Spec;
            wider = TransformerGrowth.GrowWidth(wider, TransformerWidthGrowth.HeadDim, step).Spec;
            Assert.Equal(64 + 32 * i, heads.Width);
            Assert.Equal(heads.Width, wider.Width);
            Assert.Equal((2 + i, 32), (heads.Heads, heads.HeadDim));
            Assert.Equal((2, 32 + 16 * i), (wider.Heads, wider.HeadDim));
        }
    }

    public static IEnumerable<object[]> PreservingCases() =>
    [
        ["vit", TransformerWidthGrowth.Heads], ["bert", TransformerWidthGrowth.Heads],
        ["vit", TransformerWidthGrowth.HeadDim], ["bert", TransformerWidthGrowth.HeadDim],
    ];

    [Theory]
    [MemberData(nameof(PreservingCases))]
    public void FunctionPreservingWidthGrowthLeavesTheOutputUnchanged(string kind, TransformerWidthGrowth how)
    {
        torch.manual_seed(3);
        var spec = kind == "vit" ? Vit() : Bert();
        using var model = new TransformerModel(spec);
        Randomize(model);
        var (grown, _) = TransformerGrowth.GrowWidth(spec, how);
        var (rebuilt, _) = ModelRebuilder.Rebuild(model, grown,
            new InitOptions { Strategy = InitStrategy.Gaussian, PreserveFunction = true }, 4);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        model.eval();
        rebuilt.Module.eval();
        var x = Input(spec);
        var before = model.forward(x);
        var after = rebuilt.Module.forward(x);
        double diff = (before - after).abs().max().item<float>();
        Assert.True(before.abs().max().item<float>() > 0.1);
        Assert.True(diff < 1e-4, $"{kind}/{how}: output changed by {diff}");
        // Without preservation the same growth does change the output (the test can fail).
        var (plain, _) = ModelRebuilder.Rebuild(model, grown, new InitOptions { Strategy = InitStrategy.Gaussian }, 4);
        plain.Module.eval();
        Assert.True((before - plain.Module.forward(x)).abs().max().item<float>() > 1e-3);
    }

    [Fact]
    public void FunctionPreservingDepthGrowthInsertsAnIdentityLayer()
    {
        torch.manual_seed(5);
        var spec = Vit();
        using var model = new TransformerModel(spec);
        Randomize(model);
        var scores = ImportanceScorer.Score(model);
        var (grown, action) = TransformerGrowth.GrowDepth(spec, scores, DepthPlacement.First, new Random(1));
        var (rebuilt, newNames) = ModelRebuilder.Rebuild(model, grown, new InitOptions { PreserveFunction = true }, 6);
        Assert.All(newNames, n => Assert.StartsWith($"layers.L{action.NewLayerId}.", n));
        using var noGrad = torch.no_grad();
        model.eval();
        rebuilt.Module.eval();
        var x = Input(spec);
        Assert.True((model.forward(x) - rebuilt.Module.forward(x)).abs().max().item<float>() < 1e-5);
    }

    [Fact]
    public void DepthInsertionOrderFollowsThePlacementRule()
    {
        var spec = Vit(layers: 3);
        var ids = spec.Layers.Select(l => l.Id).ToArray();
        var scores = new ImportanceReport([new(0, 1)],
        [
            new(ids[0], ScaleGrow.Models.Cnn.LayerRole.Block, 0, 0.2),
            new(ids[1], ScaleGrow.Models.Cnn.LayerRole.Block, 0, 0.9),
            new(ids[2], ScaleGrow.Models.Cnn.LayerRole.Block, 0, 0.5),
        ]);
        var (greedy, g) = TransformerGrowth.GrowDepth(spec, scores, DepthPlacement.Greedy, new Random(0));
        Assert.Equal(new[] { ids[0], ids[1], g.NewLayerId!.Value, ids[2] }, greedy.Layers.Select(l => l.Id));
        var (first, f) = TransformerGrowth.GrowDepth(spec, scores, DepthPlacement.First, new Random(0));
        Assert.Equal(f.NewLayerId, first.Layers[0].Id);
        var (last, l) = TransformerGrowth.GrowDepth(spec, scores, DepthPlacement.Last, new Random(0));
        Assert.Equal(l.NewLayerId, last.Layers[^1].Id);
        Assert.Equal("ViT-D4W16", greedy.ArchString);
    }

    [Fact]
    public void ImportanceReadsLayerNormScales()
    {
        var spec = Vit();
        using var model = new TransformerModel(spec);
        using (torch.no_grad())
        {
            model.Layers[0].Norms[0].weight!.fill_(2);
            model.Layers[0].Norms[1].weight!.fill_(-4);
        }
        var report = ImportanceScorer.Score(model);
        Assert.Equal(3.0, report.Layers[0].Score, 5);
        Assert.Equal(1.0, report.Layers[1].Score, 5);
    }

    [Theory]
    [InlineData(TransformerWidthGrowth.Heads)]
    [InlineData(TransformerWidthGrowth.HeadDim)]
    public void AdamMomentsLandInTheMatchingSlicesAndNewOnesAreZero(TransformerWidthGrowth how)
    {
        torch.manual_seed(7);
        var spec = Vit();
        using var model = new TransformerModel(spec);
        var adam = new NamedOptimizer(model.named_parameters(), new TrainingOptions { Optimizer = OptimizerKind.AdamW, LearningRate = 1e-3 });
        var x = Input(spec);
        var y = torch.tensor(new long[] { 0, 1, 2 });
        Trainer.TrainEpoch(model, adam, new LearningRateSchedule(1e-3, 0, 0, 0), Enumerable.Repeat((x, y), 3));
        using var old = adam.Export();
        var (grown, _) = TransformerGrowth.GrowWidth(spec, how);
        var (rebuilt, _) = ModelRebuilder.Rebuild(model, grown, new InitOptions(), 8);
        using var migrated = OptimizerMigration.Migrate(old, rebuilt.Module.named_parameters(),
            OptimizerMigrationStrategy.Inherit, spec, grown);
        foreach (var (key, moment) in old.Moments)
        {
            var placed = torch.zeros_like(migrated.Moments[key]);
            TensorPlacement.CopyInto(placed, moment, key[..key.IndexOf("::")], spec, grown);
            Assert.True(placed.eq(migrated.Moments[key]).all().item<bool>(), $"{key} misplaced");
            Assert.Equal(moment.abs().sum().item<float>(), migrated.Moments[key].abs().sum().item<float>(), 3);
        }
        // The q rows of head 0 keep their moments at rows 0..d (head-dim growth moves head 1's rows to its new block).
        var q = migrated.Moments["layers.L0.attn.q.weight::exp_avg"];
        var oldQ = old.Moments["layers.L0.attn.q.weight::exp_avg"];
        Assert.True(q[..8, ..16].eq(oldQ[..8, ..]).all().item<bool>());
        int head1 = how == TransformerWidthGrowth.Heads ? 8 : grown.HeadDim;
        Assert.True(q[head1..(head1 + 8), ..16].eq(oldQ[8..16, ..]).all().item<bool>());
        var resumed = new NamedOptimizer(rebuilt.Module.named_parameters(), adam.Options);
        resumed.Import(migrated);
        Assert.Equal(3, resumed.Step);
    }
}

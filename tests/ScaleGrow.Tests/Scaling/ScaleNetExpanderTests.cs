using ScaleGrow.Models;
using ScaleGrow.Models.Adapters;
using ScaleGrow.Models.Transformer;
using ScaleGrow.Scaling;
using ScaleGrow.Training;
using TorchSharp;
using static ScaleGrow.Tests.Scaling.ScaleNetTestModels;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Scaling;

public class ScaleNetExpanderTests
{
    [Theory]
    [InlineData(LayerMappingKind.Cyclic, 4, 8, "0,1,2,3,0,1,2,3", "TTTTFFFF")]
    [InlineData(LayerMappingKind.Stack, 4, 8, "0,0,1,1,2,2,3,3", "TFTFTFTF")]
    [InlineData(LayerMappingKind.InterleaveNew, 4, 8, "0,1,1,2,2,3,3,3", "TFTFTFTF")]
    [InlineData(LayerMappingKind.Cyclic, 3, 5, "0,1,2,0,1", "TTTFF")]
    [InlineData(LayerMappingKind.Stack, 3, 5, "0,0,1,1,2", "TFTFT")]
    [InlineData(LayerMappingKind.InterleaveNew, 4, 6, "0,1,1,2,3,3", "TFTTFT")]
    public void MappingsGiveTheDocumentedLayerSequences(LayerMappingKind kind, int original, int target,
        string sources, string originals)
    {
        var map = LayerMapping.Map(kind, original, target);
        Assert.Equal(sources, string.Join(",", map.Select(m => m.Source)));
        Assert.Equal(originals, string.Concat(map.Select(m => m.IsOriginal ? 'T' : 'F')));
        // Every pretrained layer appears exactly once as itself.
        Assert.Equal(Enumerable.Range(0, original), map.Where(m => m.IsOriginal).Select(m => m.Source).Order());
    }

    [Fact]
    public void ATargetShallowerThanThePretrainedModelIsRejected()
    {
        var e = Assert.Throws<InvalidSpecException>(() => LayerMapping.Map(LayerMappingKind.Cyclic, 4, 3));
        Assert.Contains("target depth 3", e.Message);
    }

    public static TheoryData<LayerMappingKind, AdapterKind, AdapterPlacement, bool> Variants => new()
    {
        { LayerMappingKind.Cyclic, AdapterKind.ParallelBottleneck, AdapterPlacement.Both, false },
        { LayerMappingKind.Stack, AdapterKind.Lora, AdapterPlacement.Both, false },
        { LayerMappingKind.InterleaveNew, AdapterKind.Lora, AdapterPlacement.Attention, true },
        { LayerMappingKind.Cyclic, AdapterKind.None, AdapterPlacement.Both, true },
        { LayerMappingKind.Stack, AdapterKind.ParallelBottleneck, AdapterPlacement.Mlp, true },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void ExpandedModelComputesThePretrainedLayersInTheMappedOrder(LayerMappingKind mapping, AdapterKind adapter,
        AdapterPlacement where, bool ownNorms)
    {
        torch.manual_seed(11);
        using var pretrained = new TransformerModel(Vit(3));
        Randomize(pretrained);
        var options = new ScaleNetOptions
        {
            Mapping = mapping, Adapter = adapter, Rank = 2, Where = where, OwnNorms = ownNorms,
        };
        var (expanded, expansion) = ScaleNetExpander.Expand(pretrained, options, seed: 5);
        Assert.Equal(6, ((TransformerSpec)expanded.Spec).Layers.Count);

        // The hand-composed reference: embedding, the pretrained layers in g's order, final norm and head.
        pretrained.eval();
        expanded.Module.eval();
        using var noGrad = torch.no_grad();
        var x = Images();
        var h = pretrained.Embedding.forward(x);
        foreach (var m in LayerMapping.Map(mapping, 3, 6)) h = pretrained.Layers[m.Source].forward(h, null);
        var reference = pretrained.Head.forward(pretrained.FinalNorm.forward(h[.., 0]));
        Assert.True(MaxAbsDiff(expanded.Module.forward(x), reference) < 1e-5);
        // And not trivially: running the pretrained model alone differs.
        Assert.True(MaxAbsDiff(pretrained.forward(x), reference) > 1e-3);

        Assert.Equal(expansion.Mapping.Select(i => i.SourceLayerId),
            LayerMapping.Map(mapping, 3, 6).Select(m => m.Source));
    }

    [Fact]
    public void UniqueParametersAreThePretrainedOnesPlusAdaptersAndOwnNorms()
    {
        using var pretrained = new TransformerModel(Vit(3));
        long original = ModelStats.CountParameters(pretrained);
        int w = 8, r = 2, hidden = 16;
        long bottleneck = 2 * (2L * r * w + r + w);                    // attention and MLP adapters, with biases
        long lora = r * (4L * (w + w) + (w + hidden) + (hidden + w));   // q, k, v, o, fc1, fc2
        long norms = 2 * 2L * w;                                        // two LayerNorms (γ, β)

        var (a, ea) = ScaleNetExpander.Expand(pretrained, new ScaleNetOptions { Rank = r }, 1);
        Assert.Equal(original + 6 * bottleneck, ModelStats.CountParameters(a.Module));
        Assert.Equal(original + 6 * bottleneck, ea.ParametersAfter);
        Assert.Equal(original, ea.ParametersBefore);

        var (b, _) = ScaleNetExpander.Expand(pretrained,
            new ScaleNetOptions { Adapter = AdapterKind.Lora, Rank = r, OwnNorms = true }, 1);
        Assert.Equal(original + 6 * lora + 3 * norms, ModelStats.CountParameters(b.Module));
        Assert.Equal(ModelStats.CountParameters(b.Module), ModelStats.Of(b.Spec).Parameters);

        var (c, _) = ScaleNetExpander.Expand(pretrained, new ScaleNetOptions { Adapter = AdapterKind.None }, 1);
        Assert.Equal(original, ModelStats.CountParameters(c.Module));

        // Independent copies (progressive stacking): every new instance has its own layer.
        var (d, _) = ScaleNetExpander.Expand(pretrained,
            new ScaleNetOptions { Adapter = AdapterKind.None, ShareWeights = false }, 1);
        using var trunkless = new TransformerModel(Vit(0));
        long perLayer = (original - ModelStats.CountParameters(trunkless)) / 3;
        Assert.Equal(original + 3 * perLayer, ModelStats.CountParameters(d.Module));
    }

    [Fact]
    public void TrainingAdaptersOnlyHandsTheOptimizerOnlyPerInstanceParametersAndLeavesSharedWeightsAlone()
    {
        torch.manual_seed(2);
        using var pretrained = new TransformerModel(Vit(2));
        Randomize(pretrained);
        var (model, _) = ScaleNetExpander.Expand(pretrained,
            new ScaleNetOptions { Rank = 2, OwnNorms = true, TrainAdaptersOnly = true }, 3);
        var trainable = ScaleNetExpander.TrainableParameters(model, adaptersOnly: true);
        Assert.All(trainable, p => Assert.True(p.Name.Contains(".adapter.") || p.Name.Contains(".norm"), p.Name));
        Assert.Contains(trainable, p => p.Name == "layers.L2.norm1.weight");
        Assert.Contains(trainable, p => p.Name == "layers.L0.adapter.attn.up.weight");
        // 4 instances × 2 adapters × (down, up) × (weight, bias), and 4 instances × 2 own LayerNorms × (γ, β).
        Assert.Equal(4 * 2 * 2 * 2 + 4 * 2 * 2, trainable.Count);

        using var optimizer = new NamedOptimizer(trainable, new TrainingOptions
        {
            Optimizer = OptimizerKind.AdamW, LearningRate = 0.01, WeightDecay = 0,
        });
        var before = model.Module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var schedule = new LearningRateSchedule(0.01, 0.01, 0, 0);
        var batches = new[] { (Images(8), torch.randint(0, 5, [8], dtype: ScalarType.Int64)) };
        Trainer.TrainEpoch(model.Module, optimizer, schedule, batches);
        Trainer.TrainEpoch(model.Module, optimizer, schedule, batches);
        foreach (var (name, t) in model.Module.state_dict())
        {
            bool changed = MaxAbsDiff(t, before[name]) > 0;
            Assert.True(changed == trainable.Any(p => p.Name == name), $"{name}: changed={changed}");
        }
    }

    [Fact]
    public void ExpandingAnExpandedModelOrANonLayeredSpecIsRejected()
    {
        using var pretrained = new TransformerModel(Vit(2));
        var (expanded, _) = ScaleNetExpander.Expand(pretrained, new ScaleNetOptions(), 1);
        Assert.Contains("already expanded",
            Assert.Throws<InvalidSpecException>(() => ScaleNetExpander.Expand(expanded, new ScaleNetOptions(), 1))
                .Message);
        var cnn = ScaleGrow.Models.Cnn.CnnSpecs.Seed(ScaleGrow.Models.Cnn.CnnFamily.Vgg, 10);
        Assert.Contains("no layer stack",
            Assert.Throws<InvalidSpecException>(() => ScaleNetExpander.ExpandSpec(cnn, new ScaleNetOptions())).Message);
    }
}

using ScaleGrow.Models;
using ScaleGrow.Models.Adapters;
using ScaleGrow.Models.Decoder;
using ScaleGrow.Scaling;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Models;

public class DecoderModelTests
{
    internal static DecoderSpec Tiny(int layers = 2, bool tied = false, int kvHeads = 2) =>
        DecoderSpec.Create(vocabSize: 23, hidden: 16, layers: layers, heads: 4, kvHeads: kvHeads, intermediate: 24,
            tieEmbeddings: tied, maxPositions: 32);

    internal static void Randomize(nn.Module model)
    {
        using var noGrad = torch.no_grad();
        foreach (var (name, p) in model.named_parameters())
            p.copy_(p.dim() == 1 ? torch.rand_like(p) + 0.5 : torch.randn_like(p) * 0.3);
    }

    private static Tensor Ids(long batch = 2, long t = 9) => torch.randint(0, 23, [batch, t], dtype: ScalarType.Int64);

    [Theory]
    [InlineData(false, 2)]
    [InlineData(true, 1)]
    [InlineData(false, 4)]
    public void ForwardMatchesTheWrittenOutLlamaComputation(bool tied, int kvHeads)
    {
        torch.manual_seed(7);
        var spec = Tiny(tied: tied, kvHeads: kvHeads) with { RopeTheta = 500 };
        using var model = new DecoderModel(spec);
        Randomize(model);
        var ids = Ids();
        using var noGrad = torch.no_grad();
        var expected = LlamaReference.Forward(LlamaReference.ToHuggingFaceNames(model.state_dict()), spec, 2, ids);
        var actual = model.forward(ids);
        Assert.Equal(new long[] { 2, 9, 23 }, actual.shape);
        Assert.True((actual - expected).abs().max().item<float>() < 1e-4);
    }

    [Fact]
    public void LaterTokensDoNotChangeEarlierLogits()
    {
        torch.manual_seed(8);
        using var model = new DecoderModel(Tiny());
        Randomize(model);
        var ids = Ids(1, 10);
        var changed = ids.clone();
        changed[0, 7] = torch.tensor((ids[0, 7].item<long>() + 1) % 23);
        using var noGrad = torch.no_grad();
        var a = model.forward(ids);
        var b = model.forward(changed);
        Assert.True((a[.., ..7] - b[.., ..7]).abs().max().item<float>() == 0);
        Assert.True((a[.., 7..] - b[.., 7..]).abs().max().item<float>() > 1e-4);
    }

    [Fact]
    public void TiedEmbeddingsHaveNoHeadTensorAndCountsMatchTheSpec()
    {
        using var tied = new DecoderModel(Tiny(tied: true));
        using var untied = new DecoderModel(Tiny());
        Assert.DoesNotContain("head.weight", tied.state_dict().Keys);
        Assert.Contains("head.weight", untied.state_dict().Keys);
        Assert.Equal(ModelStats.CountParameters(untied) - 23 * 16, ModelStats.CountParameters(tied));
        Assert.Equal(ModelStats.CountParameters(tied), ModelStats.Of(tied.Spec).Parameters);
        Assert.Equal(ModelStats.CountParameters(untied), ModelStats.Of(untied.Spec).Parameters);
        Assert.Equal(
            ["embed.weight", "head.weight", "layers.L0.attn.k.weight", "layers.L0.attn.o.weight",
             "layers.L0.attn.q.weight", "layers.L0.attn.v.weight", "layers.L0.mlp.down.weight",
             "layers.L0.mlp.gate.weight", "layers.L0.mlp.up.weight", "layers.L0.norm1.weight",
             "layers.L0.norm2.weight", "norm.weight"],
            new DecoderModel(Tiny(1)).state_dict().Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void SpecRoundTripsThroughJsonAndRejectsKvHeadsThatDoNotDivideHeads()
    {
        var spec = Tiny() with { RopeScaling = new RopeScaling { Factor = 8 }, BosTokenId = 1 };
        var back = (DecoderSpec)ArchitectureSpec.FromJson(spec.ToJson());
        Assert.Equal(spec.RopeScaling, back.RopeScaling);
        Assert.Equal(spec.Layers, back.Layers);
        Assert.Equal(spec with { Layers = back.Layers }, back);
        var e = Assert.Throws<InvalidSpecException>(() => (Tiny() with { KvHeads = 3 }).Validate());
        Assert.Contains("kvHeads must divide heads (4)", e.Message);
        Assert.Contains("numClasses", Assert.Throws<InvalidSpecException>(
            () => (Tiny() with { NumClasses = 5 }).Validate()).Message);
    }

    [Theory]
    [InlineData(AdapterKind.Lora)]
    [InlineData(AdapterKind.ParallelBottleneck)]
    public void ScaleNetExpandsADecoderIntoItsLayersInTheMappedOrder(AdapterKind adapter)
    {
        torch.manual_seed(9);
        using var pretrained = new DecoderModel(Tiny(3, tied: true));
        Randomize(pretrained);
        var options = new ScaleNetOptions
        {
            Mapping = LayerMappingKind.Stack, Adapter = adapter, Rank = 2, OwnNorms = true,
        };
        var (expanded, expansion) = ScaleNetExpander.Expand(pretrained, options, 1);
        var spec = (DecoderSpec)expanded.Spec;
        Assert.Equal(6, spec.Layers.Count);
        Assert.Equal("Llama-D6W16", expansion.ArchAfter);

        var ids = Ids();
        using var noGrad = torch.no_grad();
        var (cos, sin) = RotaryEmbedding.Tables(pretrained.Spec, ids.shape[1]);
        var h = pretrained.Embedding.forward(ids);
        foreach (var m in LayerMapping.Map(LayerMappingKind.Stack, 3, 6))
            h = pretrained.Layers[m.Source].forward(h, cos, sin);
        var reference = pretrained.Logits(pretrained.FinalNorm.forward(h));
        Assert.True((expanded.Module.forward(ids) - reference).abs().max().item<float>() < 1e-5);

        long perInstance = AdapterCounts.Parameters(spec.Layers[0].Adapter, 16, spec.LayerProjections, bias: false);
        Assert.Equal(ModelStats.CountParameters(pretrained) + 6 * perInstance + 3 * 2 * 16,
            ModelStats.CountParameters(expanded.Module));
        Assert.Equal(ModelStats.CountParameters(expanded.Module), ModelStats.Of(spec).Parameters);
    }
}

using ScaleGrow.Checkpoints;
using ScaleGrow.Models;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Models.Decoder;
using ScaleGrow.Models.Transformer;
using TorchSharp;

namespace ScaleGrow.Tests.Models;

/// <summary>
/// Memory a spec needs, known before anything is built, and the limit specs are held to (issue 16). Loading checks a
/// spec's parameter count against the values its file holds, so that count must never exceed what a real
/// checkpoint of any family stores.
/// </summary>
public class ModelMemoryTests
{
    public static TheoryData<string> Families() =>
        ["vgg", "resnet", "bottleneck", "mbv3", "vgg-fused", "mbv3-fused", "vit", "bert", "decoder", "decoder-gqa"];

    private static IScaleGrowModel Build(string family) => family switch
    {
        "vit" => ModelFactory.Create(TransformerSpec.Seed(TransformerModality.Image, 10, 16, layers: 2)),
        "bert" => ModelFactory.Create(TransformerSpec.Seed(TransformerModality.Text, 4, 16, layers: 2) with
        { VocabSize = 300, MaxLength = 32 }),
        "decoder" => ModelFactory.Create(DecoderSpec.Create(200, 32, 2, 4, 4, 64, tieEmbeddings: true, 64)),
        "decoder-gqa" => ModelFactory.Create(DecoderSpec.Create(200, 32, 2, 4, 2, 64, tieEmbeddings: false, 64)),
        _ when family.EndsWith("-fused") => CnnFusion.Fuse(Cnn(family[..^6])),
        _ => Cnn(family),
    };

    private static CnnModel Cnn(string family) =>
        (CnnModel)ModelFactory.Create(CnnSpecs.Fixed(CnnSpec.ParseFamily(family), 10, [1, 1, 1], 1, 28, [16, 16, 16]));

    [Theory]
    [MemberData(nameof(Families))]
    public void EveryFamilysCheckpointHoldsAtLeastTheParametersItsSpecCountsAndLoadsBack(string family)
    {
        torch.manual_seed(1);
        var built = Build(family);
        var values = built.Module.state_dict().Values.Distinct<torch.Tensor>(ReferenceEqualityComparer.Instance)
            .Sum(t => t.NumberOfElements);
        Assert.True(ModelMemory.Of(built.Spec).Parameters <= values,
            $"{family}: spec counts {ModelMemory.Of(built.Spec).Parameters} parameters, the state holds {values}");

        var (loaded, _) = ModelIO.LoadModel(ModelIO.SaveModel(built), family);
        Assert.Equal(built.Spec.ToJson(), loaded.Spec.ToJson());
        built.Module.Dispose();
        loaded.Module.Dispose();
    }

    [Fact]
    public void ASpecOverTheLimitIsRefusedWithOneLineSayingWhatItNeeds()
    {
        var spec = CnnSpecs.Fixed(CnnFamily.Vgg, 10, [2, 2, 2], 1, 28, [64, 96, 128]);
        var memory = ModelMemory.Of(spec);
        Assert.Equal(ModelStats.Of(spec).Parameters * 4, memory.ParameterBytes);

        ModelMemory.EnsureWithinLimit(spec, 128, "model", limitBytes: memory.ParameterBytes +
                                                                      memory.ActivationBytesPerSample * 128);
        var parameters = Assert.Throws<InvalidSpecException>(() =>
            ModelMemory.EnsureWithinLimit(spec, 1, "model", limitBytes: memory.ParameterBytes - 1));
        Assert.Matches(
            @"^model: VGG-2-2-2 has [\d,]+ parameters \([\d.]+ MiB\), over the [\d.]+ MiB model memory limit$",
            parameters.Message);
        var activations = Assert.Throws<InvalidSpecException>(() => ModelMemory.EnsureWithinLimit(spec, 1024, "model",
            limitBytes: memory.ActivationBytesPerSample * 1000));
        Assert.Contains("of activations for a batch of 1024", activations.Message);
    }

    [Fact]
    public void CountsThatWouldOverflow64BitsAreAnErrorNotNegativeFlops()
    {
        // Validation refuses such a spec; the counters must not wrap around even when called without it.
        var spec = CnnSpecs.Fixed(CnnFamily.Vgg, 10, [1, 1, 1], 1, 28, [64, 64, 64]) with { ImageSize = int.MaxValue };

        var e = Assert.Throws<InvalidSpecException>(() => ModelStats.Of(spec));

        Assert.Contains("overflow", e.Message);
        Assert.Contains("imageSize must be in 4..8192", Assert.Throws<InvalidSpecException>(spec.Validate).Message);
    }

    [Theory]
    [InlineData("1000000", 1_000_000L)]
    [InlineData("512M", 512L << 20)]
    [InlineData("8G", 8L << 30)]
    [InlineData("1.5k", 1536L)]
    [InlineData(" 2T ", 2L << 40)]
    public void TheLimitSettingReadsBytesWithBinarySuffixes(string text, long bytes) =>
        Assert.Equal(bytes, ModelMemory.ParseBytes(text, ModelMemory.LimitSetting));

    [Theory]
    [InlineData("lots")]
    [InlineData("0")]
    [InlineData("-5G")]
    [InlineData("8X")]
    [InlineData("1e300")]
    public void AMalformedLimitSettingIsAOneLineError(string text) =>
        Assert.Contains("is not a size in bytes",
            Assert.Throws<InvalidSpecException>(() => ModelMemory.ParseBytes(text, ModelMemory.LimitSetting)).Message);
}

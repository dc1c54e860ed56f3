using Onnx;
using ScaleGrow.Checkpoints;
using ScaleGrow.Data;
using ScaleGrow.Data.Text;
using ScaleGrow.Export;
using ScaleGrow.Models;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Models.Decoder;
using ScaleGrow.Models.Transformer;
using ScaleGrow.Quantization;
using ScaleGrow.Runs;
using ScaleGrow.Tests.Cli;
using ScaleGrow.Tests.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Export;

/// <summary>
/// ONNX export, checked in ONNX Runtime (issue 20): for every family, the exported file's logits agree with
/// ScaleGrow's own within 1e-4 on real test data (Fashion-MNIST test images; fortunes text for BERT and the decoder),
/// at batch 1 and at a larger batch, and quantized exports agree with ScaleGrow's quantized evaluation.
/// </summary>
public class OnnxExportTests
{
    private const double Tolerance = 1e-4;
    private const int Samples = 300;

    public static IEnumerable<object[]> CnnFamilies() => Enum.GetValues<CnnFamily>().Select(f => new object[] { f });

    [Theory]
    [MemberData(nameof(CnnFamilies))]
    public void AnUnfusedGrownCnnIsFusedAndItsOnnxLogitsMatchTorchSharpOnFashionMnist(CnnFamily family)
    {
        using var model = GrownCnn(family);
        var metadata = ModelCommandsTestKit.FashionMnistInput();
        var export = OnnxExporter.ExportCheckpoint(ModelIO.SaveModel(model, metadata), "grown.safetensors",
            new OnnxExportOptions());
        Assert.True(export.FusedUnits > 0);
        Assert.Contains(export.Notes, n => n.Contains("fused", StringComparison.Ordinal));

        // Initializers carry the fused checkpoint's parameter names.
        var proto = ModelProto.Parser.ParseFrom(export.Bytes);
        using (var fused = CnnFusion.Fuse(model))
        {
            var names = fused.state_dict().Keys.ToHashSet(StringComparer.Ordinal);
            var initializers = proto.Graph.Initializer.Select(i => i.Name).Where(n => !n.StartsWith("const.")).ToList();
            Assert.Contains("stem.conv.fused.weight", initializers);
            Assert.Contains("head.fc.weight", initializers);
            Assert.All(initializers, n => Assert.Contains(n, names));
        }
        Assert.Equal(metadata[InputNormalization.MetadataKey],
            proto.MetadataProps.Single(p => p.Key == InputNormalization.MetadataKey).Value);

        // Batch 1 against the fused model (what is deployed; fused == unfused is CnnFusionTests' business), batch 100
        // against the grown model with all its branches.
        var data = FashionMnistTest(metadata);
        using (var fused = CnnFusion.Fuse(model)) AssertSameLogits(fused, export.Bytes, data, [1], $"{family} fused");
        AssertSameLogits(model, export.Bytes, data, [100], $"{family} unfused");
    }

    [Fact]
    public void AFixedBatchExportRunsEveryBatchSizeInChunks()
    {
        using var model = GrownCnn(CnnFamily.Vgg);
        var metadata = ModelCommandsTestKit.FashionMnistInput();
        var export = OnnxExporter.ExportCheckpoint(ModelIO.SaveModel(model, metadata), "vgg",
            new OnnxExportOptions { Batch = 32, Opset = 18 });
        var input = ModelProto.Parser.ParseFrom(export.Bytes).Graph.Input.Single();
        Assert.Equal(32, input.Type.TensorType.Shape.Dim[0].DimValue);
        Assert.Equal(18, ModelProto.Parser.ParseFrom(export.Bytes).OpsetImport.Single().Version);
        using var fused = CnnFusion.Fuse(model);
        AssertSameLogits(fused, export.Bytes, FashionMnistTest(metadata), [1, 100], "VGG, batch 32");
    }

    [Fact]
    public void VitOnnxLogitsMatchTorchSharpOnFashionMnist()
    {
        torch.manual_seed(11);
        var spec = TransformerSpec.Seed(TransformerModality.Image, 10, headDim: 8, layers: 2, heads: 2);
        spec.PatchSize = 7;
        using var model = new TransformerModel(spec);
        RandomizeTransformer(model);
        var metadata = ModelCommandsTestKit.FashionMnistInput();
        var export = OnnxExporter.ExportCheckpoint(ModelIO.SaveModel(model, metadata), "vit", new OnnxExportOptions());
        AssertSameLogits(model, export.Bytes, FashionMnistTest(metadata), [1, 100], spec.ArchString);
    }

    [Fact]
    public void BertOnnxLogitsMatchTorchSharpOnFortunesAndItsTokenizerComesAlong()
    {
        using var data = new TextRunData(TextDataLoader.Load(new TextDatasetSpec(MaxClasses: 4, VocabSize: 400,
            SequenceLength: 48)));
        torch.manual_seed(12);
        var spec = (TransformerSpec)data.BuildArchitecture(new ModelRequest
        { Family = "bert", Layers = 2, Heads = 2, HeadDim = 8 });
        using var model = new TransformerModel(spec);
        RandomizeTransformer(model);
        var export = OnnxExporter.ExportCheckpoint(ModelIO.SaveModel(model, data.CheckpointMetadata), "bert",
            new OnnxExportOptions());
        Assert.Equal(data.CheckpointMetadata[TextTokenizer.MetadataKey], export.Tokenizer);
        AssertSameLogits(model, export.Bytes, data, [1, 64], spec.ArchString);
    }

    [Theory]
    [InlineData(2, false)]
    [InlineData(1, true)]
    public void DecoderOnnxLogitsMatchTorchSharpOnFortunesForEveryPosition(int kvHeads, bool tied)
    {
        var data = new LanguageModelRunData(LanguageModelDataLoader.Load(new TextDatasetSpec(
            MaxClasses: 4, VocabSize: 300, SequenceLength: 32, Task: TextDatasetSpec.LanguageModel)));
        torch.manual_seed(13);
        var spec = (DecoderSpec)data.BuildArchitecture(new ModelRequest
        { Family = "decoder", Layers = 2, Heads = 2, HeadDim = 8, KvHeads = kvHeads, MlpRatio = 2 });
        spec = spec with { TieEmbeddings = tied };
        using var model = new DecoderModel(spec);
        RandomizeTransformer(model);
        var export = OnnxExporter.ExportCheckpoint(ModelIO.SaveModel(model, data.CheckpointMetadata), "decoder",
            new OnnxExportOptions());
        AssertSameLogits(model, export.Bytes, data, [1, 16], spec.ArchString);
    }

    public static IEnumerable<object[]> QuantizedCases() =>
    [
        [CnnFamily.Vgg, QuantizationMethods.GptqReorder, 8, 0],        // per output channel, uint8
        [CnnFamily.ResNet, QuantizationMethods.Rtn, 4, 16],            // blocked groups, uint4
        [CnnFamily.Bottleneck, QuantizationMethods.GptqReorder, 4, 8], // permuted groups, one conv group: Gather
        [CnnFamily.MobileNetV3, QuantizationMethods.GptqReorder, 3, 4], // permuted depthwise groups: scales per element
    ];

    [Theory]
    [MemberData(nameof(QuantizedCases))]
    public void AQuantizedExportReproducesTheQuantizedWeightsAndLogits(CnnFamily family, string method, int bits,
        int groupSize)
    {
        var metadata = ModelCommandsTestKit.FashionMnistInput();
        var data = FashionMnistTest(metadata);
        byte[] checkpoint;
        using (var unfused = GrownCnn(family))
        using (var fused = CnnFusion.Fuse(unfused))
        {
            var calibration = data.TestBatches(64).Take(1).Select(b => b.X).ToList();
            using var result = new ModelQuantizer(new QuantizationOptions
            { Method = method, Bits = bits, GroupSize = groupSize, CalibrationSamples = 64 })
                .Quantize(fused, calibration, overlapMaps: CnnFusion.OverlapMaps(fused.Spec));
            checkpoint = QuantizedCheckpoint.Save(fused, result, metadata: metadata);
        }
        var export = OnnxExporter.ExportCheckpoint(checkpoint, "q", new OnnxExportOptions());
        Assert.True(export.QuantizedLayers > 0);
        Assert.Equal(bits, export.Bits);
        var proto = ModelProto.Parser.ParseFrom(export.Bytes);
        Assert.Equal(export.QuantizedLayers, proto.Graph.Node.Count(n => n.OpType == "DequantizeLinear"));
        var codeType = bits <= 4 ? TensorProto.Types.DataType.Uint4 : TensorProto.Types.DataType.Uint8;
        Assert.All(proto.Graph.Initializer.Where(i => i.Name.EndsWith(".codes", StringComparison.Ordinal)),
            i => Assert.Equal((int)codeType, i.DataType));

        // ScaleGrow's quantized evaluation: the checkpoint dequantized into a float model.
        var (quantized, _) = ModelIO.LoadModel(checkpoint, "q");
        using (quantized.Module)
            AssertSameLogits(quantized.Module, export.Bytes, data, [1, 100], $"{family} w{bits} g{groupSize} {method}");
    }

    // --- helpers ---

    /// <summary>A small CNN of <paramref name="family"/> for 28×28 grey images with every branch that fits each unit
    /// (what width growth adds), random weights and set BN statistics (CnnFusionTests.RandomizeNorms).</summary>
    internal static CnnModel GrownCnn(CnnFamily family, int seed = 3)
    {
        torch.manual_seed(seed);
        var spec = CnnFusionTests.WithEveryFittingBranch(CnnSpecs.Fixed(family, 10, [1, 1, 1], inputChannels: 1,
            imageSize: 28, stageWidths: family == CnnFamily.MobileNetV3 ? [8, 16, 16] : [8, 16, 24]));
        var model = new CnnModel(spec);
        CnnFusionTests.RandomizeNorms(model, channels: 1, size: 28);
        model.eval();
        return model;
    }

    /// <summary>Fashion-MNIST test images (a seeded choice of <see cref="Samples"/>), normalised with the
    /// statistics of <see cref="ModelCommandsTestKit.FashionMnistInput"/>; loaded once for the class.</summary>
    internal static ImageRunData FashionMnistTest(IReadOnlyDictionary<string, string> metadata)
    {
        Assert.Equal(ModelCommandsTestKit.FashionMnistInput()[InputNormalization.MetadataKey],
            metadata[InputNormalization.MetadataKey]);
        return FashionMnist.Value;
    }

    private static readonly Lazy<ImageRunData> FashionMnist = new(() => ImageRunData.ForCheckpoint(
        ModelCommandsTestKit.FashionMnistInput(), new DatasetSpec(TestLimit: Samples), "test").Data);

    /// <summary>Weights at the scale of a trained model: N(0, 1/fan-in) matrices, norm γ in [0.5, 1.5], biases,
    /// embeddings and positions of order 0.1–1, so attention is not uniform and logits are of order 1.</summary>
    internal static void RandomizeTransformer(nn.Module model)
    {
        using var noGrad = torch.no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.Contains("norm", StringComparison.Ordinal) && p.dim() == 1 && name.EndsWith("weight"))
                p.uniform_(0.5, 1.5);
            else if (p.dim() == 1) p.normal_(0, 0.1);
            else if (name.Contains("embed", StringComparison.Ordinal)) p.normal_(0, 1);
            else p.normal_(0, 1.0 / Math.Sqrt(p.shape[^1]));
        }
    }

    /// <summary>Runs every test batch (at each batch size) through the TorchSharp module and the exported file in
    /// ONNX Runtime and asserts the largest logit difference is within <see cref="Tolerance"/>.</summary>
    internal static void AssertSameLogits(nn.Module<Tensor, Tensor> model, byte[] onnx, IRunData data,
        int[] batchSizes, string what)
    {
        string path = Path.Combine(Path.GetTempPath(), $"scalegrow-onnx-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, onnx);
        try
        {
            using var runtime = OnnxRuntimeModel.Load(path);
            model.eval();
            foreach (int batchSize in batchSizes)
            {
                double maxDiff = 0, scale = 0;
                long compared = 0;
                foreach (var (x, y) in data.TestBatches(batchSize))
                {
                    using var scope = torch.NewDisposeScope();
                    using var noGrad = torch.no_grad();
                    var expected = model.forward(x);
                    var actual = runtime.Module.forward(x);
                    Assert.Equal(expected.shape, actual.shape);
                    maxDiff = Math.Max(maxDiff, (expected - actual).abs().max().item<float>());
                    scale = Math.Max(scale, expected.abs().max().item<float>());
                    compared += x.shape[0];
                    x.Dispose();
                    y.Dispose();
                    if (compared >= Samples) break;
                }
                Assert.True(compared >= Math.Min(Samples, 100), $"{what}: only {compared} test samples compared");
                Assert.True(scale > 0.5, $"{what}: logits too small ({scale}) for the comparison to mean anything");
                Assert.True(maxDiff <= Tolerance,
                    $"{what}, batch {batchSize}: ONNX Runtime vs TorchSharp max |Δlogit| {maxDiff:G3} over " +
                    $"{compared} samples (logit scale {scale:G3})");
            }
        }
        finally
        {
            File.Delete(path);
        }
    }
}

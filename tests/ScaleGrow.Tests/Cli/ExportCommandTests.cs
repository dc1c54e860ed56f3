using System.Text.Json.Nodes;
using ScaleGrow.Checkpoints;
using ScaleGrow.Models.Adapters;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Models.Transformer;
using ScaleGrow.Scaling;
using ScaleGrow.Tests.Export;

namespace ScaleGrow.Tests.Cli;

/// <summary>
/// <c>scalegrow export</c> through the built CLI, and <c>eval</c> / <c>predict</c> of the exported file in ONNX
/// Runtime: the same accuracy and the same logits (within 1e-4) as the checkpoint on the same Fashion-MNIST test
/// images; bad input is one line and exit 2.
/// </summary>
public class ExportCommandTests
{
    [Fact]
    public void AnExportedOnnxFileEvaluatesAndPredictsLikeItsCheckpoint()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-export-");
        try
        {
            string checkpoint;
            using (var model = OnnxExportTests.GrownCnn(CnnFamily.ResNet))
                checkpoint = ModelCommandsTestKit.Save(model, dir.FullName, "grown.safetensors",
                    ModelCommandsTestKit.FashionMnistInput());
            string onnx = Path.Combine(dir.FullName, "grown.onnx");
            var export = ModelCommandsTestKit.Run("export", "--model", checkpoint, "--format", "onnx", "--out", onnx,
                "--json");
            Assert.True(export.ExitCode == 0, export.Stderr);
            var exported = JsonNode.Parse(export.Stdout)!.AsObject();
            Assert.True(exported["fusedUnits"]!.GetValue<int>() > 0);
            Assert.Contains("fused", exported["notes"]!.ToJsonString());
            Assert.Contains("scalegrow.input", exported["notes"]!.ToJsonString());
            Assert.True(File.Exists(onnx));

            var fromCheckpoint = Eval(checkpoint);
            var fromOnnx = Eval(onnx);
            Assert.Equal("onnxruntime", fromOnnx["runtime"]!.GetValue<string>());
            Assert.Equal(fromCheckpoint["samples"]!.GetValue<long>(), fromOnnx["samples"]!.GetValue<long>());
            Assert.Equal(fromCheckpoint["accuracy"]!.GetValue<double>(), fromOnnx["accuracy"]!.GetValue<double>());
            Assert.Equal(fromCheckpoint["loss"]!.GetValue<double>(), fromOnnx["loss"]!.GetValue<double>(), 1e-4);
            Assert.True(fromOnnx["latencyMsBatch1"]!.GetValue<double>() > 0);

            string csvCheckpoint = Path.Combine(dir.FullName, "checkpoint.csv");
            string csvOnnx = Path.Combine(dir.FullName, "onnx.csv");
            foreach (var (model, csv) in new[] { (checkpoint, csvCheckpoint), (onnx, csvOnnx) })
            {
                var predict = ModelCommandsTestKit.Run("predict", "--model", model, "--data", FashionMnistDir,
                    "--limit", "300", "--out", csv);
                Assert.True(predict.ExitCode == 0, predict.Stderr);
            }
            var expected = ModelCommandsTestKit.ReadCsv(csvCheckpoint);
            var actual = ModelCommandsTestKit.ReadCsv(csvOnnx);
            Assert.Equal(300, actual.Count);
            Assert.Equal(expected.Select(r => (r.Index, r.Label)), actual.Select(r => (r.Index, r.Label)));
            double maxDiff = expected.Zip(actual).Max(p => p.First.Logits.Zip(p.Second.Logits)
                .Max(l => Math.Abs(l.First - l.Second)));
            Assert.True(maxDiff <= 1e-4, $"predict: ONNX vs checkpoint max |Δlogit| {maxDiff:G3}");
        }
        finally
        {
            dir.Delete(true);
        }
    }

    [Fact]
    public void BadExportsAreOneLineErrorsWithExitCode2()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-export-bad-");
        try
        {
            string good;
            using (var model = ModelCommandsTestKit.SmallVgg())
                good = ModelCommandsTestKit.Save(model, dir.FullName, "vgg.safetensors",
                    ModelCommandsTestKit.FashionMnistInput());
            string onnx = Path.Combine(dir.FullName, "out.onnx");

            // A corrupt checkpoint: its header cut short.
            string corrupt = Path.Combine(dir.FullName, "corrupt.safetensors");
            File.WriteAllBytes(corrupt, File.ReadAllBytes(good)[..40]);
            AssertOneLineError(ModelCommandsTestKit.Run("export", "--model", corrupt, "--out", onnx), "corrupt");

            // A layer type the exporter does not support names itself.
            var spec = TransformerSpec.Seed(TransformerModality.Image, 10, headDim: 8, layers: 1);
            spec = spec with
            {
                Layers =
                [
                    spec.Layers[0],
                    new TransformerLayerSpec
                    {
                        Id = 1, SharesWith = 0,
                        Adapter = new AdapterSpec { Kind = AdapterKind.ParallelBottleneck, Rank = 4 },
                    },
                ],
                NextId = 2,
            };
            string adapted = Path.Combine(dir.FullName, "adapted.safetensors");
            using (var model = new TransformerModel(spec))
                File.WriteAllBytes(adapted, ModelIO.SaveModel(model));
            var unsupported = ModelCommandsTestKit.Run("export", "--model", adapted, "--out", onnx);
            AssertOneLineError(unsupported, "layers.L1");
            Assert.Contains("adapter", unsupported.Stderr, StringComparison.OrdinalIgnoreCase);

            AssertOneLineError(ModelCommandsTestKit.Run("export", "--model", good, "--out", onnx, "--format", "tflite"),
                "--format");
            AssertOneLineError(ModelCommandsTestKit.Run("export", "--model", good, "--out", onnx, "--opset", "12"),
                "--opset");
            AssertOneLineError(ModelCommandsTestKit.Run("export", "--model", good, "--out", onnx, "--batch", "0"),
                "--batch");
            Assert.False(File.Exists(onnx), "a failed export left a file behind");

            // A file that is not ONNX, named .onnx, is refused by eval in one line too.
            string fake = Path.Combine(dir.FullName, "fake.onnx");
            File.WriteAllText(fake, "not a model");
            AssertOneLineError(ModelCommandsTestKit.Run("eval", "--model", fake), "fake.onnx");
        }
        finally
        {
            dir.Delete(true);
        }
    }

    private static string FashionMnistDir => ScaleGrow.Data.DatasetLoader.FashionMnistDefaultDirectory;

    private static JsonObject Eval(string model)
    {
        var result = ModelCommandsTestKit.Run("eval", "--model", model, "--limit", "300", "--json");
        Assert.True(result.ExitCode == 0, result.Stderr);
        return JsonNode.Parse(result.Stdout)!.AsObject();
    }

    private static void AssertOneLineError(ModelCommandsTestKit.CliResult result, string mentions)
    {
        Assert.Equal(2, result.ExitCode);
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line, got: {result.Stderr}");
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(mentions, lines[0]);
    }
}

using System.Text.Json.Nodes;
using Microsoft.DurableTask.Client;
using ScaleGrow.Checkpoints;
using ScaleGrow.Export;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Tests.Cli;
using ScaleGrow.Tests.Orchestration;

namespace ScaleGrow.Tests.Export;

/// <summary>
/// ONNX files where models are delivered (issue 20): a run spec's <c>export</c> section writes the final models as
/// ONNX through the real orchestration, and an upload whose metadata asks for it gets an ONNX file beside its
/// quantized checkpoint. Both files score like the checkpoints they come from.
/// </summary>
public class OnnxDeliveryTests
{
    [Fact]
    public async Task ARunThatAsksForAnOnnxExportEndsWithFusedAndQuantizedOnnxFilesThatScoreLikeItsModels()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-run-export-");
        try
        {
            var store = new LocalFolderArtifactStore(dir.FullName);
            await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store));
            var runs = new RunsService(engine.Client, store);
            var spec = OrchestrationTestKit.TinyGrowth(maxEpochs: 2) with
            {
                Quantization = new ScaleGrow.Quantization.QuantizationOptions { Bits = 4, CalibrationSamples = 64 },
                Export = new ExportSpec(),
            };
            string runId = await runs.StartAsync(spec, "export-" + Guid.NewGuid().ToString("N")[..8]);
            var (metadata, _) = await OrchestrationTestKit.WaitAsync(engine.Client, runId);
            Assert.True(metadata.RuntimeStatus == OrchestrationRuntimeStatus.Completed,
                $"{metadata.RuntimeStatus}: {metadata.FailureDetails?.ErrorMessage}");
            var summary = metadata.ReadOutputAs<RunSummary>()!;
            var exported = summary.Exported;
            Assert.NotNull(exported);
            Assert.Equal(RunPaths.Final(runId, "model.onnx"), exported.Onnx);
            Assert.Equal(RunPaths.Final(runId, "model.w4.onnx"), exported.QuantizedOnnx);
            var report = JsonNode.Parse(await store.ReadAllBytesAsync(RunPaths.Final(runId, "report.json")))!;
            Assert.Equal(exported.Onnx, (string?)report["onnx"]!["onnx"]);

            // The exported files score on the run's own test split as the run's evaluation and quantization did.
            using var lease = RunData.Lease(spec);
            double Accuracy(string onnx)
            {
                string path = Path.Combine(dir.FullName, onnx);
                using var model = OnnxRuntimeModel.Load(path);
                return Evaluation.Evaluate(model, lease.Data, 500, measureLatency: false, default).Accuracy;
            }
            long samples = summary.Evaluation.Samples;
            Assert.Equal(summary.Evaluation.Accuracy, Accuracy(exported.Onnx), 1.0 / samples);
            Assert.Equal(summary.Quantized!.AccuracyAfter!.Value, Accuracy(exported.QuantizedOnnx!), 1.0 / samples);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task AnUploadWhoseMetadataAsksForOnnxGetsItBesideItsQuantizedCheckpoint()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-upload-export-");
        try
        {
            var store = new LocalFolderArtifactStore(dir.FullName);
            var metadata = new Dictionary<string, string>(ModelCommandsTestKit.FashionMnistInput());
            using (var model = OnnxExportTests.GrownCnn(ScaleGrow.Models.Cnn.CnnFamily.Vgg))
                await store.WriteAsync($"{UploadSteps.Uploads}/grown.safetensors", ModelIO.SaveModel(model, metadata),
                    new ArtifactWriteOptions { Metadata = new Dictionary<string, string> { ["export"] = "onnx" } });
            var steps = new UploadSteps(store)
            {
                EvaluationSamples = 0,
                Quantization = new ScaleGrow.Quantization.QuantizationOptions { Method = "rtn", Bits = 8 },
            };
            var upload = new UploadRef("grown.safetensors",
                (await store.GetInfoAsync($"{UploadSteps.Uploads}/grown.safetensors"))!.ETag);
            Assert.True((await new ValidateUploadStep(steps).RunAsync(upload)).Valid);
            var outcome = await new QuantizeStep(steps).RunAsync(upload);
            Assert.Equal("quantized", outcome.Status);
            var report = JsonNode.Parse(await store.ReadAllBytesAsync(outcome.Report))!;
            string onnx = (string)report["onnx"]!;
            Assert.Equal("quantized/grown.safetensors/grown.w8.onnx", onnx);

            var (quantized, _) = ModelIO.LoadModel(await store.ReadAllBytesAsync(outcome.Artifact!), "q");
            using (quantized.Module)
                OnnxExportTests.AssertSameLogits(quantized.Module, await store.ReadAllBytesAsync(onnx),
                    OnnxExportTests.FashionMnistTest(metadata), [100], "uploaded VGG w8");

            // An export the service cannot make is refused when the upload is validated, before any work.
            await store.WriteAsync($"{UploadSteps.Uploads}/bad.safetensors",
                await store.ReadAllBytesAsync($"{UploadSteps.Uploads}/grown.safetensors"),
                new ArtifactWriteOptions { Metadata = new Dictionary<string, string> { ["export"] = "tflite" } });
            var bad = await new ValidateUploadStep(steps).RunAsync(new UploadRef("bad.safetensors",
                (await store.GetInfoAsync($"{UploadSteps.Uploads}/bad.safetensors"))!.ETag));
            Assert.False(bad.Valid);
            Assert.Contains("export='tflite'", bad.Error);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}

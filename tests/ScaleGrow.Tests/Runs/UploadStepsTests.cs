using System.Text.Json.Nodes;
using ScaleGrow.Data;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using TorchSharp;
using static ScaleGrow.Tests.Cli.ModelCommandsTestKit;

namespace ScaleGrow.Tests.Runs;

/// <summary>
/// Quantize-on-upload calibrates and evaluates an upload with the input normalisation the upload carries, and says
/// so when an older upload carries none (issue 16). Real Fashion-MNIST, a local-folder store.
/// </summary>
public class UploadStepsTests
{
    private static readonly InputNormalization Recorded = new()
    {
        // Not Fashion-MNIST's full-set statistics (0.286 / 0.353): a run on a small, brighter subset.
        Dataset = DatasetSpec.FashionMnist, Channels = 1, Height = 28, Width = 28, Mean = [0.4], Std = [0.3],
    };

    /// <summary>A small VGG trained one epoch with the recorded normalisation (a random one predicts about one class
    /// whatever its inputs, so no normalisation would show in its accuracy).</summary>
    private static ScaleGrow.Models.Cnn.CnnModel TrainedVgg()
    {
        var model = SmallVgg();
        using var data = new ImageRunData(DatasetLoader.Load(new DatasetSpec(TrainLimit: 2000, Seed: 5), Recorded));
        var options = new ScaleGrow.Training.TrainingOptions();
        using var optimizer = new ScaleGrow.Training.NamedOptimizer(model.Module.named_parameters(), options);
        var schedule = ScaleGrow.Training.LearningRateSchedule.For(options, data.TrainBatchCount(options.BatchSize), 1);
        ScaleGrow.Training.Trainer.TrainEpoch(model, optimizer, schedule, data.TrainEpoch(options.BatchSize, 5, 0));
        return model;
    }

    private static async Task<JsonNode> QuantizeAsync(IArtifactStore store, string name,
        IReadOnlyDictionary<string, string>? metadata)
    {
        using var model = TrainedVgg();
        await store.WriteAsync($"{UploadSteps.Uploads}/{name}", ScaleGrow.Checkpoints.ModelIO.SaveModel(model, metadata));
        var steps = new UploadSteps(store)
        {
            EvaluationSamples = 300, Quantization = new ScaleGrow.Quantization.QuantizationOptions { Method = "rtn", Bits = 8 },
        };
        var upload = new UploadRef(name, (await store.GetInfoAsync($"{UploadSteps.Uploads}/{name}"))!.ETag);
        var outcome = await new QuantizeStep(steps).RunAsync(upload);
        Assert.Equal("quantized", outcome.Status);
        return JsonNode.Parse(await store.ReadAllBytesAsync(outcome.Report))!;
    }

    [Fact]
    public async Task AnUploadIsCalibratedAndEvaluatedWithTheNormalisationItCarries()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-upload-");
        try
        {
            var store = new LocalFolderArtifactStore(dir.FullName);
            var report = await QuantizeAsync(store, "new.safetensors",
                new Dictionary<string, string> { [InputNormalization.MetadataKey] = Recorded.ToJson() });

            Assert.DoesNotContain("input normalisation", report.ToJsonString());
            // The accuracy before quantization is the model's on data normalised with the recorded statistics.
            using var model = TrainedVgg();
            using var recorded = new ImageRunData(DatasetLoader.Load(new DatasetSpec(TestLimit: 300), Recorded));
            using var own = new ImageRunData(DatasetLoader.Load(new DatasetSpec(TestLimit: 300)));
            var withRecorded = Evaluation.Evaluate(model, recorded, 500, false, default).Accuracy;
            var withOwn = Evaluation.Evaluate(model, own, 500, false, default).Accuracy;
            Assert.NotEqual(withOwn, withRecorded); // so the report tells which statistics were used
            Assert.Equal(withRecorded, (double)report["accuracyBefore"]!, 9);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task AnOldUploadWithoutItsNormalisationIsStillQuantizedAndTheReportSaysWhichStatisticsItGot()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-upload-");
        try
        {
            var report = await QuantizeAsync(new LocalFolderArtifactStore(dir.FullName), "old.safetensors", null);

            var notes = report["uploadNotes"]!.AsArray().Select(n => (string)n!).ToList();
            Assert.Contains(notes, n => n.Contains("does not record its input normalisation (scalegrow.input)") &&
                                        n.Contains("fashion-mnist training split"));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}

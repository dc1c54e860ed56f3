using Microsoft.DurableTask.Client;
using ScaleGrow.Checkpoints;
using ScaleGrow.Data.Text;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Tests.Orchestration;
using ScaleGrow.Training;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Runs;

/// <summary>
/// <c>training.precision: bf16</c> through the real orchestration and run steps: a small BERT-style classifier (token
/// ids in, layer norms and attention in bf16) trains on the CPU, and what the run keeps is fp32.
/// </summary>
public class MixedPrecisionRunTests
{
    private sealed class Recorder : IProgress<TrainingProgress>
    {
        public readonly System.Collections.Concurrent.ConcurrentQueue<TrainingProgress> Batches = new();
        public void Report(TrainingProgress value) => Batches.Enqueue(value);
    }

    private static RunSpec TopicsSpec(string dir) => new()
    {
        Kind = RunKind.Train, Seed = 3, Epochs = 3, MeasureLatency = false,
        TextData = new TextDatasetSpec(Name: TextDatasetSpec.LabelledText,
            Path: TextRunTests.WriteTopics(dir), VocabSize: 120, SequenceLength: 16),
        Model = new ModelRequest { Family = "bert", Layers = 1, Heads = 2, HeadDim = 8 },
        Training = new TrainingOptions { Optimizer = OptimizerKind.AdamW, LearningRate = 3e-3, BatchSize = 32 },
    };

    [Fact]
    public async Task OnACpuABf16RunWithDeviceAutoFallsBackToFp32AndSaysSo()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-bf16-cpu-");
        try
        {
            var store = new LocalFolderArtifactStore(Path.Combine(dir.FullName, "store"));
            var spec = TopicsSpec(dir.FullName) with { Epochs = 1 };
            var recorder = new Recorder();
            await using var engine =
                await OrchestrationTestKit.StartEngineAsync(new RunSteps(store) { Progress = recorder });
            var runs = new RunsService(engine.Client, store);
            foreach (var precision in new[] { TrainingPrecision.Fp32, TrainingPrecision.Bf16 })
            {
                string runId = await runs.StartAsync(spec with { Training = spec.Training with { Precision = precision } },
                    $"auto-{precision.ToString().ToLowerInvariant()}");
                var (metadata, _) = await OrchestrationTestKit.WaitAsync(engine.Client, runId);
                Assert.Equal(OrchestrationRuntimeStatus.Completed, metadata.RuntimeStatus);
                var epoch = Assert.Single(await OrchestrationTestKit.JournalAsync(store, runId),
                    e => (string?)e["kind"] == "epoch");
                Assert.Equal("fp32", (string?)epoch["precision"]);
            }
            double[] Losses(string id) => recorder.Batches.Where(b => b.RunId == id).Select(b => b.Loss).ToArray();
            Assert.Equal(Losses("auto-fp32"), Losses("auto-bf16")); // the same fp32 training, bit for bit
            // An explicit CPU with bf16 is a spec error, before anything is registered.
            var e = Assert.Throws<InvalidSpecException>(() => (spec with
            {
                Device = "cpu",
                Training = spec.Training with { Precision = TrainingPrecision.Bf16 },
            }).Validate());
            Assert.Contains("precision 'bf16' needs a CUDA device", e.Message);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task ABf16TrainRunLearnsTracksTheFp32RunAndItsCheckpointsStayFp32()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-bf16-");
        try
        {
            var store = new LocalFolderArtifactStore(Path.Combine(dir.FullName, "store"));
            var spec = TopicsSpec(dir.FullName);
            var recorder = new Recorder();
            await using var engine =
                await OrchestrationTestKit.StartEngineAsync(new RunSteps(store) { Progress = recorder, AllowLowPrecisionOnCpu = true });
            var runs = new RunsService(engine.Client, store);
            var summaries = new Dictionary<TrainingPrecision, (string RunId, RunSummary Summary)>();
            foreach (var precision in new[] { TrainingPrecision.Fp32, TrainingPrecision.Bf16 })
            {
                string runId = await runs.StartAsync(
                    spec with { Training = spec.Training with { Precision = precision } },
                    $"{precision.ToString().ToLowerInvariant()}-run");
                var (metadata, _) = await OrchestrationTestKit.WaitAsync(engine.Client, runId);
                Assert.Equal(OrchestrationRuntimeStatus.Completed, metadata.RuntimeStatus);
                summaries[precision] = (runId, metadata.ReadOutputAs<RunSummary>()!);
            }
            var (bf16Id, bf16) = summaries[TrainingPrecision.Bf16];
            Assert.Equal(3, bf16.Epochs);
            Assert.True(bf16.Evaluation.Accuracy > 0.5,
                $"test accuracy {bf16.Evaluation.Accuracy:P1} on three separable topics (chance: 33 %)");

            // The bf16 run really computed in bf16 (its losses are not the fp32 run's) and stayed close to it.
            double[] Losses(string id) => recorder.Batches.Where(b => b.RunId == id).Select(b => b.Loss).ToArray();
            double[] low = Losses(bf16Id), full = Losses(summaries[TrainingPrecision.Fp32].RunId);
            Assert.Equal(full.Length, low.Length);
            Assert.NotEqual(full, low);
            Assert.True(Math.Abs(low[^1] - full[^1]) < 0.15 * full[0],
                $"last batch loss {low[^1]:f3} in bf16, {full[^1]:f3} in fp32 (first {full[0]:f3})");

            var (model, _) = ModelIO.LoadModel(await store.ReadAllBytesAsync(bf16.Model), bf16.Model);
            using (model.Module)
                Assert.All(model.Module.named_parameters(),
                    p => Assert.Equal(ScalarType.Float32, p.parameter.dtype));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}

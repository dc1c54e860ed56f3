using ScaleGrow.Growth;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Tests.Orchestration;
using Xunit.Abstractions;

namespace ScaleGrow.Tests.Runs;

/// <summary>
/// Memory stays flat over a growth run. Every growth changes the sizes of the activation buffers libtorch allocates;
/// with glibc's default (self-raising) mmap threshold the freed buffers piled up in the heap and this run reached
/// 2.6 GB resident (0.4 GB since <see cref="NativeAllocator.Trim"/> runs after every pass). Resident memory is what a container
/// is killed for, so that is what this measures — not TorchSharp's tensor counter, which counts parameter wrappers
/// that hold no storage.
/// </summary>
public class RunMemoryTests(ITestOutputHelper output)
{
    /// <summary>Records resident memory after each call of the named activity.</summary>
    private static ActivityTable Measured<TInput, TResult>(ActivityTable table, string name,
        Func<TInput, string> label, List<(string Step, long Bytes)> samples) =>
        table.Wrap<TInput, TResult>(name, async (input, run) =>
        {
            var r = await run(input);
            GC.Collect();
            GC.WaitForPendingFinalizers();
            lock (samples) samples.Add((label(input), Environment.WorkingSet));
            return r;
        });

    [Fact]
    public async Task ResidentMemoryStaysFlatWhileAModelGrows()
    {
        var dir = Directory.CreateTempSubdirectory("sg-memory-");
        try
        {
            var store = new LocalFolderArtifactStore(dir.FullName);
            var samples = new List<(string Step, long Bytes)>();
            var spec = OrchestrationTestKit.TinyGrowth(maxEpochs: 6, fineTune: 1) with
            {
                Data = new ScaleGrow.Data.DatasetSpec(TrainLimit: 2000, TestLimit: 500),
                Model = new ModelRequest { Family = "vgg", StageWidths = [32, 48, 64] },
                Training = new ScaleGrow.Training.TrainingOptions { BatchSize = 128, LearningRate = 0.1, Momentum = 0.9 },
            };
            await RunSteps.SubmitAsync(store, "memory", spec);
            var runner = new DirectOrchestrationRunner();
            var table = ActivityTable.For(new RunSteps(store));
            Measured<TrainIntervalInput, TrainIntervalResult>(table, TrainIntervalStep.Name,
                i => $"train {i.Position.Epoch}", samples);
            Measured<InsertModuleInput, InsertModuleResult>(table, InsertModuleStep.Name, _ => "insert", samples);
            Measured<EvaluateInput, EvaluationResult>(table, EvaluateStep.Name, _ => "evaluate", samples);
            table.AddTo(runner);
            var summary = await runner.RunAsync<GrowthRunInput, RunSummary>("memory", new GrowthRunInput("memory", null),
                GrowthOrchestration.RunAsync);

            foreach (var (step, bytes) in samples) output.WriteLine($"{step}: {bytes / 1e6:0} MB");
            Assert.NotNull(summary);
            Assert.True(summary.Growths >= 4, $"{summary.Growths} growths");
            // The first epoch sets the working level (data, libtorch's thread pools, the first model's buffers); every
            // later step, through four growths, must stay near it.
            long level = samples.First(s => s.Step.StartsWith("train", StringComparison.Ordinal)).Bytes;
            var peak = samples.MaxBy(s => s.Bytes);
            Assert.True(peak.Bytes < level + 250_000_000,
                $"resident memory rose from {level / 1e6:0} MB after the first epoch to {peak.Bytes / 1e6:0} MB " +
                $"after '{peak.Step}': " + string.Join(", ", samples.Select(s => $"{s.Step} {s.Bytes / 1e6:0}")));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}

using System.Text.Json.Nodes;
using ScaleGrow.Data;
using ScaleGrow.Growth;
using ScaleGrow.Models;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Orchestration;
using ScaleGrow.Quantization;
using ScaleGrow.Runs;
using ScaleGrow.Scaling;
using ScaleGrow.Storage;
using ScaleGrow.Tests.Orchestration;
using ScaleGrow.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Runs;

/// <summary>
/// Every step computes where the run says, proved without a GPU. On a machine with one device a forgotten placement
/// changes nothing, so these runs place their models in float64 on the CPU (<see cref="ComputeDevice.CpuFloat64"/>):
/// a tensor that misses its placement — a batch, a calibration input, a rebuilt or fused model, a moment, a tensor
/// built without the model's device and type — is a float32 tensor meeting float64 parameters, which convolutions,
/// batch norms, linear layers and in-place updates refuse with an error. Where a step's only tensors are the model's
/// own (scoring, fusing), a forgotten placement would be silent, so each step also records where its model really
/// was (read from its parameters) and the test checks every record.
/// </summary>
public class DeviceAuditTests
{
    private const string Audit = "cpu (float64 audit)";

    private static async Task<(RunSummary Summary, IReadOnlyList<JsonObject> Journal, LocalFolderArtifactStore Store)>
        RunAsync(string runId, RunSpec spec, string folder)
    {
        var store = new LocalFolderArtifactStore(folder);
        await RunSteps.SubmitAsync(store, runId, spec);
        var runner = new DirectOrchestrationRunner();
        ActivityTable.For(new RunSteps(store) { DeviceOverride = ComputeDevice.CpuFloat64 }).AddTo(runner);
        var summary = await runner.RunAsync<GrowthRunInput, RunSummary>(runId, new GrowthRunInput(runId, null),
            GrowthOrchestration.RunAsync);
        return (summary!, await OrchestrationTestKit.JournalAsync(store, runId), store);
    }

    [Fact]
    public async Task EveryStepOfAGrowthRunTrainsGrowsMergesFusesEvaluatesAndQuantizesOnTheRunsDevice()
    {
        var dir = Directory.CreateTempSubdirectory("sg-device-");
        try
        {
            // Function-preserving VGG depth (a calibration batch), width with γ = 0 branches, merged fine-tuning
            // (a second calibration pass), fusion, latency, and a calibrated GPTQ: every placement of a growth run.
            var spec = OrchestrationTestKit.TinyGrowth(maxEpochs: 3, fineTune: 1) with
            {
                Growth = OrchestrationTestKit.TinyGrowth().Growth with
                {
                    MaxEpochs = 3,
                    FineTuneEpochs = 1,
                    Pattern = "wd",
                    FineTuneBranches = FineTuneBranches.Merge,
                    Init = new InitOptions { PreserveFunction = true },
                },
                MeasureLatency = true,
                Quantization = new QuantizationOptions { Bits = 4, Method = "gptq", CalibrationSamples = 64 },
            };
            var (summary, journal, store) = await RunAsync("audit-grow", spec, dir.FullName);

            Assert.True(summary.Growths >= 2, $"{summary.Growths} growths");
            Assert.True(summary.Evaluation.Accuracy > 0.2, $"accuracy {summary.Evaluation.Accuracy}");
            Assert.Equal(Audit, summary.Evaluation.Device);
            Assert.NotNull(summary.Evaluation.LatencyMsBatch1);
            foreach (var kind in new[] { "epoch", "importance", "growth", "migrate", "merge" })
            {
                var entries = journal.Where(e => (string?)e["kind"] == kind).ToList();
                Assert.True(entries.Count > 0, $"no {kind} entry");
                Assert.All(entries, e => Assert.Equal(Audit, (string?)e["device"]));
            }
            var quantization = JsonNode.Parse(await store.ReadAllBytesAsync(RunPaths.Final("audit-grow",
                "quantization.json")))!;
            Assert.Equal(Audit, (string?)quantization["device"]);
            var report = JsonNode.Parse(await store.ReadAllBytesAsync(summary.Report))!;
            Assert.Equal(Audit, (string?)report["device"]!["evaluation"]);
            Assert.Equal(Audit, (string?)report["device"]!["fusion"]);
            Assert.Equal(Audit, (string?)Assert.Single(report["device"]!["training"]!.AsArray()));
            Assert.Equal("auto", (string?)report["device"]!["requested"]);

            // Checkpoints stay float32 whatever the model computed in: the next step, on any device, can load them.
            var (model, _) = ScaleGrow.Checkpoints.ModelIO.LoadModel(await store.ReadAllBytesAsync(summary.FusedModel),
                summary.FusedModel);
            Assert.All(model.Module.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
            model.Module.Dispose();
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task AScaleNetRunExpandsAndTrainsItsAdaptersOnTheRunsDevice()
    {
        var dir = Directory.CreateTempSubdirectory("sg-device-");
        try
        {
            var spec = OrchestrationTestKit.TinyGrowth() with
            {
                Kind = RunKind.Scale,
                Epochs = 1,
                MeasureLatency = false,
                Model = new ModelRequest { Family = "vit", Layers = 2, Heads = 2, HeadDim = 8, PatchSize = 7 },
                Training = new TrainingOptions { Optimizer = OptimizerKind.AdamW, LearningRate = 1e-3, BatchSize = 64 },
                Scale = new ScaleRunOptions { PretrainEpochs = 1 },
            };
            var (summary, journal, _) = await RunAsync("audit-scale", spec, dir.FullName);

            Assert.Equal("ViT-D4W16", summary.Arch);
            Assert.Equal(Audit, (string?)Assert.Single(journal, e => (string?)e["kind"] == "expand")["device"]);
            var epochs = journal.Where(e => (string?)e["kind"] == "epoch").ToList();
            Assert.Equal(2, epochs.Count);
            Assert.All(epochs, e => Assert.Equal(Audit, (string?)e["device"]));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData(TransformerWidthGrowth.Heads, "ViT-D2W32")]
    [InlineData(TransformerWidthGrowth.HeadDim, "ViT-D2W32")]
    public async Task ATransformerGrowthAddsHeadsOrWidensThemAndALayerOnTheRunsDevice(TransformerWidthGrowth width,
        string arch)
    {
        var dir = Directory.CreateTempSubdirectory("sg-device-");
        try
        {
            // Head growth (new heads, or every head wider: head-wise placement of Q/K/V/O), function-preserving
            // width and a new layer, on a ViT.
            var spec = OrchestrationTestKit.TinyGrowth() with
            {
                Model = new ModelRequest { Family = "vit", Layers = 1, Heads = 2, HeadDim = 8, PatchSize = 7 },
                Training = new TrainingOptions { Optimizer = OptimizerKind.AdamW, LearningRate = 1e-3, BatchSize = 64 },
                Growth = new GrowthOptions
                {
                    IntervalEpochs = 1, MaxEpochs = 4, FineTuneEpochs = 1, Pattern = "wwd", TransformerWidth = width,
                    Init = new InitOptions { PreserveFunction = true }, Stopping = new StoppingOptions { Auto = false },
                },
            };
            var (summary, journal, _) = await RunAsync("audit-vit", spec, dir.FullName);

            Assert.StartsWith(arch, summary.Arch);
            Assert.Equal(3, journal.Count(e => (string?)e["kind"] == "growth"));
            foreach (var kind in new[] { "epoch", "importance", "growth", "migrate" })
                Assert.All(journal.Where(e => (string?)e["kind"] == kind), e => Assert.Equal(Audit, (string?)e["device"]));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    // The same checks with one placement taken out, to show they catch it.

    [Fact]
    public void ATrainingStepWhoseModelMissedItsPlacementFailsAtItsFirstBatch()
    {
        using var model = new CnnModel(CnnSpecs.Seed(CnnFamily.Vgg, 10, 1, 28, [8, 12, 16]));    // left in float32
        using var optimizer = new NamedOptimizer(model.named_parameters(), new TrainingOptions());
        var batches = new[] { (torch.randn(4, 1, 28, 28), torch.tensor(new long[] { 0, 1, 2, 3 })) };

        var error = Assert.ThrowsAny<Exception>(() => Trainer.TrainEpoch(model, optimizer, new LearningRateSchedule(0.1, 0, 0, 0),
            batches, device: ComputeDevice.CpuFloat64));
        Assert.Matches("(?i)double|float|dtype|type", error.Message);
    }

    [Fact]
    public void AGrowthWhoseCalibrationBatchMissedItsPlacementFails()
    {
        var spec = CnnSpecs.Seed(CnnFamily.Vgg, 10, 1, 28, [8, 12, 16]);
        using var model = ComputeDevice.CpuFloat64.Place(new CnnModel(spec));
        var grown = CnnGrowthOperators.InsertLayer(spec, block: 0, position: 0);
        using var calibration = torch.rand(16, 1, 28, 28);                                // left in float32

        Assert.ThrowsAny<Exception>(() => ModelRebuilder.Rebuild(model, grown.Spec,
            new InitOptions { PreserveFunction = true }, seed: 1, calibration));
        // Placed, the same growth works and leaves the grown model on the model's device.
        using var placed = ComputeDevice.CpuFloat64.Input(calibration);
        var (rebuilt, _) = ModelRebuilder.Rebuild(model, grown.Spec, new InitOptions { PreserveFunction = true },
            seed: 1, placed);
        Assert.Equal(Audit, ComputeDevice.Of(rebuilt.Module).Name);
        rebuilt.Module.Dispose();
    }

    [Fact]
    public void OptimizerMomentsFromACheckpointGoWhereTheirParametersAreAndLeaveAsCpuFloat32()
    {
        using var model = ComputeDevice.CpuFloat64.Place(new CnnModel(CnnSpecs.Seed(CnnFamily.Vgg, 10, 1, 28, [8, 12, 16])));
        using var optimizer = new NamedOptimizer(model.named_parameters(), new TrainingOptions());
        var batches = new[] { (torch.randn(4, 1, 28, 28), torch.tensor(new long[] { 0, 1, 2, 3 })) };
        Trainer.TrainEpoch(model, optimizer, new LearningRateSchedule(0.1, 0, 0, 0), batches, device: ComputeDevice.CpuFloat64);
        using var state = optimizer.Export();
        Assert.All(state.Moments.Values, m => Assert.Equal(ScalarType.Float32, m.dtype));

        using var resumed = new NamedOptimizer(model.named_parameters(), new TrainingOptions());
        resumed.Import(state);
        // A second step would fail on a moment left in float32 (in-place updates cannot cast the result down).
        Trainer.TrainEpoch(model, resumed, new LearningRateSchedule(0.1, 0, 0, 0), batches, device: ComputeDevice.CpuFloat64);
        Assert.Equal(2, resumed.Step);
    }
}

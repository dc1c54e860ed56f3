using ScaleGrow.Checkpoints;
using ScaleGrow.Data;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Models.Transformer;
using ScaleGrow.Quantization;
using ScaleGrow.Tests.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Quantization;

/// <summary>A learnable dataset on disk and a grown CNN trained on it for a few seconds, shared by the tests.</summary>
public sealed class TrainedGrownCnn : IDisposable
{
    public TrainedGrownCnn()
    {
        QuantizationFixtures.WriteLearnableDataset(Files);
        Data = QuantizationFixtures.LoadLearnable(Files.Root);
        Checkpoint = QuantizationFixtures.TrainedCheckpoint(Data);
    }

    public DataFileWriter Files { get; } = new();
    public DataSplits Data { get; }

    /// <summary>Float checkpoint of the trained, still unfused multi-branch CNN.</summary>
    public byte[] Checkpoint { get; }

    public void Dispose()
    {
        Data.Dispose();
        Files.Dispose();
    }
}

public class QuantizationRunnerTests(TrainedGrownCnn trained) : IClassFixture<TrainedGrownCnn>
{
    private sealed class Recorder : IProgress<QuantizationRunProgress>
    {
        public List<QuantizationRunProgress> Seen { get; } = [];
        public void Report(QuantizationRunProgress value) => Seen.Add(value);
    }

    [Fact]
    public void EightBitReorderedGptqOnATrainedGrownCnnKeepsItsAccuracyAndReportsEveryNumber()
    {
        using var calibration = CalibrationSet.FromTrainingSplit(trained.Data, 64, seed: 1);
        var progress = new Recorder();
        var result = new QuantizationRunner().Run(trained.Checkpoint, "grown.safetensors", new QuantizationRunRequest
        {
            Options = new QuantizationOptions { Method = QuantizationMethods.GptqReorder, Bits = 8 },
            Calibration = calibration, EvaluationData = trained.Data,
        }, progress);
        var report = result.Report;

        Assert.True(report.AccuracyBefore > 0.6, $"the fixture did not learn: {report.AccuracyBefore}");
        Assert.True(Math.Abs(report.AccuracyAfter!.Value - report.AccuracyBefore!.Value) <= 0.01,
            $"W8 accuracy {report.AccuracyBefore} -> {report.AccuracyAfter}");
        Assert.Equal(trained.Data.Test.Count, report.TestSamples);
        Assert.True(report.Fused);
        Assert.Equal(QuantizationMethods.GptqReorder, report.Quantization.Method);
        Assert.Equal(64, report.Quantization.CalibrationSamples);
        Assert.Equal("fashion-mnist/train: 64 samples drawn with seed 1", report.CalibrationSource);
        Assert.All(report.Quantization.Layers,
            l => Assert.True(l.RelativeError < 1e-3, $"{l.Name}: {l.RelativeError}"));
        Assert.Equal(result.Checkpoint.LongLength, report.QuantizedBytes);
        Assert.True(report.QuantizedBytes < report.Fp32Bytes);
        Assert.Equal(trained.Checkpoint.LongLength, report.InputBytes);
        Assert.Contains(report.Notes, n => n.Contains("fused", StringComparison.Ordinal));
        Assert.Equal(
            [QuantizationRunStage.Loading, QuantizationRunStage.EvaluatingBefore, QuantizationRunStage.Quantizing,
             QuantizationRunStage.Writing, QuantizationRunStage.EvaluatingAfter, QuantizationRunStage.Done],
            progress.Seen.Where(p => p.Layer is null).Select(p => p.Stage));
        Assert.Equal(2 * report.Quantization.Layers.Count, progress.Seen.Count(p => p.Layer is not null));
        Assert.Contains("\"accuracyAfter\"", report.ToJson());

        // The checkpoint is a fused model that `scalegrow eval` loads like any other.
        var (model, metadata) = ModelIO.LoadModel(result.Checkpoint, "q.safetensors");
        using var module = model.Module;
        Assert.True(((CnnSpec)model.Spec).Fused);
        Assert.True(metadata.ContainsKey(ModelIO.OverlapKey));
        Assert.True(metadata.ContainsKey(CheckpointMetadata.QuantizationKey));
    }

    [Fact]
    public void WithoutCalibrationDataCalibratedMethodsFallBackToRtnAndTheReportSaysSo()
    {
        var report = new QuantizationRunner().Run(trained.Checkpoint, "grown.safetensors", new QuantizationRunRequest
        {
            Options = new QuantizationOptions { Method = QuantizationMethods.GptqReorderDynamic, Bits = 4 },
            Calibration = CalibrationSet.None(),
        }).Report;
        Assert.Equal(QuantizationMethods.GptqReorderDynamic, report.RequestedMethod);
        Assert.Equal(QuantizationMethods.Rtn, report.Quantization.Method);
        Assert.Contains(report.Notes, n => n.Contains("fell back from gptq-reorder-dynamic to rtn"));
        Assert.Null(report.AccuracyBefore);
        Assert.Null(report.CalibrationSource);
        Assert.All(report.Quantization.Layers, l => Assert.Null(l.RelativeError));
    }

    [Fact]
    public void WithoutOverlapMapsReorderingUsesImportanceAloneAndSaysSo()
    {
        using var calibration = CalibrationSet.FromTrainingSplit(trained.Data, 16, seed: 1);
        var request = new QuantizationRunRequest
        {
            Options = new QuantizationOptions { Method = QuantizationMethods.GptqReorder, Bits = 3 },
            Calibration = calibration,
        };
        var withMaps = new QuantizationRunner().Run(trained.Checkpoint, "grown.safetensors", request);
        var without = new QuantizationRunner().Run(trained.Checkpoint, "grown.safetensors",
            request with { UseOverlapMaps = false });
        Assert.Contains(without.Report.Notes, n => n.Contains("overlap maps not used"));
        Assert.DoesNotContain(withMaps.Report.Notes, n => n.Contains("overlap maps not used"));
        // The fused grown units have uneven overlap maps, so the two orders quantize differently.
        Assert.NotEqual(withMaps.Checkpoint, without.Checkpoint);
    }

    [Fact]
    public void AnInMemoryModelIsCopiedNotQuantizedInPlace()
    {
        var (model, _) = ModelIO.LoadModel(trained.Checkpoint, "grown.safetensors");
        using var module = model.Module;
        var before = module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        new QuantizationRunner().Run(model, new QuantizationRunRequest
        { Options = new QuantizationOptions { Method = QuantizationMethods.Rtn, Bits = 2 } });
        foreach (var (name, t) in module.state_dict())
            Assert.True(t.eq(before[name]).all().item<bool>(), name);
    }

    public static TheoryData<string, string> BadInputs => new()
    {
        { "unknown method", "method must be one of rtn, gptq, gptq-reorder, gptq-reorder-dynamic, got 'awq'" },
        { "bits 9", "bits must be in 2..8, got 9" },
        { "bits 1", "bits must be in 2..8, got 1" },
        { "already quantized", "is already quantized" },
        { "calibration of the wrong image size", "batch 0 is Float32 [4, 1, 10, 10], but ResNet-1-1 takes float" },
        { "calibration of the wrong channel count", "takes float [B, 1, 12, 12]" },
        { "integer calibration", "batch 0 is Int64" },
        { "test data of the wrong shape", "holds 1x6x5 images, but ResNet-1-1 takes [1, 12, 12]" },
        { "gptq on layers hooks cannot see", "outside Module.call()" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputIsRefusedWithOneClearErrorBeforeAnyWork(string input, string expected)
    {
        using var scope = torch.NewDisposeScope();
        var checkpoint = trained.Checkpoint;
        var options = new QuantizationOptions { Method = QuantizationMethods.GptqReorder };
        CalibrationSet? calibration = null;
        DataSplits? evaluation = null;
        using var files = new DataFileWriter();
        switch (input)
        {
            case "unknown method": options.Method = "awq"; break;
            case "bits 9": options.Bits = 9; break;
            case "bits 1": options.Bits = 1; break;
            case "already quantized":
                checkpoint = new QuantizationRunner().Run(checkpoint, "grown.safetensors", new QuantizationRunRequest
                { Options = new QuantizationOptions { Method = QuantizationMethods.Rtn } }).Checkpoint;
                break;
            case "calibration of the wrong image size":
                calibration = CalibrationSet.FromBatches("wrong", [torch.randn(4, 1, 10, 10)]);
                break;
            case "calibration of the wrong channel count":
                calibration = CalibrationSet.FromBatches("rgb", [torch.randn(4, 3, 12, 12)]);
                break;
            case "integer calibration":
                calibration = CalibrationSet.FromBatches("ints", [torch.ones(4, 1, 12, 12, ScalarType.Int64)]);
                break;
            case "test data of the wrong shape":
                files.WriteIdxSplit("train", 20);
                files.WriteIdxSplit("t10k", 10);
                evaluation = DatasetLoader.Load(new DatasetSpec(Directory: files.Root));
                break;
            case "gptq on layers hooks cannot see":
                var transformer = new TransformerModel(TransformerSpec.Seed(TransformerModality.Image, 10, 8)
                    with
                { ImageSize = 12 });
                checkpoint = ModelIO.SaveModel(transformer);
                transformer.Dispose();
                calibration = CalibrationSet.FromBatches("images", [torch.randn(4, 1, 12, 12)]);
                break;
        }
        var progress = new Recorder();
        var e = Assert.ThrowsAny<ScaleGrowException>(() => new QuantizationRunner().Run(checkpoint,
            "grown.safetensors", new QuantizationRunRequest
            {
                Options = options, Calibration = calibration ?? CalibrationSet.FromBatches("ok",
                    [torch.randn(4, 1, 12, 12)]), EvaluationData = evaluation,
            }, progress));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.DoesNotContain(progress.Seen, p => p.Stage >= QuantizationRunStage.EvaluatingBefore);
        calibration?.Dispose();
        evaluation?.Dispose();
    }

    [Fact]
    public void RtnOnAModelWhoseLayersHooksCannotSeeRunsWithoutLayerErrorsAndSaysWhy()
    {
        using var transformer = new TransformerModel(TransformerSpec.Seed(TransformerModality.Image, 10, 8)
            with
        { ImageSize = 12 });
        using var calibration = CalibrationSet.FromBatches("images", [torch.randn(4, 1, 12, 12)]);
        var result = new QuantizationRunner().Run(transformer, new QuantizationRunRequest
        { Options = new QuantizationOptions { Method = QuantizationMethods.Rtn }, Calibration = calibration });
        Assert.Contains(result.Report.Notes, n => n.Contains("layer errors not measured"));
        var (loaded, _) = ModelIO.LoadModel(result.Checkpoint, "vit-q.safetensors");
        using var module = loaded.Module;
        Assert.IsType<TransformerModel>(loaded);
    }

    [Fact]
    public void CalibrationSamplesAreDrawnFromTheTrainingSplitOnlyAndDependOnTheSeed()
    {
        var data = trained.Data;
        using var scope = torch.NewDisposeScope();
        using var a = CalibrationSet.FromTrainingSplit(data, 40, seed: 1);
        using var again = CalibrationSet.FromTrainingSplit(data, 40, seed: 1);
        using var other = CalibrationSet.FromTrainingSplit(data, 40, seed: 2);
        Tensor All(CalibrationSet c) => torch.cat(c.Batches.ToList(), 0).flatten(1);
        Tensor Rows(ImageDataset set) => torch.cat(data.EvalBatches(set, 1000).Epoch(0).Select(b => b.X).ToList(), 0)
            .flatten(1);
        var chosen = All(a);
        Assert.Equal(40, chosen.shape[0]);
        Assert.True(chosen.eq(All(again)).all().item<bool>());
        Assert.False(chosen.eq(All(other)).all().item<bool>());

        // Every calibration sample is a training image, and none is a test or validation image.
        bool[] Found(Tensor rows) =>
            Enumerable.Range(0, (int)chosen.shape[0])
                .Select(i => rows.eq(chosen[i].unsqueeze(0)).all(1).any().item<bool>()).ToArray();
        Assert.All(Found(Rows(data.Train)), Assert.True);
        Assert.All(Found(Rows(data.Test)), Assert.False);
        Assert.All(Found(Rows(data.Validation)), Assert.False);
    }

    [Fact]
    public void ANamedCalibrationSourceIsReadFromItsFolderAndSampledLikeATrainingSplit()
    {
        using var scope = torch.NewDisposeScope();
        using var named = CalibrationSet.FromNamedSource(DatasetSpec.FashionMnist, trained.Files.Root, 30, seed: 4);
        Assert.Equal(30, named.Samples);
        Assert.All(named.Batches, b => Assert.Equal([1L, 12, 12], b.shape.Skip(1)));
        var e = Assert.Throws<InvalidSpecException>(() =>
            CalibrationSet.FromNamedSource("imagenet", trained.Files.Root, 30, seed: 4));
        Assert.Contains("unknown name 'imagenet'", e.Message);
    }
}

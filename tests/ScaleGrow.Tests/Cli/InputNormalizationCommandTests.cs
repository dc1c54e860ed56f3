using System.Text.Json.Nodes;
using ScaleGrow.Data;
using ScaleGrow.Runs;
using TorchSharp;
using static ScaleGrow.Tests.Cli.ModelCommandsTestKit;

namespace ScaleGrow.Tests.Cli;

/// <summary>
/// A checkpoint carries the input normalisation it was trained with, and eval/predict use it whatever data
/// directory they are given (issue 16: they normalised with the statistics of whatever --data held, so a model
/// scored differently in eval than in its own run report and its logits moved). Real Fashion-MNIST.
/// </summary>
public class InputNormalizationCommandTests
{
    // A run that trains on a 300-image subset measures different statistics than the full training set that
    // `eval --data` reads.
    private static readonly DatasetSpec Training = new(TrainLimit: 300, TestLimit: 200);

    [Fact]
    public void PredictNormalisesWithTheStatisticsTheCheckpointWasTrainedWith()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-norm-");
        try
        {
            using var model = SmallVgg();
            // Logits of a trained size (a fresh head gives ones near 0, where any input shift looks small).
            using (torch.no_grad())
                model.Module.named_parameters().Last(p => p.parameter.dim() == 2).parameter.mul_(100);
            using var training = new ImageRunData(DatasetLoader.Load(Training));
            string checkpoint = Save(model, dir.FullName, "model.safetensors", training.CheckpointMetadata);
            var expected = Logits(model, training);
            using (var full = new ImageRunData(DatasetLoader.Load(Training with { TrainLimit = null })))
            {
                // The test can fail: the full set's statistics give visibly different logits.
                Assert.NotEqual(training.Splits.Mean[0], full.Splits.Mean[0]);
                Assert.True(MaxDifference(expected, Logits(model, full)) > 1e-2);
            }

            string csv = Path.Combine(dir.FullName, "logits.csv");
            var r = Run("predict", "--model", checkpoint, "--data", DatasetLoader.FashionMnistDefaultDirectory,
                "--limit", "200", "--out", csv);

            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.DoesNotContain("warning", r.Stderr);
            var rows = ReadCsv(csv);
            Assert.Equal(expected.Count, rows.Count);
            Assert.True(MaxDifference(expected, rows.Select(row => row.Logits).ToList()) < 1e-4,
                "predict's logits differ from the ones the model gives with its training normalisation");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void EvalScoresACheckpointAsItsRunDidOnTheSameImages()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-norm-");
        try
        {
            using var model = SmallVgg(seed: 11);
            using (torch.no_grad())
                model.Module.named_parameters().Last(p => p.parameter.dim() == 2).parameter.mul_(100);
            using var training = new ImageRunData(DatasetLoader.Load(Training));
            string checkpoint = Save(model, dir.FullName, "model.safetensors", training.CheckpointMetadata);
            var run = Evaluation.Evaluate(model, training, 500, measureLatency: false, default);

            var r = Run("eval", "--model", checkpoint, "--limit", "200", "--json");

            Assert.True(r.ExitCode == 0, r.Stderr);
            var json = JsonNode.Parse(r.Stdout)!;
            Assert.Equal(run.Samples, (long)json["samples"]!);
            Assert.Equal(run.Accuracy, (double)json["accuracy"]!, 9);
            Assert.Equal(run.Loss, (double)json["loss"]!, 5);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void AnOldCheckpointWithoutItsNormalisationStillLoadsAndSaysWhichStatisticsItGot()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-norm-");
        try
        {
            using var model = SmallVgg();
            string checkpoint = Save(model, dir.FullName, "old.safetensors");

            var r = Run("eval", "--model", checkpoint, "--limit", "100", "--json");

            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Contains("warning:", r.Stderr);
            Assert.Contains("does not record its input normalisation", r.Stderr);
            var json = JsonNode.Parse(r.Stdout)!;
            Assert.Equal(100, (long)json["samples"]!);
            Assert.Contains("does not record its input normalisation", (string)json["warning"]!);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static List<float[]> Logits(ScaleGrow.Models.IScaleGrowModel model, ImageRunData data)
    {
        model.Module.eval();
        using var noGrad = torch.no_grad();
        var rows = new List<float[]>();
        foreach (var (x, _) in data.TestBatches(500))
        {
            using var scope = torch.NewDisposeScope();
            var logits = model.Module.forward(x);
            for (long i = 0; i < logits.shape[0]; i++) rows.Add(logits[i].data<float>().ToArray());
        }
        return rows;
    }

    private static double MaxDifference(List<float[]> a, List<float[]> b) =>
        a.Zip(b, (x, y) => x.Zip(y, (p, q) => Math.Abs(p - q)).Max()).Max();
}

using ScaleGrow.Data;
using TorchSharp;
using static ScaleGrow.Tests.Cli.ModelCommandsTestKit;

namespace ScaleGrow.Tests.Cli;

/// <summary>
/// What eval and predict say about a model's outputs: rows that join the real test set. Real Fashion-MNIST.
/// </summary>
public class ModelOutputCommandTests
{
    [Fact]
    public void PredictWithALimitWritesEachRowsIndexInTheFullTestSet()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-predict-");
        try
        {
            using var model = SmallVgg();
            string checkpoint = Save(model, dir.FullName, "model.safetensors", FashionMnistInput());
            string csv = Path.Combine(dir.FullName, "logits.csv");

            var r = Run("predict", "--model", checkpoint, "--data", DatasetLoader.FashionMnistDefaultDirectory, "--limit",
                "50", "--out", csv);

            Assert.True(r.ExitCode == 0, r.Stderr);
            var rows = ReadCsv(csv);
            Assert.Equal(50, rows.Count);
            var indices = rows.Select(row => row.Index).ToList();
            Assert.Equal(indices.Order().Distinct(), indices);
            // A seeded random subset of 10,000 images: its indices are not the row numbers 0..49.
            Assert.True(indices[^1] >= 50, $"indices {string.Join(",", indices)} look like row numbers");
            using var labels = IdxReader.ReadLabels(DatasetLoader.FindIdxFile(
                DatasetLoader.FashionMnistDefaultDirectory, train: false, images: false));
            foreach (var (index, label, _) in rows)
                Assert.Equal(labels[index].item<long>(), label);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}

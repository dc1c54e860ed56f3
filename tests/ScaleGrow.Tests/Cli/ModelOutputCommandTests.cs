using ScaleGrow.Data;
using TorchSharp;
using static ScaleGrow.Tests.Cli.ModelCommandsTestKit;

namespace ScaleGrow.Tests.Cli;

/// <summary>
/// What eval and predict say about a model's outputs: rows that join the real test set, and non-finite outputs
/// reported as such (issue 16: eval failed writing JSON, predict exited 0 with NaN logits). Real Fashion-MNIST.
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

            var r = Run("predict", "--model", checkpoint, "--data", DatasetLoader.FashionMnistDefaultDirectory,
                "--limit", "50", "--out", csv);

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

    public static TheoryData<string> Commands() => ["eval", "eval --json", "predict", "predict --json"];

    [Theory]
    [MemberData(nameof(Commands))]
    public void AModelWithNonFiniteOutputsIsAOneLineErrorNamingHowManyAndExitsTwo(string command)
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-nan-");
        try
        {
            using var model = SmallVgg();
            // Finite weights (the loader refuses NaN weights) whose logits overflow float32.
            using (torch.no_grad())
            {
                var head = model.Module.named_parameters().Last(p => p.parameter.dim() == 2);
                head.parameter.fill_(3e38f);
            }
            string checkpoint = Save(model, dir.FullName, "overflow.safetensors", FashionMnistInput());
            string csv = Path.Combine(dir.FullName, "logits.csv");
            var args = command.Split(' ').Concat(["--model", checkpoint, "--limit", "20"]).ToList();
            if (args[0] == "predict")
                args.AddRange(["--out", csv, "--data", DatasetLoader.FashionMnistDefaultDirectory]);

            var r = Run([.. args]);

            Assert.Equal(2, r.ExitCode);
            var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(lines.Length == 1, r.Stderr);
            Assert.Matches(@"^error: .*produced \d+ non-finite outputs \(NaN or infinite\) of 200 ", lines[0]);
            Assert.Equal("", r.Stdout.Trim());
            Assert.False(File.Exists(csv), "predict left a CSV of non-finite logits");
            Assert.Empty(Directory.GetFiles(dir.FullName, "*.tmp-*"));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}

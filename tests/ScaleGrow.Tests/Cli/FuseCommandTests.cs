using System.Diagnostics;
using ScaleGrow.Checkpoints;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Quantization;
using ScaleGrow.Tests.Models;
using TorchSharp;

namespace ScaleGrow.Tests.Cli;

/// <summary><c>scalegrow fuse</c> as a user runs it: the real executable, its exit code and its stderr.</summary>
public class FuseCommandTests
{
    [Fact]
    public async Task FusingAQuantizedCheckpointIsBadInputWithOneLineThatSaysToFuseTheFloatCheckpointFirst()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-fuse-");
        try
        {
            torch.manual_seed(2);
            var spec = CnnFusionTests.WithEveryFittingBranch(
                CnnSpecs.Fixed(CnnFamily.Vgg, 10, [1, 1, 0], stageWidths: [4, 6, 8]));
            byte[] floatCheckpoint;
            using (var model = new CnnModel(spec)) floatCheckpoint = ModelIO.SaveModel(model);
            var quantized = new QuantizationRunner().Run(floatCheckpoint, "float", new QuantizationRunRequest
            {
                Options = new QuantizationOptions { Method = QuantizationMethods.Rtn, Bits = 4 },
            });
            string input = Path.Combine(dir.FullName, "model.w4.safetensors");
            await File.WriteAllBytesAsync(input, quantized.Checkpoint);
            string output = Path.Combine(dir.FullName, "fused.safetensors");

            var info = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            foreach (var a in new[] { CrashResumeTests.CliDll(), "fuse", "--model", input, "--out", output })
                info.ArgumentList.Add(a);
            info.Environment["CI"] = "true";
            using var process = Process.Start(info)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            string stderr = await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token);
            await stdout;

            Assert.True(process.ExitCode == 2, $"exit {process.ExitCode}: {stderr}");
            string line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("error: ", line);
            Assert.Contains("quantized checkpoint", line);
            Assert.Contains("fuse the float checkpoint", line);
            Assert.DoesNotContain("internal", line);
            Assert.False(File.Exists(output));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}

using System.Text.Json;
using ScaleGrow.Cli;
using ScaleGrow.Tests.Quantization;

namespace ScaleGrow.Tests.Cli;

/// <summary><c>scalegrow quantize</c> end to end, in-process: a model the test trains, data the test writes, stdout
/// parsed as the one JSON object --json promises.</summary>
public class QuantizeCommandTests(TrainedGrownCnn trained) : IClassFixture<TrainedGrownCnn>
{
    private static async Task<(int Code, string Stdout, string Stderr)> Run(Func<Task<int>> command)
    {
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        var (oldOut, oldError) = (Console.Out, Console.Error);
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            int code = await command();
            return (code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldError);
        }
    }

    [Fact]
    public async Task QuantizeUploadRunsTheUploadOrchestrationLocallyAndRejectsGarbageWithOneLine()
    {
        string model = trained.Files.Write("upload.safetensors", trained.Checkpoint);
        string store = trained.Files.PathOf("upload-store");
        var (code, stdout, _) = await Run(() => Commands.RunAsync("quantize-upload",
            [model, "--store", store, "--bits", "8", "--method", "rtn", "--out", trained.Files.PathOf("upload-out"),
             "--json"]));
        Assert.Equal(0, code);
        using var result = JsonDocument.Parse(stdout);
        Assert.Equal("quantized", result.RootElement.GetProperty("status").GetString());
        Assert.Equal(8, result.RootElement.GetProperty("report").GetProperty("quantization").GetProperty("bits").GetInt32());
        Assert.True(File.Exists(trained.Files.PathOf("upload-out/upload.w8.safetensors")));

        var garbage = new byte[2048];
        new Random(5).NextBytes(garbage);
        string bad = trained.Files.Write("garbage.safetensors", garbage);
        var e = await Assert.ThrowsAsync<ScaleGrowException>(() => Run(() => Commands.RunAsync("quantize-upload",
            [bad, "--store", store, "--json"])));
        Assert.Contains("rejected", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.True(File.Exists(Path.Combine(store, "rejected", "garbage.safetensors", "garbage.safetensors.error.json")));
        Assert.True(File.Exists(Path.Combine(store, "rejected", "garbage.safetensors", "garbage.safetensors")));
    }

    [Fact]
    public async Task QuantizeWritesACheckpointThatEvalLoadsAndReportsOneJsonObject()
    {
        string model = trained.Files.Write("model.safetensors", trained.Checkpoint);
        string output = trained.Files.PathOf("out/model-w4.safetensors");
        var (code, stdout, stderr) = await Run(() => QuantizeCommand.ExecuteAsync(
        [
            "--model", model, "--out", output, "--bits", "4", "--method", "gptq-reorder", "--data", trained.Files.Root,
            "--calib-samples", "64", "--seed", "3", "--json",
        ]));
        Assert.Equal(0, code);
        using var report = JsonDocument.Parse(stdout);
        var root = report.RootElement;
        Assert.Equal(output, root.GetProperty("out").GetString());
        var quantization = root.GetProperty("quantization");
        Assert.Equal("gptq-reorder", quantization.GetProperty("method").GetString());
        Assert.Equal(4, quantization.GetProperty("bits").GetInt32());
        Assert.Equal(64, quantization.GetProperty("calibrationSamples").GetInt64());
        Assert.All(quantization.GetProperty("layers").EnumerateArray(),
            l => Assert.True(l.GetProperty("relativeError").GetDouble() is > 0 and < 0.2));
        double after = root.GetProperty("accuracyAfter").GetDouble();
        Assert.True(root.GetProperty("accuracyBefore").GetDouble() - after < 0.05);
        Assert.True(root.GetProperty("sizeRatio").GetDouble() > 1.5);
        Assert.True(File.Exists(output));
        Assert.Contains("layer 1/", stderr);

        // `scalegrow eval --model q.safetensors` just works, and measures what the report said.
        var (evalCode, evalOut, _) = await Run(() => Commands.RunAsync("eval",
            ["--model", output, "--data", trained.Files.Root, "--json"]));
        Assert.Equal(0, evalCode);
        using var eval = JsonDocument.Parse(evalOut);
        Assert.Equal(after, eval.RootElement.GetProperty("accuracy").GetDouble(), 9);

        // Quantizing a quantized checkpoint is refused before any work.
        var e = await Assert.ThrowsAsync<InvalidSpecException>(() => Commands.RunAsync("quantize",
            ["--model", output, "--out", output + ".again", "--data", trained.Files.Root]));
        Assert.Contains("is already quantized", e.Message);
    }

    [Theory]
    [InlineData("--bits", "9", "--bits must be an integer in 2..8, got '9'")]
    [InlineData("--method", "awq", "--method must be one of rtn, gptq, gptq-reorder, gptq-reorder-dynamic")]
    [InlineData("--scales", "f8", "--scales must be one of f32, f16")]
    [InlineData("--calib-samples", "-1", "--calib-samples must be an integer in 0..1000000")]
    public async Task BadArgumentsAreOneLineUsageErrors(string option, string value, string expected)
    {
        string model = trained.Files.Write("model.safetensors", trained.Checkpoint);
        var e = await Assert.ThrowsAsync<UsageException>(() => QuantizeCommand.ExecuteAsync(
            ["--model", model, "--out", model + ".q", option, value]));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public async Task WithoutCalibrationSamplesTheCommandFallsBackToRtnAndSaysSo()
    {
        string model = trained.Files.Write("model.safetensors", trained.Checkpoint);
        string output = trained.Files.PathOf("rtn.safetensors");
        var (code, stdout, stderr) = await Run(() => QuantizeCommand.ExecuteAsync(
            ["--model", model, "--out", output, "--data", trained.Files.Root, "--calib-samples", "0"]));
        Assert.Equal(0, code);
        Assert.Contains("fell back from gptq-reorder to rtn", stdout);
        Assert.Contains("accuracy", stdout);
        Assert.Contains("wrote", stdout);
        Assert.DoesNotContain("error:", stderr);
    }
}

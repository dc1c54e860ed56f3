using System.Text.Json.Nodes;
using ScaleGrow.Checkpoints;
using ScaleGrow.Models;
using static ScaleGrow.Tests.Cli.ModelCommandsTestKit;

namespace ScaleGrow.Tests.Cli;

/// <summary>
/// A checkpoint's architecture spec is input like any other: it cannot make `inspect` (or eval, predict, fuse) take
/// unbounded memory or crash in native code. Issue 16: a 122 KB checkpoint claiming width 8,192 took 9.4 GB,
/// numClasses 2^31 − 1 crashed with native stack frames (exit 1), an image size of 2^31 − 1 printed negative FLOPs.
/// </summary>
public class CheckpointSpecBoundsCommandTests
{
    /// <summary>A small model's real tensors under a spec edited by <paramref name="edit"/>.</summary>
    private static string ForgedCheckpoint(string directory, Action<JsonNode> edit)
    {
        using var model = SmallVgg();
        var spec = JsonNode.Parse(model.Spec.ToJson())!;
        edit(spec);
        string path = Path.Combine(directory, "forged.safetensors");
        using (var file = File.Create(path))
            CheckpointCodec.SaveModel(file, new ModelCheckpoint(spec.ToJsonString(), model.Module.state_dict()));
        return path;
    }

    private static void AssertOneLineError(CliResult r, string mentions)
    {
        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}: {r.Stderr}");
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, r.Stderr);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(mentions, lines[0]);
        Assert.DoesNotContain("internal", lines[0]);
    }

    [Fact]
    public void InspectRefusesASmallCheckpointWhoseSpecClaimsAHugeModelBeforeBuildingIt()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-forged-");
        try
        {
            string path = ForgedCheckpoint(dir.FullName, spec => spec["stageWidths"] = new JsonArray(8192, 8192, 8192));
            Assert.True(new FileInfo(path).Length < 200_000);
            var clock = System.Diagnostics.Stopwatch.StartNew();

            var r = Run("inspect", "--model", path);

            AssertOneLineError(r, "the spec does not describe these weights");
            Assert.Matches(@"has [\d,]+ parameters, but the file's \d+ tensors hold [\d,]+ values", r.Stderr);
            // Building the claimed model (1.2 G parameters) first took tens of seconds and 9.4 GB.
            Assert.True(clock.Elapsed.TotalSeconds < 30, $"took {clock.Elapsed.TotalSeconds:F0} s");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("numClasses", "numClasses must be in 2..1048576, got 2147483647")]
    [InlineData("imageSize", "imageSize must be in 4..8192, got 2147483647")]
    public void InspectRefusesA2To31FieldWithOneLineInsteadOfANativeCrashOrNegativeFlops(string field, string mentions)
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-forged-");
        try
        {
            string path = ForgedCheckpoint(dir.FullName, spec => spec[field] = int.MaxValue);

            var r = Run("inspect", "--model", path, "--json");

            AssertOneLineError(r, mentions);
            Assert.Equal("", r.Stdout.Trim());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void TheModelMemoryLimitIsASettingThatNamesItselfWhenItRefuses()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-limit-");
        try
        {
            using var model = SmallVgg();
            string path = Save(model, dir.FullName, "model.safetensors");
            long bytes = ModelMemory.Of(model.Spec).ParameterBytes;

            var within = RunWith(new Dictionary<string, string> { [ModelMemory.LimitSetting] = "1G" },
                "inspect", "--model", path);
            var over = RunWith(new Dictionary<string, string> { [ModelMemory.LimitSetting] = $"{bytes / 2}" },
                "inspect", "--model", path);
            var malformed = RunWith(new Dictionary<string, string> { [ModelMemory.LimitSetting] = "lots" },
                "inspect", "--model", path);

            Assert.True(within.ExitCode == 0, within.Stderr);
            AssertOneLineError(over, "model memory limit (SCALEGROW_MAX_MODEL_BYTES)");
            AssertOneLineError(malformed, "SCALEGROW_MAX_MODEL_BYTES: 'lots' is not a size in bytes");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}

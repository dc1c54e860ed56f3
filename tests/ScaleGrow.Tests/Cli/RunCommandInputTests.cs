using ScaleGrow.Cli;

namespace ScaleGrow.Tests.Cli;

/// <summary>
/// `grow` refuses an output location it cannot write before anything runs or is registered: an empty path, a file,
/// a place no one can write. These used to fail only after the whole run (issue 16).
/// </summary>
public class RunCommandInputTests
{
    public static TheoryData<string, string> BadOutputs() => new()
    {
        { "", "the path is empty" },
        { "FILE", "is a file, not a folder" },
        { "/proc/scalegrow-out", "cannot write to '/proc/scalegrow-out'" },
    };

    [Theory]
    [MemberData(nameof(BadOutputs))]
    public async Task AnOutputFolderThatCannotBeWrittenIsRefusedBeforeTheRunStarts(string outDir, string mentions)
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-out-");
        try
        {
            string store = Path.Combine(dir.FullName, "store");
            if (outDir == "FILE")
            {
                outDir = Path.Combine(dir.FullName, "a-file");
                File.WriteAllText(outDir, "not a folder");
            }
            var e = await Assert.ThrowsAsync<UsageException>(() =>
                Commands.RunAsync("grow", ["--preset", "tiny", "--store", store, "--run-id", "out-check", "--out", outDir]));
            Assert.Contains(mentions, e.Message);
            Assert.DoesNotContain('\n', e.Message);
            Assert.False(Directory.Exists(Path.Combine(store, "runs", "out-check")), "the run was registered");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("cuda", "TorchSharp reports no CUDA device")]
    [InlineData("cuda:3", "TorchSharp reports no CUDA device")]
    [InlineData("tpu", "device: 'tpu' is not a device")]
    public async Task ADeviceThisMachineDoesNotHaveIsRefusedBeforeTheRunIsRegistered(string device, string mentions)
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-device-");
        try
        {
            string store = Path.Combine(dir.FullName, "store");
            var e = await Assert.ThrowsAnyAsync<ScaleGrowException>(() =>
                Commands.RunAsync("grow", ["--preset", "tiny", "--store", store, "--run-id", "device-check", "--device", device]));
            Assert.Contains(mentions, e.Message);
            Assert.DoesNotContain('\n', e.Message);
            Assert.False(Directory.Exists(Path.Combine(store, "runs", "device-check")), "the run was registered");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    public static TheoryData<string, string> MissingData() => new()
    {
        { "MISSING", "data directory does not exist" },
        { "EMPTY", "no training images file" },
    };

    [Theory]
    [MemberData(nameof(MissingData))]
    public async Task DataThatIsNotThereIsRefusedBeforeTheRunIsRegistered(string data, string mentions)
    {
        // A missing data folder used to fail in InitializeRun, after the run was registered and listed (issue 16).
        var dir = Directory.CreateTempSubdirectory("scalegrow-data-");
        try
        {
            string store = Path.Combine(dir.FullName, "store");
            string folder = Path.Combine(dir.FullName, data == "EMPTY" ? "empty" : "missing");
            if (data == "EMPTY") Directory.CreateDirectory(folder);
            var e = await Assert.ThrowsAnyAsync<ScaleGrowException>(() =>
                Commands.RunAsync("grow", ["--preset", "tiny", "--store", store, "--run-id", "data-check", "--data", folder]));
            Assert.Contains(mentions, e.Message);
            Assert.Contains(folder, e.Message);
            Assert.False(Directory.Exists(Path.Combine(store, "runs", "data-check")), "the run was registered");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}

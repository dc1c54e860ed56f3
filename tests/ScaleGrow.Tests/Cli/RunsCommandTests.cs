using System.Diagnostics;
using System.Text.Json.Nodes;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Tests.Infrastructure;
using ScaleGrow.Tests.Orchestration;

namespace ScaleGrow.Tests.Cli;

/// <summary>
/// `scalegrow runs stop | delete | resume` as a user runs them, in separate processes (issue 16): delete removes a
/// run and every file of it, stopping a process still running it first; a second process cannot execute a run
/// that one is executing; on the Azure Storage engine stop and delete exit cleanly.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class RunsCommandTests(AzuriteFixture azurite) : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("scalegrow-runs-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static Process Start(params string[] args) => ModelCommandsTestKit.Start(null, args);

    private static Task<(int Code, string Stdout, string Stderr)> RunAsync(params string[] args) =>
        Task.Run(() =>
        {
            var r = ModelCommandsTestKit.Run(args);
            return (r.ExitCode, r.Stdout, r.Stderr);
        });

    [Fact]
    public async Task DeletingARunningRunStopsItsProcessAndLeavesNoFileAndASecondExecutorIsRefused()
    {
        string storeDir = Path.Combine(_dir.FullName, "store"), specPath = Path.Combine(_dir.FullName, "spec.json");
        File.WriteAllText(specPath, OrchestrationTestKit.TinyGrowth(maxEpochs: 40, fineTune: 5).ToJson());
        const string runId = "delete-me";
        using var grow = Start("grow", "--spec", specPath, "--store", storeDir, "--run-id", runId, "--out",
            Path.Combine(_dir.FullName, "out"), "--json");
        var growStderr = grow.StandardError.ReadToEndAsync();
        var growStdout = grow.StandardOutput.ReadToEndAsync();
        var store = ArtifactStores.Open(storeDir);
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (!File.Exists(Path.Combine(storeDir, "runs", runId, "journal.json")) ||
               (await new RunJournal(store, runId).EntriesAsync()).All(e => (string?)e["kind"] != "growth"))
        {
            if (grow.HasExited) Assert.Fail($"the run ended before its first growth: {await growStderr}");
            Assert.True(DateTime.UtcNow < deadline, "no growth in three minutes");
            await Task.Delay(100);
        }

        // A second executor of the same run is refused while the first lives (both used to run every step).
        var resume = await RunAsync("runs", "resume", runId, "--store", storeDir);
        Assert.Equal(2, resume.Code);
        Assert.Contains("is being executed by process", resume.Stderr);
        var again = await RunAsync("grow", "--spec", specPath, "--store", storeDir, "--run-id", runId);
        Assert.Equal(2, again.Code);
        Assert.Contains("is being executed by process", again.Stderr);

        var delete = await RunAsync("runs", "delete", runId, "--store", storeDir, "--json");
        Assert.True(delete.Code == 0, delete.Stderr);
        // The run's process let go of the run before the files went; it ends right after.
        Assert.True(grow.WaitForExit(TimeSpan.FromSeconds(30)), "the run's process went on after the delete");
        Assert.Equal(2, grow.ExitCode);
        Assert.Contains("was deleted", await growStderr);
        await growStdout;
        Assert.True((int)JsonNode.Parse(delete.Stdout.Trim().Split('\n')[^1])!["files"]! > 5);
        // Nothing of the run is left, not even empty folders, and nothing is written afterwards.
        await Task.Delay(3000);
        Assert.False(Directory.Exists(Path.Combine(storeDir, "runs", runId)));
        var list = await RunAsync("runs", "list", "--store", storeDir, "--json");
        Assert.Equal(0, list.Code);
        Assert.Empty(JsonNode.Parse(list.Stdout.Trim().Split('\n')[^1])!["runs"]!.AsArray());
        var missing = await RunAsync("runs", "delete", runId, "--store", storeDir);
        Assert.Equal(2, missing.Code);
        Assert.Contains("not found", missing.Stderr);
    }

    [Fact]
    public async Task OnTheAzureStorageEngineAStopMidGrowthEndsTheRunAndStopAndDeleteExitCleanly()
    {
        var store = new BlobArtifactStore(azurite.ConnectionString);
        string runId = $"azdel-{Guid.NewGuid():N}"[..20], hub = $"azdel{Guid.NewGuid():N}"[..16];
        string specPath = Path.Combine(_dir.FullName, "spec.json");
        File.WriteAllText(specPath, OrchestrationTestKit.TinyGrowth(maxEpochs: 40, fineTune: 5).ToJson());
        string[] engine = ["--store", azurite.ConnectionString, "--engine", "azure-storage", "--task-hub", hub];
        using var grow = Start(["grow", "--spec", specPath, "--run-id", runId, "--out", Path.Combine(_dir.FullName, "out"),
            "--json", .. engine]);
        var growStderr = grow.StandardError.ReadToEndAsync();
        var growStdout = grow.StandardOutput.ReadToEndAsync();
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while ((await new RunJournal(store, runId).EntriesAsync()).Count(e => (string?)e["kind"] == "growth") < 2)
        {
            if (grow.HasExited) Assert.Fail($"the run ended before its second growth: {await growStderr}");
            Assert.True(DateTime.UtcNow < deadline, "no second growth in three minutes");
            await Task.Delay(200);
        }
        var resume = await RunAsync(["runs", "resume", runId, .. engine]);
        Assert.True(resume.Code == 2, $"exit {resume.Code}: {resume.Stderr}");
        Assert.Contains("is being executed by process", resume.Stderr);

        // A stop mid-growth used to loop on TrainInterval, writing a step a second (246 blobs a minute); and the
        // client-only engine of `runs stop`/`runs delete` ended with exit 134 and a NullReferenceException.
        var stop = await RunAsync(["runs", "stop", runId, .. engine]);
        Assert.True(stop.Code == 0, stop.Stderr);
        Assert.DoesNotContain("Exception", stop.Stderr);
        Assert.True(grow.WaitForExit(TimeSpan.FromMinutes(2)), "the stopped run did not finish within two minutes");
        Assert.True(grow.ExitCode == 0, await growStderr);
        var result = JsonNode.Parse((await growStdout).Trim().Split('\n')[^1])!;
        Assert.StartsWith("stop requested", (string?)result["stopReason"]);
        Assert.True((int)result["epochs"]! < 40);

        var delete = await RunAsync(["runs", "delete", runId, .. engine]);
        Assert.True(delete.Code == 0, delete.Stderr);
        Assert.DoesNotContain("Exception", delete.Stderr);
        await foreach (var left in store.ListAsync($"runs/{runId}/"))
            Assert.Fail($"{left.Path} was left behind");
    }
}

using System.Text.Json.Nodes;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Tests.Infrastructure;
using ScaleGrow.Tests.Orchestration;

namespace ScaleGrow.Tests.Cli;

/// <summary>
/// `scalegrow sweep` as a user runs it (issue 18): killed mid-way and resumed with `runs resume`, it re-runs no
/// finished trial and continues the running one from its own checkpoint; on the Azure Storage backend (Azurite) a
/// grid runs its trials as child orchestrations and records a failing one; bad input is one line, exit 2.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class SweepCommandTests(AzuriteFixture azurite) : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("scalegrow-sweepcli-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string WriteSpec(string json)
    {
        string path = Path.Combine(_dir.FullName, $"sweep-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }

    private static JsonNode LastJson(string stdout) => JsonNode.Parse(stdout.Trim().Split('\n')[^1])!;

    [Fact]
    public async Task AKilledSweepResumedRerunsNoFinishedTrialAndContinuesTheRunningOneFromItsCheckpoint()
    {
        string store = Path.Combine(_dir.FullName, "store"), spec = WriteSpec(
            OrchestrationTestKit.TinySweep(""" "seed": [1, 2] """, maxEpochs: 3));
        const string id = "killed-sweep";
        var files = ArtifactStores.Open(store);
        using (var first = ModelCommandsTestKit.Start(null, "sweep", "--spec", spec, "--store", store, "--run-id", id,
                   "--json"))
        {
            var stderr = first.StandardError.ReadToEndAsync();
            var deadline = DateTime.UtcNow.AddMinutes(3);
            // Kill once the first trial is recorded and the second has finished a growth cycle (its resume point).
            while (!File.Exists(Path.Combine(store, "runs", id, "journal.json"))
                   || (await new RunJournal(files, id).EntriesAsync()).All(e => (string?)e["kind"] != "trial")
                   || !File.Exists(Path.Combine(store, "runs", $"{id}-t001", "journal.json"))
                   || (await new RunJournal(files, $"{id}-t001").EntriesAsync()).All(e => (string?)e["kind"] != "state"))
            {
                if (first.HasExited) Assert.Fail($"the sweep ended before the kill: {await stderr}");
                Assert.True(DateTime.UtcNow < deadline, "no trial recorded in three minutes");
                await Task.Delay(100);
            }
            first.Kill(entireProcessTree: true);
            await first.WaitForExitAsync();
        }
        var sweepBefore = await new RunJournal(files, id).EntriesAsync();
        Assert.DoesNotContain(sweepBefore, e => (string?)e["key"] == "trial-001");
        string reportBefore = File.ReadAllText(Path.Combine(store, "runs", $"{id}-t000", "final", "report.json"));
        var t001Before = await new RunJournal(files, $"{id}-t001").EntriesAsync();

        var resume = await Task.Run(() => ModelCommandsTestKit.Run("runs", "resume", id, "--store", store, "--json",
            "--out", Path.Combine(_dir.FullName, "out")));
        Assert.True(resume.ExitCode == 0, resume.Stderr);
        var result = LastJson(resume.Stdout);
        Assert.Equal(2, (int)result["byStatus"]!["completed"]!);
        Assert.True(File.Exists(Path.Combine(_dir.FullName, "out", "sweep.md")));

        // The finished trial was not run again: its report and its journal entry in the sweep are untouched.
        Assert.Equal(reportBefore, File.ReadAllText(Path.Combine(store, "runs", $"{id}-t000", "final", "report.json")));
        var sweepAfter = await new RunJournal(files, id).EntriesAsync();
        Assert.Equal((string?)sweepBefore.Single(e => (string?)e["key"] == "trial-000")["writtenAt"],
            (string?)sweepAfter.Single(e => (string?)e["key"] == "trial-000")["writtenAt"]);
        // The running trial continued from its own checkpoint as a new instance: every step it had done keeps its
        // record (it was not initialised or trained again), and each epoch is there once.
        var t001After = await new RunJournal(files, $"{id}-t001").EntriesAsync();
        foreach (var e in t001Before.Where(e => (string?)e["kind"] is "initialize" or "state" or "growth"))
            Assert.Equal((string?)e["writtenAt"], (string?)t001After.Single(a => (string?)a["key"] == (string?)e["key"])["writtenAt"]);
        Assert.Equal(3, t001After.Count(e => (string?)e["kind"] == "epoch"));
        Assert.Contains(".r1", File.ReadAllText(Path.Combine(store, "runs", $"{id}-t001", "instance.json")));

        // runs list shows the sweep with its trials; runs show lists them with their state.
        var list = ModelCommandsTestKit.Run("runs", "list", "--store", store, "--json");
        Assert.Equal(0, list.ExitCode);
        var runs = LastJson(list.Stdout)["runs"]!.AsArray();
        Assert.Equal("sweep", (string?)runs.Single(r => (string?)r!["runId"] == id)!["kind"]);
        Assert.Equal(2, runs.Count(r => (string?)r!["sweep"] == id));
        var show = ModelCommandsTestKit.Run("runs", "show", id, "--store", store, "--json");
        Assert.True(show.ExitCode == 0, show.Stderr);
        Assert.Equal(["completed", "completed"],
            LastJson(show.Stdout)["trials"]!.AsArray().Select(t => (string)t!["state"]!));
    }

    [Fact]
    public async Task OnTheAzureStorageBackendAGridRunsItsTrialsAndRecordsTheOneThatFails()
    {
        string hub = $"sweep{Guid.NewGuid():N}"[..16], id = $"azsweep-{Guid.NewGuid():N}"[..20];
        string spec = WriteSpec(OrchestrationTestKit.TinySweep(
            """ "growth.stopping.targetArch": ["VGG-1-0-0", "VGG-1-1"] """, maxEpochs: 1));
        var run = await Task.Run(() => ModelCommandsTestKit.Run("sweep", "--spec", spec, "--engine", "azure-storage",
            "--store", azurite.ConnectionString, "--task-hub", hub, "--run-id", id, "--json", "--out",
            Path.Combine(_dir.FullName, "az-out")));
        Assert.True(run.ExitCode == 0, run.Stderr);
        var result = LastJson(run.Stdout);
        Assert.Equal(1, (int)result["byStatus"]!["completed"]!);
        Assert.Equal(1, (int)result["byStatus"]!["failed"]!);
        var store = new BlobArtifactStore(azurite.ConnectionString);
        var trials = JsonNode.Parse(await store.ReadAllBytesAsync($"runs/{id}/final/sweep.json"))!["trials"]!.AsArray();
        Assert.Contains("has 2 blocks, the model has 3", (string?)trials[1]!["error"]);
        Assert.NotNull(await store.GetInfoAsync($"runs/{id}-t000/final/report.json"));

        var delete = ModelCommandsTestKit.Run("runs", "delete", id, "--store", azurite.ConnectionString, "--engine",
            "azure-storage", "--task-hub", hub);
        Assert.True(delete.ExitCode == 0, delete.Stderr);
        await foreach (var left in store.ListAsync($"runs/{id}"))
            Assert.Fail($"{left.Path} was left behind");
    }

    [Fact]
    public void ABadSweepIsOneLineAndExitCodeTwoBeforeAnythingIsRegistered()
    {
        string store = Path.Combine(_dir.FullName, "bad-store");
        var r = ModelCommandsTestKit.Run("sweep", "--spec", WriteSpec(OrchestrationTestKit.TinySweep(
            """ "growth.depthPlacment": ["greedy"] """)), "--store", store);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("axis 'growth.depthPlacment': unknown field 'depthPlacment'", r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        var p = ModelCommandsTestKit.Run("sweep", "--spec", WriteSpec(OrchestrationTestKit.TinySweep(""" "seed": [1] """)),
            "--parallel", "0", "--store", store);
        Assert.Equal(2, p.ExitCode);
        Assert.Contains("parallel (the concurrency limit) must be at least 1", p.Stderr);
        Assert.False(Directory.Exists(store));
    }
}

using System.Text.Json.Nodes;
using Microsoft.DurableTask.Client;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Sweeps;

namespace ScaleGrow.Tests.Orchestration;

/// <summary>
/// Sweeps on the real in-process Durable Task engine with real tiny trials (issue 18): the results table of a grid, a
/// failed trial recorded while the rest finish, ASHA pruning the trials that cannot learn, stop and delete.
/// </summary>
public sealed class SweepOrchestrationTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("scalegrow-sweep-");

    public void Dispose() => _dir.Delete(recursive: true);

    private IArtifactStore Store() => new LocalFolderArtifactStore(_dir.FullName);

    private static async Task<(OrchestrationMetadata Metadata, SweepSummary Summary)> WaitAsync(DurableTaskClient client,
        string instanceId)
    {
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (DateTime.UtcNow < deadline)
        {
            var m = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: true);
            if (m is { IsCompleted: true })
            {
                Assert.True(m.RuntimeStatus == OrchestrationRuntimeStatus.Completed,
                    $"{m.RuntimeStatus}: {m.FailureDetails?.ErrorMessage}");
                return (m, m.ReadOutputAs<SweepSummary>()!);
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"{instanceId} did not finish in time");
    }

    [Fact]
    public async Task AGridCompletesWithItsTableAndAFailedTrialIsRecordedWhileTheOthersFinish()
    {
        var store = Store();
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store), sweeps: new SweepSteps(store));
        // VGG-1-1 names two blocks for a three-block model: valid as a spec, it fails the trial in InitializeRun.
        var spec = SweepSpec.Parse(OrchestrationTestKit.TinySweep(
            """ "growth.stopping.targetArch": ["VGG-1-0-0", "VGG-1-1"], "seed": [1, 2] """, extra: "\"parallel\": 2"), "grid");
        string id = await new SweepsService(engine.Client, store).StartAsync(spec, "grid-sweep");
        var (_, summary) = await WaitAsync(engine.Client, id);

        Assert.Equal(4, summary.Trials);
        Assert.Equal(2, summary.ByStatus["completed"]);
        Assert.Equal(2, summary.ByStatus["failed"]);
        var results = JsonNode.Parse(await store.ReadAllBytesAsync(summary.Results))!;
        var trials = results["trials"]!.AsArray();
        Assert.Equal(["grid-sweep-t000", "grid-sweep-t001", "grid-sweep-t002", "grid-sweep-t003"],
            trials.Select(t => (string)t!["runId"]!));
        foreach (var t in trials.Where(t => (string?)t!["status"] == "completed"))
        {
            Assert.Equal("\"VGG-1-0-0\"", (string?)t!["axes"]!["growth.stopping.targetArch"]);
            Assert.True((long)t["parametersFused"]! > 0 && (long)t["parameters"]! >= (long)t["parametersFused"]!);
            Assert.True((long)t["flops"]! > 0);
            Assert.InRange((double)t["accuracy"]!, 0.0, 1.0);
            Assert.NotNull(t["arch"]);
            Assert.True((double)t["wallSeconds"]! > 0);
            // An ordinary run in the catalog, whose report says which sweep it belongs to.
            var report = JsonNode.Parse(await store.ReadAllBytesAsync(RunPaths.Final((string)t["runId"]!, "report.json")))!;
            Assert.Equal("grid-sweep", (string?)report["sweep"]!["sweepId"]);
        }
        var failed = trials.Where(t => (string?)t!["status"] == "failed").ToList();
        Assert.All(failed, t => Assert.Contains("has 2 blocks, the model has 3", (string?)t!["error"]));
        Assert.All(failed, t => Assert.Equal("\"VGG-1-1\"", (string?)t!["axes"]!["growth.stopping.targetArch"]));

        // sweep.md: one row per configuration (the seed averaged away), mean ± sd over its two seeds.
        string md = System.Text.Encoding.UTF8.GetString(await store.ReadAllBytesAsync(summary.Table));
        var rows = md.Split('\n').Where(l => l.StartsWith("| growth.stopping.targetArch=")).ToList();
        Assert.Equal(2, rows.Count);
        var accuracies = trials.Where(t => (string?)t!["status"] == "completed").Select(t => (double)t!["accuracy"]! * 100).ToList();
        var (mean, sd) = SweepReport.Stat(accuracies)!.Value;
        Assert.Contains($"| growth.stopping.targetArch=\"VGG-1-0-0\" | 2/2 | {mean:0.00} ± {sd:0.00} |", rows[0]);
        Assert.Contains("| 0/2 | – |", rows[1]);
        Assert.Contains("2 failed", rows[1]);
        var png = await store.ReadAllBytesAsync(summary.Plot);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);

        // The run list shows the sweep and its trials under it.
        var listing = await new SweepCatalog(store).ListAllAsync();
        Assert.Equal("sweep", listing.Single(r => r.RunId == "grid-sweep").Kind);
        Assert.Equal(4, listing.Count(r => r.Sweep == "grid-sweep"));
    }

    [Fact]
    public async Task AshaPrunesTheTrialsWhoseLearningRateCannotLearnAndTheyStillReport()
    {
        var store = Store();
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store) { ControlPollSeconds = 0.2 },
            sweeps: new SweepSteps(store));
        // Forced outcome: two trials that learn run first (too few at the rung to judge); the two with a learning rate
        // of 1e-9 reach the rung in the bottom half of three and of four trials, and are stopped there.
        var spec = SweepSpec.Parse(OrchestrationTestKit.TinySweep(
            """ "training.learningRate": [0.05, 1e-9], "seed": [1, 2] """, maxEpochs: 5,
            extra: """ "earlyStopping": {"method": "asha", "rungs": [2], "bottomFraction": 0.5, "minTrialsAtRung": 3} """),
            "asha");
        string id = await new SweepsService(engine.Client, store).StartAsync(spec, "asha-sweep");
        var (_, summary) = await WaitAsync(engine.Client, id);

        var trials = JsonNode.Parse(await store.ReadAllBytesAsync(summary.Results))!["trials"]!.AsArray();
        Assert.Equal(["completed", "completed", "pruned", "pruned"], trials.Select(t => (string)t!["status"]!));
        foreach (var t in trials.Skip(2))
        {
            Assert.StartsWith("pruned at rung epoch 2", (string?)t!["stopReason"]);
            Assert.True((int)t["epochs"]! < 5, $"{t["runId"]} trained {t["epochs"]} epochs");
            // Pruned gracefully: fused, evaluated and reported, and the report says so.
            var report = JsonNode.Parse(await store.ReadAllBytesAsync(RunPaths.Final((string)t["runId"]!, "report.json")))!;
            Assert.Equal("pruned", (string?)report["sweep"]!["status"]);
            Assert.NotNull(await store.GetInfoAsync(RunPaths.Final((string)t["runId"]!, "fused.safetensors")) ??
                           await store.GetInfoAsync(RunPaths.Final((string)t["runId"]!, "model.safetensors")));
        }
        Assert.All(trials.Take(2), t => Assert.Equal(5, (int)t!["epochs"]!));
    }

    [Fact]
    public async Task StopEndsTheRunningTrialGracefullyStartsNoMoreAndDeleteRemovesTheSweepAndItsTrials()
    {
        var store = Store();
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store) { ControlPollSeconds = 0.2 },
            sweeps: new SweepSteps(store));
        var sweeps = new SweepsService(engine.Client, store);
        var spec = SweepSpec.Parse(OrchestrationTestKit.TinySweep(""" "seed": [1, 2, 3] """, maxEpochs: 40), "stop");
        string id = await sweeps.StartAsync(spec, "stop-sweep");
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while ((await new RunCatalog(store).EpochsAsync("stop-sweep-t000")).Count < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the first trial trained no epoch in two minutes");
            await Task.Delay(200);
        }
        Assert.True(await sweeps.StopAsync(id));
        var (_, summary) = await WaitAsync(engine.Client, id);

        Assert.Equal("stop requested", summary.StopReason);
        var trials = JsonNode.Parse(await store.ReadAllBytesAsync(summary.Results))!["trials"]!.AsArray();
        Assert.Equal(["stopped", "not-started", "not-started"], trials.Select(t => (string)t!["status"]!));
        Assert.True((int)trials[0]!["epochs"]! < 40);
        Assert.NotNull(trials[0]!["accuracy"]); // fused, evaluated and reported
        Assert.Null(await new RunCatalog(store).GetAsync("stop-sweep-t001"));
        var view = await sweeps.GetAsync(id);
        Assert.Equal(["stopped", "not-started", "not-started"], view!.Trials.Select(t => t.State == "pending" ? "not-started" : t.State));

        int? files = await sweeps.DeleteAsync(id);
        Assert.True(files > 5, $"{files} files");
        await foreach (var left in store.ListAsync("runs/"))
            Assert.Fail($"{left.Path} was left behind");
        Assert.Null(await sweeps.GetAsync(id));
    }
}

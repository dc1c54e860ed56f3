using System.Text.Json.Nodes;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Testing;
using ScaleGrow.Data;
using ScaleGrow.Growth;
using ScaleGrow.Models;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Training;

namespace ScaleGrow.Tests.Orchestration;

/// <summary>Small real runs on the real in-process Durable Task engine, for the orchestration tests.</summary>
internal static class OrchestrationTestKit
{
    /// <summary>A growth run that takes seconds: 600 Fashion-MNIST samples, narrow VGG, one-epoch intervals.</summary>
    public static RunSpec TinyGrowth(int maxEpochs = 4, int fineTune = 1) => new()
    {
        Kind = RunKind.Grow, Seed = 3,
        Data = new DatasetSpec(TrainLimit: 600, TestLimit: 200, ValidationFraction: 0.2),
        // 8-12-16, not 4-6-8: the 4-channel seed diverged (NaN loss after its first depth growth) on one of the
        // machines CI can land on and not on another; a test of the orchestration must not sit on that edge.
        Model = new ModelRequest { Family = "vgg", StageWidths = [8, 12, 16] },
        Training = new TrainingOptions { BatchSize = 64 },
        Growth = new GrowthOptions
        {
            IntervalEpochs = 1, MaxEpochs = maxEpochs, FineTuneEpochs = fineTune,
            Stopping = new StoppingOptions { Auto = false },
        },
        MeasureLatency = false,
    };

    public static Task<DurableTaskTestHost> StartEngineAsync(RunSteps steps, UploadSteps? uploads = null,
        ScaleGrow.Sweeps.SweepSteps? sweeps = null) => StartEngineAsync(ActivityTable.For(steps, uploads, sweeps));

    /// <summary>
    /// The engine with a table of activities (a test may have wrapped some to inject faults). The test host, left to
    /// itself, picks a random port in 30000–40000 without checking that it is free; on Linux that range overlaps the
    /// ephemeral ports Azurite and every outgoing connection get, and a full suite run beside a benchmark once failed
    /// a test with "address already in use". So the port is one the OS has just handed out, and a clash is retried.
    /// </summary>
    public static async Task<DurableTaskTestHost> StartEngineAsync(ActivityTable activities)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await DurableTaskTestHost.StartAsync(r => ScaleGrowTasks.Register(r, activities),
                    new DurableTaskTestHostOptions { Port = FreePort() });
            }
            catch (IOException e) when (attempt < 5
                                        && e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                // another process took the port between FreePort and the bind: take another
            }
        }
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>
    /// A sweep over <see cref="TinyGrowth"/> trials (each a few seconds): <paramref name="axes"/> and any further
    /// sweep fields as JSON members, e.g. <c>"\"seed\": [1, 2]"</c>.
    /// </summary>
    public static string TinySweep(string axes, int maxEpochs = 2, int fineTune = 0, string extra = "")
    {
        var trial = TinyGrowth(maxEpochs, fineTune) with { Data = new DatasetSpec(TrainLimit: 400, TestLimit: 100, ValidationFraction: 0.25) };
        return $$"""{"kind": "sweep", "base": {{trial.ToJson()}}, "axes": { {{axes}} } {{(extra.Length > 0 ? ", " + extra : "")}} }""";
    }

    /// <summary>Waits for completion, collecting every distinct custom status seen on the way.</summary>
    public static async Task<(OrchestrationMetadata Metadata, List<RunStatus> Statuses)> WaitAsync(
        DurableTaskClient client, string instanceId, TimeSpan? timeout = null)
    {
        var statuses = new List<RunStatus>();
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromMinutes(3));
        while (DateTime.UtcNow < deadline)
        {
            var m = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: true);
            if (m?.SerializedCustomStatus is { Length: > 0 } && m.ReadCustomStatusAs<RunStatus>() is { } s
                && (statuses.Count == 0 || statuses[^1] != s))
                statuses.Add(s);
            if (m is { IsCompleted: true }) return (m, statuses);
            await Task.Delay(100);
        }
        throw new TimeoutException($"{instanceId} did not finish in time");
    }

    public static async Task<IReadOnlyList<JsonObject>> JournalAsync(IArtifactStore store, string runId) =>
        await new RunJournal(store, runId).EntriesAsync();
}

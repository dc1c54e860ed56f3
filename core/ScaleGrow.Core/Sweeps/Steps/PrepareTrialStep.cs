using System.Text;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using ScaleGrow.Runs;

namespace ScaleGrow.Sweeps;

public sealed record PrepareTrialInput(string SweepId, int Index);

public enum TrialStart
{
    /// <summary>Start (or continue) the trial as a child orchestration.</summary>
    [JsonStringEnumMemberName("run")] Run,
    /// <summary>Finished before (its result is journaled): never run again.</summary>
    [JsonStringEnumMemberName("done")] Done,
    /// <summary>The sweep is stopping: do not start it.</summary>
    [JsonStringEnumMemberName("skip")] Skip,
}

/// <summary>How a trial starts: a fresh run (<see cref="State"/> null) or the continuation of its own last journaled
/// growth cycle, under a new instance id when an earlier instance exists.</summary>
public sealed record PrepareTrialResult(string RunId, TrialStart Start, string? InstanceId, GrowthRunState? State,
    SweepTrialResult? Done);

/// <summary>The <c>PrepareTrial</c> activity of a sweep (see <see cref="RunAsync"/>).</summary>
public sealed class PrepareTrialStep(SweepSteps sweeps)
{
    /// <summary>The activity's name, as the sweep orchestration calls it.</summary>
    public const string Name = "PrepareTrial";

    private SweepSteps Context { get; } = sweeps;

    public async Task<PrepareTrialResult> RunAsync(PrepareTrialInput input,
        CancellationToken cancellationToken = default)
    {
        string runId = SweepPaths.TrialId(input.SweepId, input.Index);
        if (await Context.RecordedAsync(input.SweepId, input.Index, cancellationToken) is { } recorded)
            return new PrepareTrialResult(runId, TrialStart.Done, null, null, recorded);
        var control = await Context.ControlAsync(input.SweepId, cancellationToken);
        if (control.Stop || control.Delete) return new PrepareTrialResult(runId, TrialStart.Skip, null, null, null);
        // Finished before the sweep could record it (a process killed in between): record it now, never re-run it.
        if (await Context.Store.GetInfoAsync(RunPaths.Final(runId, "report.json"), cancellationToken) is not null)
        {
            var done = await new RecordTrialStep(Context).RunAsync(new RecordTrialInput(input.SweepId, input.Index, false, null, null, false),
                cancellationToken);
            return new PrepareTrialResult(runId, TrialStart.Done, null, null, done.Trial);
        }
        string instancePath = $"{RunPaths.Container}/{runId}/instance.json";
        GrowthRunState? state = null;
        string instanceId = runId;
        if (await Context.Store.GetInfoAsync(RunPaths.Spec(runId), cancellationToken) is null)
        {
            var spec = await Context.ReadSpecAsync(input.SweepId, cancellationToken);
            var trialSpec = spec.TrialSpec(input.Index, out _);
            if (spec.TrialSeconds is { } seconds) trialSpec = WithTimeBudget(trialSpec, seconds);
            await RunSteps.SubmitAsync(Context.Store, runId, trialSpec, cancellationToken);
        }
        else
        {
            // Started by an earlier process: continue from its own last growth cycle, under a new instance id.
            var entries = await new RunJournal(Context.Store, runId).RunEntriesAsync(cancellationToken);
            state = entries.OfType<StateEntry>().MaxBy(e => e.Step)?.State;
            string? previous = await Context.Store.GetInfoAsync(instancePath, cancellationToken) is null ? null
                : (string?)JsonNode.Parse(await Context.Store.ReadAllBytesAsync(instancePath, cancellationToken))?["instanceId"];
            if (previous is not null)
            {
                int dot = previous.LastIndexOf(".r", StringComparison.Ordinal);
                int n = dot > 0 && int.TryParse(previous.AsSpan(dot + 2), out int k) ? k + 1 : 1;
                instanceId = $"{runId}.r{n}";
            }
        }
        await RunCatalog.WriteControlAsync(Context.Store, runId, stop: false, delete: false, cancellationToken);
        await Context.Store.WriteAsync(instancePath,
            Encoding.UTF8.GetBytes(new JsonObject { ["instanceId"] = instanceId }.ToJsonString()), null, cancellationToken);
        return new PrepareTrialResult(runId, TrialStart.Run, instanceId, state, null);
    }

    /// <summary>
    /// Equal wall time: a fixed-size trial trains as many epochs as fit in <paramref name="seconds"/> at its measured
    /// time per epoch on this machine (<see cref="EpochProbe"/>, as bench §3 gave the baselines the growth runs' time).
    /// </summary>
    private static RunSpec WithTimeBudget(RunSpec spec, double seconds)
    {
        if (spec.Kind != RunKind.Train) return spec;
        double perEpoch = EpochProbe.SecondsPerEpoch(spec);
        return spec with { Epochs = Math.Clamp((int)Math.Round(seconds / perEpoch), 1, 10000) };
    }
}

using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using ScaleGrow.Runs;
using ScaleGrow.Storage;

namespace ScaleGrow.Sweeps;

/// <summary>
/// The steps (activities) of a sweep over an artifact store: plan, prepare a trial (register it, or find how far an
/// earlier process got with it), record its outcome, read running trials' progress for early stopping, stop trials,
/// and write the results (sweep.json, sweep.md, pareto.png). Each is idempotent; the trials themselves are ordinary
/// growth runs (<see cref="RunSteps"/>).
/// </summary>
public sealed class SweepSteps(IArtifactStore store)
{
    /// <summary>Where the sweep's spec, journal, trials and results live.</summary>
    internal IArtifactStore Store => store;

    internal static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Writes a sweep's spec (validated) so its orchestration can start; refuses to overwrite another one.</summary>
    public static async Task SubmitAsync(IArtifactStore store, string sweepId, SweepSpec spec,
        CancellationToken cancellationToken = default)
    {
        SweepPaths.ValidateSweepId(sweepId);
        var bytes = Encoding.UTF8.GetBytes(spec.Json);
        string path = SweepPaths.Spec(sweepId);
        if (await store.GetInfoAsync(path, cancellationToken) is not null)
        {
            if ((await store.ReadAllBytesAsync(path, cancellationToken)).AsSpan().SequenceEqual(bytes)) return;
            throw new InvalidSpecException($"sweep '{sweepId}' already exists with a different spec");
        }
        await store.WriteAsync(path, bytes, ArtifactWriteOptions.IfNotExists, cancellationToken);
    }

    public static async Task<bool> IsSweepAsync(IArtifactStore store, string id, CancellationToken cancellationToken = default) =>
        await store.GetInfoAsync(SweepPaths.Spec(id), cancellationToken) is not null;

    public async Task<SweepSpec> ReadSpecAsync(string sweepId, CancellationToken cancellationToken = default)
    {
        string path = SweepPaths.Spec(sweepId);
        return SweepSpec.Parse(Encoding.UTF8.GetString(await store.ReadAllBytesAsync(path, cancellationToken)), path);
    }

    /// <summary>Every trial of the plan: its journaled result, or "not-started".</summary>
    public async Task<IReadOnlyList<SweepTrialResult>> TrialsAsync(string sweepId, SweepSpec spec,
        CancellationToken cancellationToken = default)
    {
        var recorded = (await new RunJournal(store, sweepId).EntriesAsync(SweepJson.Default.SweepJournalEntry,
                cancellationToken))
            .OfType<TrialEntry>().Select(e => e.Trial).ToDictionary(t => t.Index);
        int count = (int)Math.Min(spec.TrialCount, spec.BudgetTrials ?? int.MaxValue);
        var list = new List<SweepTrialResult>();
        for (int i = 0; i < (int)spec.TrialCount; i++)
        {
            if (recorded.TryGetValue(i, out var t)) { list.Add(t); continue; }
            spec.TrialSpec(i, out var values);
            list.Add(new SweepTrialResult
            {
                Index = i, RunId = SweepPaths.TrialId(sweepId, i), Status = i < count ? "not-started" : "over-budget",
                Configuration = SweepSpec.ConfigurationOf(values), Axes = values.ToDictionary(v => v.Path, v => v.Value),
            });
        }
        return list;
    }

    internal async Task<SweepTrialResult?> RecordedAsync(string sweepId, int index, CancellationToken cancellationToken)
    {
        var trial = (await new RunJournal(store, sweepId).EntriesAsync(SweepJson.Default.SweepJournalEntry,
                cancellationToken))
            .OfType<TrialEntry>().FirstOrDefault(e => e.Key == $"trial-{index:000}")?.Trial;
        // A trial the sweep deleted or failed to record completely is prepared again; everything else is final.
        return trial is { Status: not "deleted" } ? trial : null;
    }

    internal async Task<(bool Stop, bool Delete)> ControlAsync(string sweepId, CancellationToken cancellationToken)
    {
        string path = RunPaths.Control(sweepId);
        if (await store.GetInfoAsync(path, cancellationToken) is null) return (false, false);
        var node = JsonNode.Parse(await store.ReadAllBytesAsync(path, cancellationToken));
        return ((bool?)node?["stop"] == true, (bool?)node?["delete"] == true);
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, AllowOutOfOrderMetadataProperties = true)]
[JsonSerializable(typeof(SweepTrialResult))]
[JsonSerializable(typeof(SweepJournalEntry))]
[JsonSerializable(typeof(GrowthRunState))]
internal partial class SweepJson : JsonSerializerContext;

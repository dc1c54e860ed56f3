namespace ScaleGrow.Runs;

/// <summary>
/// Journals the orchestration's state after a growth cycle (what a resume starts from) and deletes the steps no
/// resume can need any more (the spec's retention).
/// </summary>
public sealed class RecordProgressStep(RunSteps run) : RunStep<GrowthRunState, bool>(run)
{
    /// <summary>The activity's name, as the orchestrations call it and the service documents it.</summary>
    public const string Name = "RecordProgress";

    public override async Task<bool> RunAsync(GrowthRunState state, CancellationToken cancellationToken = default)
    {
        var journal = Run.Journal(state.RunId);
        // Retention first, against the state the journal points at now (the previous cycle's): those steps are no
        // longer needed by any resume. The new state's entry stays the step's last write, so a process killed after
        // it has nothing left of this step to redo (retention lags one cycle, which keeps a step or two more).
        if (await LastRecordedStepsAsync(journal, cancellationToken) is { } recorded)
            await DeleteOldStepsAsync(state.RunId, recorded.ResumeStep, recorded.PreGrowthStep, cancellationToken);
        await journal.UpsertAsync($"state-{state.Checkpoint.Step:00000}", new StateEntry(state.Checkpoint.Step, state),
            cancellationToken);
        return true;
    }

    private static async Task<(int ResumeStep, int? PreGrowthStep)?> LastRecordedStepsAsync(RunJournal journal,
        CancellationToken cancellationToken)
    {
        var last = (await journal.RunEntriesAsync(cancellationToken)).OfType<StateEntry>().MaxBy(e => e.Step);
        if (last is null) return null;
        return (last.State.Checkpoint.Step, last.State.BeforeLastGrowth?.Checkpoint.Step);
    }

    private async Task DeleteOldStepsAsync(string runId, int resumeStep, int? preGrowthStep,
        CancellationToken cancellationToken)
    {
        var retention = (await Run.ReadSpecAsync(runId, cancellationToken)).Retention;
        if (retention.KeepSteps == 0) return;
        string prefix = $"{RunPaths.Container}/{runId}/steps/";
        var files = new List<(int Step, string Path)>();
        await foreach (var info in Run.Store.ListAsync(prefix, cancellationToken))
        {
            string rest = info.Path[prefix.Length..];
            int slash = rest.IndexOf('/');
            if (slash > 0 && int.TryParse(rest[..slash], System.Globalization.NumberStyles.None,
                    System.Globalization.CultureInfo.InvariantCulture, out int step))
                files.Add((step, info.Path));
        }
        var delete = retention.StepsToDelete(files.Select(f => f.Step), resumeStep, preGrowthStep).ToHashSet();
        foreach (var (_, path) in files.Where(f => delete.Contains(f.Step)))
            await Run.Store.DeleteAsync(path, cancellationToken);
    }
}

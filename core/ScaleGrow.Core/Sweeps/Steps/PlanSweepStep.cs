using ScaleGrow.Runs;

namespace ScaleGrow.Sweeps;

/// <summary>What the orchestrator needs to schedule a sweep.</summary>
public sealed record SweepPlan(int Trials, int Parallel, double? WallClockSeconds, DateTime StartedUtc,
    EarlyStoppingOptions? EarlyStopping);

public sealed record PlanSweepInput(string SweepId);

/// <summary>The <c>PlanSweep</c> activity of a sweep (see <see cref="RunAsync"/>).</summary>
public sealed class PlanSweepStep(SweepSteps sweeps)
{
    /// <summary>The activity's name, as the sweep orchestration calls it.</summary>
    public const string Name = "PlanSweep";

    private SweepSteps Context { get; } = sweeps;

    public async Task<SweepPlan> RunAsync(PlanSweepInput input, CancellationToken cancellationToken = default)
    {
        var spec = await Context.ReadSpecAsync(input.SweepId, cancellationToken);
        var journal = new RunJournal(Context.Store, input.SweepId);
        // The first start's time stays: a resumed sweep's wall-clock budget counts from when it began.
        var started = (await journal.EntriesAsync(SweepJson.Default.SweepJournalEntry, cancellationToken))
            .OfType<SweepStartedEntry>().FirstOrDefault();
        DateTime startedUtc = started is null ? DateTime.UtcNow : DateTime.Parse(started.At).ToUniversalTime();
        if (started is null)
            await journal.UpsertAsync<SweepJournalEntry>("started", new SweepStartedEntry(startedUtc.ToString("O")),
                SweepJson.Default.SweepJournalEntry, cancellationToken);
        int trials = (int)Math.Min(spec.TrialCount, spec.BudgetTrials ?? int.MaxValue);
        return new SweepPlan(trials, spec.Parallel, spec.BudgetWallClockSeconds, startedUtc, spec.EarlyStopping);
    }

}

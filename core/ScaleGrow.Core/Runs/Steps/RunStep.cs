namespace ScaleGrow.Runs;

/// <summary>
/// One activity of a run, in a file of its own with its input and result records (docs/architecture.md "Where a
/// change goes"). It reads what it needs from the artifact store through <see cref="RunSteps"/>, does its work and
/// writes its result under a step-numbered name (docs/architecture.md "A run's life"). Every step is
/// idempotent: a retried step redoes only its own work and overwrites its own output. Hosts reach it through the
/// activity table (<c>ScaleGrow.Orchestration.ActivityTable</c>), which names it once for all of them.
/// </summary>
public abstract class RunStep<TInput, TResult>(RunSteps run)
{
    /// <summary>What every step of a run shares: the store, the device choice, logging and progress.</summary>
    protected RunSteps Run { get; } = run;

    public abstract Task<TResult> RunAsync(TInput input, CancellationToken cancellationToken = default);
}

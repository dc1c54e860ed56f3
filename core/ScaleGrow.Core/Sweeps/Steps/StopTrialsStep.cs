using ScaleGrow.Runs;

namespace ScaleGrow.Sweeps;

public sealed record StopTrialsInput(string SweepId, IReadOnlyList<string> RunIds);

/// <summary>The <c>StopTrials</c> activity of a sweep (see <see cref="RunAsync"/>).</summary>
public sealed class StopTrialsStep(SweepSteps sweeps)
{
    /// <summary>The activity's name, as the sweep orchestration calls it.</summary>
    public const string Name = "StopTrials";

    private SweepSteps Context { get; } = sweeps;

    /// <summary>Sets the stop flag of each trial: its training step halts between batches, then it fuses and reports.</summary>
    public async Task<bool> RunAsync(StopTrialsInput input, CancellationToken cancellationToken = default)
    {
        foreach (var runId in input.RunIds)
            await RunCatalog.WriteControlAsync(Context.Store, runId, stop: true, delete: false, cancellationToken);
        return true;
    }

}

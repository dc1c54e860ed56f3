using ScaleGrow.Growth;

namespace ScaleGrow.Runs;

public sealed record ScoreImportanceInput(string RunId, RunCheckpoint Checkpoint);

/// <summary>
/// Scores the blocks and layers of the current model by their norm layers' scales (thesis §3.2), for the
/// orchestrator to choose where to grow; journals the scores.
/// </summary>
public sealed class ScoreImportanceStep(RunSteps run) : RunStep<ScoreImportanceInput, ImportanceReport>(run)
{
    /// <summary>The activity's name, as the orchestrations call it and the service documents it.</summary>
    public const string Name = "ScoreImportance";

    public override async Task<ImportanceReport> RunAsync(ScoreImportanceInput input,
        CancellationToken cancellationToken = default)
    {
        var device = await Run.DeviceForRunAsync(input.RunId, cancellationToken);
        var model = await Run.LoadModelAsync(input.Checkpoint.Model, device, cancellationToken);
        try
        {
            var report = ImportanceScorer.Score(model);
            await Run.Journal(input.RunId).UpsertAsync($"importance-{input.Checkpoint.Step:00000}", new ImportanceEntry(
                input.Checkpoint.Step, report.Blocks.Select(b => new[] { b.Index, b.Score }).ToList(),
                report.Layers.ToDictionary(l => $"L{l.LayerId}", l => l.Score), ComputeDevice.Of(model.Module).Name),
                cancellationToken);
            return report;
        }
        finally
        {
            model.Module.Dispose();
        }
    }
}

using ScaleGrow.Checkpoints;
using ScaleGrow.Training;

namespace ScaleGrow.Runs;

/// <param name="Reset">Parameters whose values were rewritten (a branch merge): their moments start at zero.</param>
public sealed record MigrateOptimizerInput(string RunId, RunCheckpoint Checkpoint, int Step, string NewModel,
    OptimizerMigrationStrategy Strategy, IReadOnlyList<string>? Reset = null);

/// <summary>
/// Carries the optimizer state over to the grown (or merged) model: old parameters keep their moments, new ones
/// start with the chosen strategy.
/// </summary>
public sealed class MigrateOptimizerStep(RunSteps run) : RunStep<MigrateOptimizerInput, RunCheckpoint>(run)
{
    /// <summary>The activity's name, as the orchestrations call it and the service documents it.</summary>
    public const string Name = "MigrateOptimizer";

    public override async Task<RunCheckpoint> RunAsync(MigrateOptimizerInput input,
        CancellationToken cancellationToken = default)
    {
        var device = await Run.DeviceForRunAsync(input.RunId, cancellationToken);
        var oldModel = await Run.LoadModelAsync(input.Checkpoint.Model, device, cancellationToken);
        var newModel = await Run.LoadModelAsync(input.NewModel, device, cancellationToken);
        try
        {
            using var old = ModelIO.LoadOptimizer(
                await Run.Store.ReadAllBytesAsync(input.Checkpoint.Optimizer, cancellationToken), input.Checkpoint.Optimizer);
            using var migrated = OptimizerMigration.Migrate(old, newModel.Module.named_parameters(), input.Strategy,
                oldModel.Spec, newModel.Spec, input.Reset?.ToHashSet(StringComparer.Ordinal));
            string path = RunPaths.StepOptimizer(input.RunId, input.Step);
            await Run.Store.WriteAsync(path, ModelIO.SaveOptimizer(migrated), null, cancellationToken);
            await Run.Journal(input.RunId).UpsertAsync($"migrate-{input.Step:00000}", new MigrateEntry(input.Step,
                input.Strategy.ToString().ToLowerInvariant(), migrated.Moments.Count, input.Reset?.Count ?? 0,
                ComputeDevice.Of(newModel.Module).Name), cancellationToken);
            return new RunCheckpoint(input.Step, input.NewModel, path);
        }
        finally
        {
            oldModel.Module.Dispose();
            newModel.Module.Dispose();
        }
    }
}

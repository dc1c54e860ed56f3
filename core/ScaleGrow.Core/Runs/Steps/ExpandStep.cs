using ScaleGrow.Checkpoints;
using ScaleGrow.Scaling;
using ScaleGrow.Training;

namespace ScaleGrow.Runs;

public sealed record ExpandInput(string RunId, RunCheckpoint Checkpoint, int Step);

/// <summary>The expanded model's checkpoint (fresh optimizer state) and its size before and after.</summary>
public sealed record ExpandResult(RunCheckpoint Checkpoint, string ArchitectureJson, string Arch, long Parameters,
    long ParametersBefore);

/// <summary>
/// The <c>Expand</c> activity (see <see cref="RunAsync"/>).
/// </summary>
public sealed class ExpandStep(RunSteps run) : RunStep<ExpandInput, ExpandResult>(run)
{
    /// <summary>The activity's name, as the orchestrations call it and the service documents it.</summary>
    public const string Name = "Expand";

    /// <summary>
    /// ScaleNet expansion of the run's current model (docs/scalenet.md): deeper by the spec's mapping, new layer
    /// instances sharing the pretrained tensors, per-instance adapters with zero-initialised outputs (so the expanded
    /// model starts as the mapped composition of the pretrained layers). The optimizer's moments start fresh (the
    /// shared tensors now serve several instances, and the adapters are new); its step count, the learning-rate
    /// schedule's position, is kept. Writes step <c>Step</c>; idempotent.
    /// </summary>
    public override async Task<ExpandResult> RunAsync(ExpandInput input, CancellationToken cancellationToken = default)
    {
        var spec = await Run.ReadSpecAsync(input.RunId, cancellationToken);
        var options = spec.Scale?.Expansion ?? new ScaleNetOptions();
        var (model, metadata) = await Run.LoadModelWithMetadataAsync(input.Checkpoint.Model, Run.DeviceFor(spec),
            cancellationToken);
        try
        {
            var (expanded, expansion) = ScaleNetExpander.Expand(model, options, Seeds.Derive(spec.Seed, "scale", 0));
            try
            {
                // Fresh moments, but the schedule position (global step) carries on: the phase after the expansion
                // is a schedule segment that starts at the current epoch, so a step count reset to 0 would hold its
                // learning rate at the initial value for the whole phase.
                using var old = ModelIO.LoadOptimizer(
                    await Run.Store.ReadAllBytesAsync(input.Checkpoint.Optimizer, cancellationToken),
                    input.Checkpoint.Optimizer);
                using var state = OptimizerMigration.Migrate(old, expanded.Module.named_parameters(),
                    OptimizerMigrationStrategy.Fresh);
                var checkpoint = new RunCheckpoint(input.Step, RunPaths.StepModel(input.RunId, input.Step),
                    RunPaths.StepOptimizer(input.RunId, input.Step));
                await Run.Store.WriteAsync(checkpoint.Model, ModelIO.SaveModel(expanded, RunSteps.Carried(metadata)), null,
                    cancellationToken);
                await Run.Store.WriteAsync(checkpoint.Optimizer, ModelIO.SaveOptimizer(state), null, cancellationToken);
                await Run.Journal(input.RunId).UpsertAsync("expand", new ExpandEntry(input.Step, expansion.ArchBefore,
                    expansion.ArchAfter, options.Mapping.ToString().ToLowerInvariant(), expansion.ParametersBefore,
                    expansion.ParametersAfter, ComputeDevice.Of(expanded.Module).Name,
                    expansion.Mapping.Select(i => $"{i.LayerId}<-{i.SourceLayerId}{(i.Shared ? " shared" : "")}")
                        .ToList()), cancellationToken);
                return new ExpandResult(checkpoint, expanded.Spec.ToJson(), expanded.Spec.ArchString,
                    expansion.ParametersAfter, expansion.ParametersBefore);
            }
            finally
            {
                expanded.Module.Dispose();
            }
        }
        finally
        {
            model.Module.Dispose();
        }
    }
}

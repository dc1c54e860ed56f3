using System.Text.Json.Nodes;
using ScaleGrow.Checkpoints;
using ScaleGrow.Models;
using ScaleGrow.Scaling;
using ScaleGrow.Training;

namespace ScaleGrow.Runs;

public sealed partial class RunSteps
{
    /// <summary>
    /// ScaleNet expansion of the run's current model (docs/scalenet.md): deeper by the spec's mapping, new layer
    /// instances sharing the pretrained tensors, per-instance adapters with zero-initialised outputs (so the expanded
    /// model starts as the mapped composition of the pretrained layers). The optimizer's moments start fresh (the
    /// shared tensors now serve several instances, and the adapters are new); its step count, the learning-rate
    /// schedule's position, is kept. Writes step <c>Step</c>; idempotent.
    /// </summary>
    public async Task<ExpandResult> ExpandAsync(ExpandInput input, CancellationToken cancellationToken = default)
    {
        var spec = await ReadSpecAsync(input.RunId, cancellationToken);
        var options = spec.Scale?.Expansion ?? new ScaleNetOptions();
        var (model, metadata) = await LoadModelWithMetadataAsync(input.Checkpoint.Model, DeviceFor(spec),
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
                    await _store.ReadAllBytesAsync(input.Checkpoint.Optimizer, cancellationToken),
                    input.Checkpoint.Optimizer);
                using var state = OptimizerMigration.Migrate(old, expanded.Module.named_parameters(),
                    OptimizerMigrationStrategy.Fresh);
                var checkpoint = new RunCheckpoint(input.Step, RunPaths.StepModel(input.RunId, input.Step),
                    RunPaths.StepOptimizer(input.RunId, input.Step));
                await _store.WriteAsync(checkpoint.Model, ModelIO.SaveModel(expanded, Carried(metadata)), null,
                    cancellationToken);
                await _store.WriteAsync(checkpoint.Optimizer, ModelIO.SaveOptimizer(state), null, cancellationToken);
                await Journal(input.RunId).UpsertAsync("expand", new JsonObject
                {
                    ["kind"] = "expand", ["step"] = input.Step, ["archBefore"] = expansion.ArchBefore,
                    ["archAfter"] = expansion.ArchAfter, ["mapping"] = options.Mapping.ToString().ToLowerInvariant(),
                    ["parametersBefore"] = expansion.ParametersBefore,
                    ["parametersAfter"] = expansion.ParametersAfter,
                    ["device"] = ComputeDevice.Of(expanded.Module).Name,
                    ["instances"] = new JsonArray(expansion.Mapping
                        .Select(i => (JsonNode)$"{i.LayerId}<-{i.SourceLayerId}{(i.Shared ? " shared" : "")}").ToArray()),
                }, cancellationToken);
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

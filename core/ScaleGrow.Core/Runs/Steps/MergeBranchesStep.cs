using ScaleGrow.Checkpoints;
using ScaleGrow.Growth;
using ScaleGrow.Models;

namespace ScaleGrow.Runs;

/// <summary>Merge a CNN's branches into their main Conv-BN before fine-tuning (growth.fineTuneBranches = merge).</summary>
public sealed record MergeBranchesInput(string RunId, RunCheckpoint Checkpoint, int Step, long Seed, int Epoch);

/// <summary>
/// The merged model, or <see cref="Model"/> = null when there was nothing to merge (no unit has more than its main
/// branch). <see cref="Rewritten"/>: the parameters whose values the merge rewrote.
/// </summary>
public sealed record MergeBranchesResult(string? Model, string ArchitectureJson, string Arch, long Parameters,
    long ParametersFused, IReadOnlyList<string> Rewritten);

/// <summary>
/// Merges each CNN layer's branches into its main Conv-BN before fine-tuning (<c>growth.fineTuneBranches =
/// merge</c>).
/// </summary>
public sealed class MergeBranchesStep(RunSteps run) : RunStep<MergeBranchesInput, MergeBranchesResult>(run)
{
    /// <summary>The activity's name, as the orchestrations call it and the service documents it.</summary>
    public const string Name = "MergeBranches";

    public override async Task<MergeBranchesResult> RunAsync(MergeBranchesInput input,
        CancellationToken cancellationToken = default)
    {
        var device = await Run.DeviceForRunAsync(input.RunId, cancellationToken);
        var (model, metadata) = await Run.LoadModelWithMetadataAsync(input.Checkpoint.Model, device, cancellationToken);
        try
        {
            if (ModelFamilies.For(model) is not IGrowableFamily growable || !growable.HasBranchesToMerge(model))
            {
                var same = ModelStats.Of(model.Spec);
                return new MergeBranchesResult(null, model.Spec.ToJson(), model.Spec.ArchString, same.Parameters,
                    same.ParametersFused, []);
            }
            using var calibration = await Run.CalibrationBatchAsync(input.RunId, input.Seed, device, cancellationToken);
            var (merged, rewritten) = growable.MergeBranches(model, calibration);
            using var _ = merged.Module;
            string path = RunPaths.StepModel(input.RunId, input.Step);
            await Run.Store.WriteAsync(path, ModelIO.SaveModel(merged, RunSteps.Carried(metadata)), null, cancellationToken);
            var stats = ModelStats.Of(merged.Spec);
            await Run.Journal(input.RunId).UpsertAsync($"merge-{input.Step:00000}", new MergeEntry(input.Step,
                input.Epoch, merged.Spec.ArchString, ModelStats.Of(model.Spec).Parameters, stats.Parameters,
                stats.ParametersFused, ComputeDevice.Of(merged.Module).Name), cancellationToken);
            return new MergeBranchesResult(path, merged.Spec.ToJson(), merged.Spec.ArchString, stats.Parameters,
                stats.ParametersFused, rewritten);
        }
        finally
        {
            model.Module.Dispose();
        }
    }
}

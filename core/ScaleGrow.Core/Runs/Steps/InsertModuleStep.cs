using ScaleGrow.Checkpoints;
using ScaleGrow.Growth;
using ScaleGrow.Models;
using static TorchSharp.torch;

namespace ScaleGrow.Runs;

public sealed record InsertModuleInput(string RunId, RunCheckpoint Checkpoint, int Step, string GrownArchitectureJson,
    GrowthAction Action, InitOptions Init, long Seed, int Epoch, double? At = null);

public sealed record InsertModuleResult(string Model, GrowthAction Action, string ArchitectureJson, string Arch,
    long Parameters, long ParametersFused);

/// <summary>
/// Rebuilds the model as the grown architecture the orchestrator chose (a layer or a branch inserted), copying
/// every old value and initialising the new ones with the run's init options; writes the grown model as step
/// <c>Step</c>.
/// </summary>
public sealed class InsertModuleStep(RunSteps run) : RunStep<InsertModuleInput, InsertModuleResult>(run)
{
    /// <summary>The activity's name, as the orchestrations call it and the service documents it.</summary>
    public const string Name = "InsertModule";

    public override async Task<InsertModuleResult> RunAsync(InsertModuleInput input,
        CancellationToken cancellationToken = default)
    {
        var grownSpec = ArchitectureSpec.FromJson(input.GrownArchitectureJson, $"run {input.RunId} growth");
        var device = await Run.DeviceForRunAsync(input.RunId, cancellationToken);
        var (model, metadata) = await Run.LoadModelWithMetadataAsync(input.Checkpoint.Model, device, cancellationToken);
        Tensor? calibration = null;
        try
        {
            if (ModelFamilies.For(grownSpec) is IGrowableFamily growable &&
                growable.NeedsCalibration(grownSpec, input.Init, input.Action.Kind))
                calibration = await Run.CalibrationBatchAsync(input.RunId, input.Seed, device, cancellationToken);
            var (grown, newParameters) = ModelRebuilder.Rebuild(model, grownSpec, input.Init, input.Seed, calibration);
            try
            {
                string path = RunPaths.StepModel(input.RunId, input.Step);
                await Run.Store.WriteAsync(path, ModelIO.SaveModel(grown, RunSteps.Carried(metadata)), null, cancellationToken);
                var action = input.Action with { NewParameters = newParameters };
                var stats = ModelStats.Of(grownSpec);
                await Run.Journal(input.RunId).UpsertAsync($"growth-{input.Step:00000}", new GrowthEntry(input.Step,
                    input.Epoch, action, stats.Parameters, stats.ParametersFused, ComputeDevice.Of(grown.Module).Name,
                    input.At ?? input.Epoch),
                    cancellationToken);
                return new InsertModuleResult(path, action, grownSpec.ToJson(), grownSpec.ArchString, stats.Parameters,
                    stats.ParametersFused);
            }
            finally
            {
                grown.Module.Dispose();
            }
        }
        finally
        {
            calibration?.Dispose();
            model.Module.Dispose();
        }
    }
}

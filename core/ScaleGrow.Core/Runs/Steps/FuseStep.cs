using ScaleGrow.Checkpoints;
using ScaleGrow.Models;
using static TorchSharp.torch;

namespace ScaleGrow.Runs;

public sealed record FuseInput(string RunId, RunCheckpoint Checkpoint);

/// <param name="Device">Where the fusion computed (read from the fused model's parameters).</param>
public sealed record FuseResult(string FusedModel, long Parameters, long ParametersFused, string? Device = null);

/// <summary>
/// Fuses every branch of the final model away (one convolution per layer): the deployable model
/// <c>final/fused.safetensors</c>.
/// </summary>
public sealed class FuseStep(RunSteps run) : RunStep<FuseInput, FuseResult>(run)
{
    /// <summary>The activity's name, as the orchestrations call it and the service documents it.</summary>
    public const string Name = "Fuse";

    public override async Task<FuseResult> RunAsync(FuseInput input, CancellationToken cancellationToken = default)
    {
        var device = await Run.DeviceForRunAsync(input.RunId, cancellationToken);
        var (model, metadata) = await Run.LoadModelWithMetadataAsync(input.Checkpoint.Model, device, cancellationToken);
        try
        {
            IScaleGrowModel fused = ModelFamilies.For(model).ToInferenceForm(model);
            string path = RunPaths.Final(input.RunId, "fused.safetensors");
            await Run.Store.WriteAsync(path, ModelIO.SaveModel(fused, RunSteps.Carried(metadata)), null, cancellationToken);
            var stats = ModelStats.Of(model.Spec);
            string where = ComputeDevice.Of(fused.Module).Name;
            if (!ReferenceEquals(fused, model)) fused.Module.Dispose();
            await Run.Journal(input.RunId).UpsertAsync("fuse", new FuseEntry(path, stats.ParametersFused, where),
                cancellationToken);
            return new FuseResult(path, stats.Parameters, stats.ParametersFused, where);
        }
        finally
        {
            model.Module.Dispose();
        }
    }
}

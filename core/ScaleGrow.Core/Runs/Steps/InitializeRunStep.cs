using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using ScaleGrow.Checkpoints;
using ScaleGrow.Growth;
using ScaleGrow.Models;
using ScaleGrow.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Runs;

public sealed record InitializeRunInput(string RunId);

/// <param name="Device">Where the model was built (<see cref="ComputeDevice.Name"/>).</param>
public sealed record InitializeRunResult(RunCheckpoint Checkpoint, string ArchitectureJson, string Arch,
    long Parameters, RunSettings Settings, string? Device = null);

/// <summary>
/// Builds the run's seed model (or loads the pretrained one of a scale run) and writes step 0: the model, a fresh
/// optimizer state and the journal's <c>initialize</c> entry.
/// </summary>
public sealed class InitializeRunStep(RunSteps run) : RunStep<InitializeRunInput, InitializeRunResult>(run)
{
    /// <summary>The activity's name, as the orchestrations call it and the service documents it.</summary>
    public const string Name = "InitializeRun";

    public override async Task<InitializeRunResult> RunAsync(InitializeRunInput input,
        CancellationToken cancellationToken = default)
    {
        var spec = await Run.ReadSpecAsync(input.RunId, cancellationToken);
        var device = Run.DeviceFor(spec);
        Run.Logger.LogInformation("Run {RunId} computes on {Device} (asked: {Choice}), {Threads} intra-op thread(s)",
            input.RunId, device.Name, spec.Device, torch.get_num_threads());
        using var lease = RunData.Lease(spec);
        var data = lease.Data;
        var architecture = data.BuildArchitecture(spec.Model);
        if (spec.Kind == RunKind.Grow)
        {
            if (spec.Growth.Stopping.ParameterBudget is { } budget)
                StoppingRules.CheckBudgetAgainstSeed(architecture, budget);
            if (spec.Growth.Stopping.TargetArch is { } target)
            {
                (ModelFamilies.For(architecture) as IGrowableFamily)?.ValidateTarget(target, architecture);
            }
        }
        torch.manual_seed(Seeds.Derive(spec.Seed, "model", 0));
        IScaleGrowModel model;
        if (spec.Scale?.From is { } from)
        {
            var (pretrained, _) = await Run.LoadModelWithMetadataAsync(from, device, cancellationToken);
            if (pretrained.Spec is not ScaleGrow.Models.Adapters.ILayeredSpec)
            {
                pretrained.Module.Dispose();
                throw new InvalidSpecException($"scale: {from} is a {pretrained.Spec.ArchString}, not a Transformer");
            }
            model = pretrained;
            architecture = pretrained.Spec;
        }
        else
        {
            model = ModelFactory.Create(architecture);
            device.Place(model.Module);
        }
        using var optimizer = new NamedOptimizer(model.Module.named_parameters(), spec.Training);
        using var state = optimizer.Export();
        var checkpoint = new RunCheckpoint(0, RunPaths.StepModel(input.RunId, 0), RunPaths.StepOptimizer(input.RunId, 0));
        await Run.Store.WriteAsync(checkpoint.Model, ModelIO.SaveModel(model, data.CheckpointMetadata), null, cancellationToken);
        await Run.Store.WriteAsync(checkpoint.Optimizer, ModelIO.SaveOptimizer(state), null, cancellationToken);
        var stats = ModelStats.Of(architecture);
        await Run.Journal(input.RunId).UpsertAsync("initialize", new InitializeEntry(0, architecture.ArchString,
            stats.Parameters, JsonNode.Parse(architecture.ToJson())!, device.Name, torch.get_num_threads()),
            cancellationToken);
        (model.Module as IDisposable)?.Dispose();
        return new InitializeRunResult(checkpoint, architecture.ToJson(), architecture.ArchString, stats.Parameters,
            spec.Settings(), device.Name);
    }
}

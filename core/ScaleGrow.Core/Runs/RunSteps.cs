using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ScaleGrow.Checkpoints;
using ScaleGrow.Data;
using ScaleGrow.Growth;
using ScaleGrow.Models;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Storage;
using ScaleGrow.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Runs;

/// <summary>
/// The steps of growth and training runs over an artifact store (see <see cref="IRunSteps"/>). Stateless apart from
/// caches: datasets are loaded once per process, and the store is expected to be wrapped in a caching decorator so a
/// checkpoint written by one step is not read back from remote storage by the next.
/// </summary>
public sealed partial class RunSteps : IRunSteps
{
    private readonly IArtifactStore _store;
    private readonly ILogger _logger;

    public RunSteps(IArtifactStore store, ILogger<RunSteps>? logger = null)
    {
        _store = store;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>Seconds between two looks at the run's control flag while training.</summary>
    public double ControlPollSeconds { get; init; } = 2;

    /// <summary>
    /// Tests only: compute on this device instead of the run spec's choice (the device audit places models in
    /// float64 on the CPU, see <see cref="ComputeDevice"/>).
    /// </summary>
    internal ComputeDevice? DeviceOverride { get; init; }

    /// <summary>
    /// Tests only: train in bf16/fp16 on the CPU too (a run falls back to fp32 there: the CPU has no fast low-precision
    /// kernels here, and a GPU run resumed on a CPU replica should not crawl).
    /// </summary>
    internal bool AllowLowPrecisionOnCpu { get; init; }

    /// <summary>
    /// The precision a training step uses on <paramref name="device"/>: the spec's, except bf16/fp16 on a CPU, which
    /// fall back to fp32 (an explicit <c>device: cpu</c> with them is refused when the spec is validated).
    /// </summary>
    internal TrainingPrecision PrecisionOn(ComputeDevice device, TrainingPrecision asked) =>
        asked == TrainingPrecision.Fp32 || device.IsCuda || AllowLowPrecisionOnCpu ? asked : TrainingPrecision.Fp32;

    /// <summary>The device this process computes the run's steps on (the spec's choice, resolved here).</summary>
    internal ComputeDevice DeviceFor(RunSpec spec) => DeviceOverride ?? ComputeDevice.Resolve(spec.Device);

    private async Task<ComputeDevice> DeviceForRunAsync(string runId, CancellationToken cancellationToken) =>
        DeviceFor(await ReadSpecAsync(runId, cancellationToken));

    /// <summary>Writes a run's spec (validated) so its orchestration can start; refuses to overwrite another spec.</summary>
    public static async Task SubmitAsync(IArtifactStore store, string runId, RunSpec spec,
        CancellationToken cancellationToken = default)
    {
        RunPaths.ValidateRunId(runId);
        spec.Validate();
        var bytes = System.Text.Encoding.UTF8.GetBytes(spec.ToJson());
        var existing = await store.GetInfoAsync(RunPaths.Spec(runId), cancellationToken);
        if (existing is not null)
        {
            var current = await store.ReadAllBytesAsync(RunPaths.Spec(runId), cancellationToken);
            if (current.AsSpan().SequenceEqual(bytes)) return;
            throw new InvalidSpecException($"run '{runId}' already exists with a different spec");
        }
        await store.WriteAsync(RunPaths.Spec(runId), bytes,
            ArtifactWriteOptions.IfNotExists, cancellationToken);
    }

    public async Task<RunSpec> ReadSpecAsync(string runId, CancellationToken cancellationToken = default)
    {
        var path = RunPaths.Spec(RunPaths.ValidateRunId(runId));
        var bytes = await _store.ReadAllBytesAsync(path, cancellationToken);
        return RunSpec.FromJson(System.Text.Encoding.UTF8.GetString(bytes), path);
    }

    public async Task<InitializeRunResult> InitializeRunAsync(InitializeRunInput input,
        CancellationToken cancellationToken = default)
    {
        var spec = await ReadSpecAsync(input.RunId, cancellationToken);
        var device = DeviceFor(spec);
        _logger.LogInformation("Run {RunId} computes on {Device} (asked: {Choice}), {Threads} intra-op thread(s)",
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
                if (architecture is CnnSpec cnn) StoppingRules.ParseTarget(target, cnn);
                else if (architecture is Models.Transformer.TransformerSpec t)
                    GrowthPlanner.ParseTransformerTarget(target, t);
            }
        }
        torch.manual_seed(Seeds.Derive(spec.Seed, "model", 0));
        IScaleGrowModel model;
        if (spec.Scale?.From is { } from)
        {
            var (pretrained, _) = await LoadModelWithMetadataAsync(from, device, cancellationToken);
            if (pretrained.Spec is not Scaling.ILayeredSpec)
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
        await _store.WriteAsync(checkpoint.Model, ModelIO.SaveModel(model, data.CheckpointMetadata), null, cancellationToken);
        await _store.WriteAsync(checkpoint.Optimizer, ModelIO.SaveOptimizer(state), null, cancellationToken);
        var stats = ModelStats.Of(architecture);
        await Journal(input.RunId).UpsertAsync("initialize", new JsonObject
        {
            ["kind"] = "initialize", ["step"] = 0, ["arch"] = architecture.ArchString,
            ["parameters"] = stats.Parameters, ["architecture"] = JsonNode.Parse(architecture.ToJson()),
            ["device"] = device.Name, ["threads"] = torch.get_num_threads(),
        }, cancellationToken);
        (model.Module as IDisposable)?.Dispose();
        return new InitializeRunResult(checkpoint, architecture.ToJson(), architecture.ArchString, stats.Parameters,
            spec.Settings(), device.Name);
    }

    public async Task<ImportanceReport> ScoreImportanceAsync(ScoreImportanceInput input,
        CancellationToken cancellationToken = default)
    {
        var device = await DeviceForRunAsync(input.RunId, cancellationToken);
        var model = await LoadModelAsync(input.Checkpoint.Model, device, cancellationToken);
        try
        {
            var report = ImportanceScorer.Score(model);
            await Journal(input.RunId).UpsertAsync($"importance-{input.Checkpoint.Step:00000}", new JsonObject
            {
                ["kind"] = "importance", ["step"] = input.Checkpoint.Step,
                ["blocks"] = JsonSerializer.SerializeToNode(report.Blocks.Select(b => new[] { b.Index, b.Score })),
                ["layers"] = JsonSerializer.SerializeToNode(report.Layers.ToDictionary(l => $"L{l.LayerId}", l => l.Score)),
                ["device"] = ComputeDevice.Of(model.Module).Name,
            }, cancellationToken);
            return report;
        }
        finally
        {
            model.Module.Dispose();
        }
    }

    public async Task<InsertModuleResult> InsertModuleAsync(InsertModuleInput input,
        CancellationToken cancellationToken = default)
    {
        var grownSpec = ArchitectureSpec.FromJson(input.GrownArchitectureJson, $"run {input.RunId} growth");
        var device = await DeviceForRunAsync(input.RunId, cancellationToken);
        var (model, metadata) = await LoadModelWithMetadataAsync(input.Checkpoint.Model, device, cancellationToken);
        Tensor? calibration = null;
        try
        {
            if (input.Init.PreserveFunction && grownSpec is CnnSpec && input.Action.Kind == GrowthKind.Depth)
                calibration = await CalibrationBatchAsync(input.RunId, input.Seed, device, cancellationToken);
            var (grown, newParameters) = ModelRebuilder.Rebuild(model, grownSpec, input.Init, input.Seed, calibration);
            try
            {
                string path = RunPaths.StepModel(input.RunId, input.Step);
                await _store.WriteAsync(path, ModelIO.SaveModel(grown, Carried(metadata)), null, cancellationToken);
                var action = input.Action with { NewParameters = newParameters };
                var stats = ModelStats.Of(grownSpec);
                await Journal(input.RunId).UpsertAsync($"growth-{input.Step:00000}", new JsonObject
                {
                    ["kind"] = "growth", ["step"] = input.Step, ["epoch"] = input.Epoch,
                    ["action"] = JsonSerializer.SerializeToNode(action, RunStepsJson.Default.GrowthAction),
                    ["parameters"] = stats.Parameters, ["parametersFused"] = stats.ParametersFused,
                    ["device"] = ComputeDevice.Of(grown.Module).Name,
                }, cancellationToken);
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

    public async Task<MergeBranchesResult> MergeBranchesAsync(MergeBranchesInput input,
        CancellationToken cancellationToken = default)
    {
        var device = await DeviceForRunAsync(input.RunId, cancellationToken);
        var (model, metadata) = await LoadModelWithMetadataAsync(input.Checkpoint.Model, device, cancellationToken);
        try
        {
            if (model is not CnnModel cnn || !CnnBranchMerge.HasBranches(cnn.Spec))
            {
                var same = ModelStats.Of(model.Spec);
                return new MergeBranchesResult(null, model.Spec.ToJson(), model.Spec.ArchString, same.Parameters,
                    same.ParametersFused, []);
            }
            using var calibration = await CalibrationBatchAsync(input.RunId, input.Seed, device, cancellationToken);
            var (merged, rewritten) = CnnBranchMerge.Merge(cnn, calibration);
            using var _ = merged;
            string path = RunPaths.StepModel(input.RunId, input.Step);
            await _store.WriteAsync(path, ModelIO.SaveModel(merged, Carried(metadata)), null, cancellationToken);
            var stats = ModelStats.Of(merged.Spec);
            await Journal(input.RunId).UpsertAsync($"merge-{input.Step:00000}", new JsonObject
            {
                ["kind"] = "merge", ["step"] = input.Step, ["epoch"] = input.Epoch, ["arch"] = merged.Spec.ArchString,
                ["parametersBefore"] = ModelStats.Of(cnn.Spec).Parameters,
                ["parameters"] = stats.Parameters, ["parametersFused"] = stats.ParametersFused,
                ["device"] = ComputeDevice.Of(merged.Module).Name,
            }, cancellationToken);
            return new MergeBranchesResult(path, merged.Spec.ToJson(), merged.Spec.ArchString, stats.Parameters,
                stats.ParametersFused, rewritten);
        }
        finally
        {
            model.Module.Dispose();
        }
    }

    /// <summary>Training inputs (as training sees them, augmented) for calibrating a new layer to its input.</summary>
    private async Task<Tensor> CalibrationBatchAsync(string runId, long seed, ComputeDevice device,
        CancellationToken cancellationToken)
    {
        const int CalibrationSamples = 512;
        var spec = await ReadSpecAsync(runId, cancellationToken);
        using var lease = RunData.Lease(spec);
        using var scope = torch.NewDisposeScope();
        var (x, _) = lease.Data.TrainEpoch(CalibrationSamples, seed, 0).First();
        return device.Input(x).MoveToOuterDisposeScope();
    }

    public async Task<RunCheckpoint> MigrateOptimizerAsync(MigrateOptimizerInput input,
        CancellationToken cancellationToken = default)
    {
        var device = await DeviceForRunAsync(input.RunId, cancellationToken);
        var oldModel = await LoadModelAsync(input.Checkpoint.Model, device, cancellationToken);
        var newModel = await LoadModelAsync(input.NewModel, device, cancellationToken);
        try
        {
            using var old = ModelIO.LoadOptimizer(
                await _store.ReadAllBytesAsync(input.Checkpoint.Optimizer, cancellationToken), input.Checkpoint.Optimizer);
            using var migrated = OptimizerMigration.Migrate(old, newModel.Module.named_parameters(), input.Strategy,
                oldModel.Spec, newModel.Spec, input.Reset?.ToHashSet(StringComparer.Ordinal));
            string path = RunPaths.StepOptimizer(input.RunId, input.Step);
            await _store.WriteAsync(path, ModelIO.SaveOptimizer(migrated), null, cancellationToken);
            await Journal(input.RunId).UpsertAsync($"migrate-{input.Step:00000}", new JsonObject
            {
                ["kind"] = "migrate", ["step"] = input.Step,
                ["strategy"] = input.Strategy.ToString().ToLowerInvariant(), ["moments"] = migrated.Moments.Count,
                ["reset"] = input.Reset?.Count ?? 0,
                ["device"] = ComputeDevice.Of(newModel.Module).Name,
            }, cancellationToken);
            return new RunCheckpoint(input.Step, input.NewModel, path);
        }
        finally
        {
            oldModel.Module.Dispose();
            newModel.Module.Dispose();
        }
    }

    public async Task RecordProgressAsync(GrowthRunState state, CancellationToken cancellationToken = default)
    {
        var journal = Journal(state.RunId);
        // Retention first, against the state the journal points at now (the previous cycle's): those steps are no
        // longer needed by any resume. The new state's entry stays the step's last write, so a process killed after
        // it has nothing left of this step to redo (retention lags one cycle, which keeps a step or two more).
        if (await LastRecordedStepsAsync(journal, cancellationToken) is { } recorded)
            await DeleteOldStepsAsync(state.RunId, recorded.ResumeStep, recorded.PreGrowthStep, cancellationToken);
        await journal.UpsertAsync($"state-{state.Checkpoint.Step:00000}", new JsonObject
        {
            ["kind"] = "state", ["step"] = state.Checkpoint.Step,
            ["state"] = JsonSerializer.SerializeToNode(state, RunStepsJson.Default.GrowthRunState),
        }, cancellationToken);
    }

    private static async Task<(int ResumeStep, int? PreGrowthStep)?> LastRecordedStepsAsync(RunJournal journal,
        CancellationToken cancellationToken)
    {
        var last = (await journal.EntriesAsync(cancellationToken)).Where(e => (string?)e["kind"] == "state")
            .MaxBy(e => (int?)e["step"] ?? -1);
        if (last?["state"] is not JsonObject recorded || (int?)recorded["checkpoint"]?["step"] is not { } step)
            return null;
        return (step, (int?)recorded["beforeLastGrowth"]?["checkpoint"]?["step"]);
    }

    private async Task DeleteOldStepsAsync(string runId, int resumeStep, int? preGrowthStep,
        CancellationToken cancellationToken)
    {
        var retention = (await ReadSpecAsync(runId, cancellationToken)).Retention;
        if (retention.KeepSteps == 0) return;
        string prefix = $"{RunPaths.Container}/{runId}/steps/";
        var files = new List<(int Step, string Path)>();
        await foreach (var info in _store.ListAsync(prefix, cancellationToken))
        {
            string rest = info.Path[prefix.Length..];
            int slash = rest.IndexOf('/');
            if (slash > 0 && int.TryParse(rest[..slash], System.Globalization.NumberStyles.None,
                    System.Globalization.CultureInfo.InvariantCulture, out int step))
                files.Add((step, info.Path));
        }
        var delete = retention.StepsToDelete(files.Select(f => f.Step), resumeStep, preGrowthStep).ToHashSet();
        foreach (var (_, path) in files.Where(f => delete.Contains(f.Step)))
            await _store.DeleteAsync(path, cancellationToken);
    }

    public async Task<FuseResult> FuseAsync(FuseInput input, CancellationToken cancellationToken = default)
    {
        var device = await DeviceForRunAsync(input.RunId, cancellationToken);
        var (model, metadata) = await LoadModelWithMetadataAsync(input.Checkpoint.Model, device, cancellationToken);
        try
        {
            IScaleGrowModel fused = model is CnnModel cnn && !cnn.Spec.Fused ? CnnFusion.Fuse(cnn) : model;
            string path = RunPaths.Final(input.RunId, "fused.safetensors");
            await _store.WriteAsync(path, ModelIO.SaveModel(fused, Carried(metadata)), null, cancellationToken);
            var stats = ModelStats.Of(model.Spec);
            string where = ComputeDevice.Of(fused.Module).Name;
            if (!ReferenceEquals(fused, model)) fused.Module.Dispose();
            await Journal(input.RunId).UpsertAsync("fuse", new JsonObject
            {
                ["kind"] = "fuse", ["model"] = path, ["parametersFused"] = stats.ParametersFused, ["device"] = where,
            }, cancellationToken);
            return new FuseResult(path, stats.Parameters, stats.ParametersFused, where);
        }
        finally
        {
            model.Module.Dispose();
        }
    }

    public async Task<EvaluationResult> EvaluateAsync(EvaluateInput input, CancellationToken cancellationToken = default)
    {
        var spec = await ReadSpecAsync(input.RunId, cancellationToken);
        using var lease = RunData.Lease(spec);
        var data = lease.Data;
        var device = DeviceFor(spec);
        var model = await LoadModelAsync(input.Model, device, cancellationToken);
        try
        {
            var result = Evaluation.Evaluate(model, data, spec.Training.EvalBatchSize,
                input.MeasureLatency && spec.MeasureLatency, cancellationToken, device);
            await Journal(input.RunId).UpsertAsync("evaluate", new JsonObject
            {
                ["kind"] = "evaluate", ["model"] = input.Model,
                ["result"] = JsonSerializer.SerializeToNode(result, RunStepsJson.Default.EvaluationResult),
            }, cancellationToken);
            return result;
        }
        finally
        {
            model.Module.Dispose();
        }
    }

    private RunJournal Journal(string runId) => new(_store, runId);

    private async Task<IScaleGrowModel> LoadModelAsync(string path, ComputeDevice device,
        CancellationToken cancellationToken) =>
        (await LoadModelWithMetadataAsync(path, device, cancellationToken)).Model;

    /// <summary>A checkpoint's model, placed on <paramref name="device"/> (checkpoints themselves are device-free).</summary>
    private async Task<(IScaleGrowModel Model, IReadOnlyDictionary<string, string> Metadata)> LoadModelWithMetadataAsync(
        string path, ComputeDevice device, CancellationToken cancellationToken)
    {
        var bytes = await _store.ReadAllBytesAsync(path, cancellationToken);
        var (model, metadata) = ModelIO.LoadModel(bytes, path);
        try
        {
            device.Place(model.Module);
        }
        catch
        {
            model.Module.Dispose();
            throw;
        }
        return (model, metadata);
    }

    /// <summary>Metadata a model's next checkpoint keeps (the tokenizer and text data spec); the rest is recomputed when saving.</summary>
    private static IReadOnlyDictionary<string, string> Carried(IReadOnlyDictionary<string, string> metadata) =>
        metadata.Where(kv => kv.Key is ScaleGrow.Data.Text.TextTokenizer.MetadataKey or TextRunData.MetadataKey
            or InputNormalization.MetadataKey)
            .ToDictionary(kv => kv.Key, kv => kv.Value);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true)]
[JsonSerializable(typeof(GrowthAction))]
[JsonSerializable(typeof(GrowthRunState))]
[JsonSerializable(typeof(EvaluationResult))]
[JsonSerializable(typeof(QuantizeModelResult))]
[JsonSerializable(typeof(ExportModelResult))]
[JsonSerializable(typeof(DatasetSpec))]
[JsonSerializable(typeof(ScaleGrow.Data.Text.TextDatasetSpec))]
internal partial class RunStepsJson : JsonSerializerContext;

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
/// What every step of a run shares (each step is a <see cref="RunStep{TInput, TResult}"/> in <c>Runs/Steps/</c>, one
/// file per activity): the artifact store, the device choice, logging, live progress, and reading the run's spec and
/// models. Stateless apart from caches: datasets are loaded once per process, and the store is expected to be wrapped
/// in a caching decorator so a checkpoint written by one step is not read back from remote storage by the next.
/// </summary>
public sealed class RunSteps
{
    public RunSteps(IArtifactStore store, ILogger<RunSteps>? logger = null)
    {
        Store = store;
        Logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>Where the run's spec, checkpoints, journal and final artifacts live.</summary>
    internal IArtifactStore Store { get; }

    internal ILogger Logger { get; }

    /// <summary>Receives per-batch progress of training steps run in this process (optional).</summary>
    public IProgress<TrainingProgress>? Progress { get; init; }

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

    internal async Task<ComputeDevice> DeviceForRunAsync(string runId, CancellationToken cancellationToken) =>
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
        var bytes = await Store.ReadAllBytesAsync(path, cancellationToken);
        return RunSpec.FromJson(System.Text.Encoding.UTF8.GetString(bytes), path);
    }

    /// <summary>Training inputs (as training sees them, augmented) for calibrating a new layer to its input.</summary>
    internal async Task<Tensor> CalibrationBatchAsync(string runId, long seed, ComputeDevice device,
        CancellationToken cancellationToken)
    {
        const int CalibrationSamples = 512;
        var spec = await ReadSpecAsync(runId, cancellationToken);
        using var lease = RunData.Lease(spec);
        using var scope = torch.NewDisposeScope();
        var (x, _) = lease.Data.TrainEpoch(CalibrationSamples, seed, 0).First();
        return device.Input(x).MoveToOuterDisposeScope();
    }

    internal RunJournal Journal(string runId) => new(Store, runId);

    internal async Task<IScaleGrowModel> LoadModelAsync(string path, ComputeDevice device,
        CancellationToken cancellationToken) =>
        (await LoadModelWithMetadataAsync(path, device, cancellationToken)).Model;

    /// <summary>A checkpoint's model, placed on <paramref name="device"/> (checkpoints themselves are device-free).</summary>
    internal async Task<(IScaleGrowModel Model, IReadOnlyDictionary<string, string> Metadata)> LoadModelWithMetadataAsync(
        string path, ComputeDevice device, CancellationToken cancellationToken)
    {
        var bytes = await Store.ReadAllBytesAsync(path, cancellationToken);
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
    internal static IReadOnlyDictionary<string, string> Carried(IReadOnlyDictionary<string, string> metadata) =>
        metadata.Where(kv => kv.Key is ScaleGrow.Data.Text.TextTokenizer.MetadataKey or TextRunData.MetadataKey
            or InputNormalization.MetadataKey)
            .ToDictionary(kv => kv.Key, kv => kv.Value);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true,
    AllowOutOfOrderMetadataProperties = true)]
[JsonSerializable(typeof(GrowthAction))]
[JsonSerializable(typeof(RunJournalEntry))]
[JsonSerializable(typeof(GrowthRunState))]
[JsonSerializable(typeof(EvaluationResult))]
[JsonSerializable(typeof(QuantizeModelResult))]
[JsonSerializable(typeof(ExportModelResult))]
[JsonSerializable(typeof(DatasetSpec))]
[JsonSerializable(typeof(ScaleGrow.Data.Text.TextDatasetSpec))]
internal partial class RunStepsJson : JsonSerializerContext;

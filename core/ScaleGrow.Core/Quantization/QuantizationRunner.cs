using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ScaleGrow.Checkpoints;
using ScaleGrow.Data;
using ScaleGrow.Models;
using ScaleGrow.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Quantization;

/// <summary>What to quantize a checkpoint with, and what to measure it on.</summary>
public sealed record QuantizationRunRequest
{
    public required QuantizationOptions Options { get; init; }

    /// <summary>Calibration inputs (from a training split or a named source). Null or empty: calibrated methods
    /// fall back to <c>rtn</c>, and the report says so.</summary>
    public CalibrationSet? Calibration { get; init; }

    /// <summary>Data whose TEST split measures accuracy before and after; null: accuracy is not measured.</summary>
    public DataSplits? EvaluationData { get; init; }

    /// <summary>Give the re-ordering methods the fused convolutions' branch-overlap maps (thesis 4.2.2: most-overlapped
    /// kernel positions first). False orders every layer by importance alone — an ablation of that rule.</summary>
    public bool UseOverlapMaps { get; init; } = true;

    /// <summary>Measure the float model too (benchmarks that quantize one model many times measure it once).
    /// </summary>
    public bool EvaluateBefore { get; init; } = true;

    public QuantizedCheckpointOptions Checkpoint { get; init; } = new();

    public int EvaluationBatchSize { get; init; } = 500;

    /// <summary>Where the model is measured and quantized (Hessians, Cholesky and the column sweep run there too);
    /// the checkpoint written is the same CPU file whatever the device.</summary>
    public ComputeDevice Device { get; init; } = ComputeDevice.Cpu;
}

/// <summary>The quantized checkpoint and the report of one run.</summary>
public sealed record QuantizationRunResult(byte[] Checkpoint, QuantizationRunReport Report);

/// <summary>
/// Quantizes a float checkpoint end to end (thesis chapter 4; the engine of the Quantize activity, quantize-on-upload
/// and <c>scalegrow quantize</c>): checks every input before any work, fuses an unfused CNN (the re-ordered GPTQ
/// needs the fused kernels and their branch-overlap maps, thesis 4.1–4.2.2), measures the float model, quantizes it
/// layer by layer with <see cref="ModelQuantizer"/>, writes a packed <see cref="QuantizedCheckpoint"/>, and measures
/// the model loaded back from those bytes — so the accuracy reported is the accuracy of the file.
/// </summary>
public sealed class QuantizationRunner(ILogger? logger = null)
{
    private readonly ILogger _logger = logger ?? NullLogger.Instance;

    /// <summary>Quantizes an in-memory model (it is copied first; the caller's model is not changed).</summary>
    public QuantizationRunResult Run(IScaleGrowModel model, QuantizationRunRequest request,
        IProgress<QuantizationRunProgress>? progress = null, CancellationToken cancellation = default) =>
        Run(ModelIO.SaveModel(model), "model", request, progress, cancellation);

    /// <summary>
    /// Quantizes the float checkpoint <paramref name="checkpoint"/> (<paramref name="source"/> names it in errors).
    /// Refused before any work, with one <see cref="ScaleGrowException"/>: invalid options (unknown method, bits
    /// outside 2..8, ...), a checkpoint that is already quantized or malformed, calibration or test data whose sample
    /// shape is not the model's input, a calibrated method on a model whose layers hooks cannot observe.
    /// </summary>
    public QuantizationRunResult Run(byte[] checkpoint, string source, QuantizationRunRequest request,
        IProgress<QuantizationRunProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        using var stream = new MemoryStream(checkpoint, writable: false);
        return Run(stream, source, request, progress, cancellation);
    }

    /// <summary>
    /// Quantizes the float checkpoint read from a seekable <paramref name="checkpoint"/> stream, which is read once,
    /// tensor by tensor, and never held whole in memory (quantize-on-upload streams a pinned blob version this way).
    /// The same checks as the byte overload come first; the header is read before any tensor.
    /// </summary>
    public QuantizationRunResult Run(Stream checkpoint, string source, QuantizationRunRequest request,
        IProgress<QuantizationRunProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(request);
        var clock = Stopwatch.StartNew();
        var options = CheckRequest(request);
        long inputBytes = checkpoint.Length - checkpoint.Position;
        CheckNotQuantized(CheckpointCodec.ReadKind(checkpoint, source), source);
        progress?.Report(new QuantizationRunProgress(QuantizationRunStage.Loading));
        var (loaded, metadata) = ModelIO.LoadModel(checkpoint, source);
        return RunLoaded(loaded, metadata, source, inputBytes, options, request, clock, progress, cancellation);
    }

    private static QuantizationOptions CheckRequest(QuantizationRunRequest request)
    {
        var options = request.Options with { };
        options.Validate();
        if (request.EvaluationBatchSize < 1)
            throw new InvalidSpecException($"quantization: evaluation batch size must be positive, got " +
                                           request.EvaluationBatchSize);
        return options;
    }

    private static void CheckNotQuantized(string? kind, string source)
    {
        if (kind == CheckpointMetadata.QuantizedModelKind)
            throw new InvalidSpecException($"{source}: is already quantized (kind '{kind}'); quantize the float " +
                                           "checkpoint it was made from");
    }

    // Takes ownership of the loaded model (disposed when done).
    private QuantizationRunResult RunLoaded(IScaleGrowModel loaded, IReadOnlyDictionary<string, string> metadata,
        string source, long inputBytes, QuantizationOptions options, QuantizationRunRequest request, Stopwatch clock,
        IProgress<QuantizationRunProgress>? progress, CancellationToken cancellation)
    {
        IScaleGrowModel model = loaded;
        IScaleGrowModel? quantizedModel = null;
        try
        {
            request.Device.Place(model.Module);
            long[] sampleShape = ModelFamilies.For(model).InputShape(model.Spec);
            var calibration = request.Calibration is { Samples: > 0 } c ? c : null;
            if (calibration is not null) CheckCalibration(calibration, sampleShape, model.Spec.ArchString);
            if (request.EvaluationData is { } data) CheckEvaluationData(data, sampleShape, model.Spec);

            var notes = new List<string>();
            string requested = options.Method;
            if (calibration is null && QuantizationMethods.NeedsCalibration(requested))
            {
                options.Method = QuantizationMethods.Rtn;
                notes.Add($"no calibration data: fell back from {requested} to rtn");
            }
            if (calibration is not null)
            {
                using var sample = calibration.Batches[0].narrow(0, 0, 1);
                var unseen = ModelQuantizer.LayersHooksCannotSee(model.Module, sample);
                if (unseen.Count > 0 && QuantizationMethods.NeedsCalibration(options.Method))
                    throw new InvalidSpecException(
                        $"quantization: method {options.Method} needs each layer's inputs, but " +
                        $"{model.Spec.ArchString} " +
                        $"invokes layer '{unseen[0]}'" + (unseen.Count > 1 ? $" (and {unseen.Count - 1} more)" : "") +
                        " outside Module.call(), where hooks cannot capture them; use method rtn");
                if (unseen.Count > 0)
                {
                    notes.Add($"layer inputs cannot be captured for {model.Spec.ArchString}: " +
                              "layer errors not measured");
                    calibration = null;
                }
            }

            bool fused = false;
            var family = ModelFamilies.For(model);
            if (!family.IsInferenceForm(model))
            {
                var unfused = model;
                model = family.ToInferenceForm(unfused);
                unfused.Module.Dispose();
                fused = true;
                notes.Add("fused the multi-branch CNN first (structural re-parameterization); the fused model is " +
                          "what was measured and quantized");
            }
            var carried = new Dictionary<string, string>(metadata, StringComparer.Ordinal);
            carried.Remove(CheckpointMetadata.QuantizationKey);
            var overlapMaps = family.OverlapMaps(model.Spec);
            if (overlapMaps is not null) carried[ModelIO.OverlapKey] = ModelIO.OverlapJson(overlapMaps);
            if (!request.UseOverlapMaps && overlapMaps is not null)
            {
                overlapMaps = null;
                if (QuantizationMethods.Reorders(options.Method))
                    notes.Add("overlap maps not used: columns ordered by importance alone");
            }
            long fp32Bytes = ModelIO.SavedLength(model, carried);

            double evaluateSeconds = 0;
            double? before = null;
            long testSamples = 0;
            if (request.EvaluationData is { } test && request.EvaluateBefore)
            {
                progress?.Report(new QuantizationRunProgress(QuantizationRunStage.EvaluatingBefore));
                var watch = Stopwatch.StartNew();
                var metrics = Evaluate(model, test, request.EvaluationBatchSize, cancellation);
                (before, testSamples) = (metrics.Accuracy, metrics.Samples);
                evaluateSeconds += watch.Elapsed.TotalSeconds;
            }

            progress?.Report(new QuantizationRunProgress(QuantizationRunStage.Quantizing));
            var layerProgress = progress is null ? null
                : new Relay(p => progress.Report(new QuantizationRunProgress(QuantizationRunStage.Quantizing, p)));
            using var result = new ModelQuantizer(options, _logger).Quantize(model.Module,
                calibration?.Batches ?? [], overlapMaps: overlapMaps, progress: layerProgress,
                cancellation: cancellation);

            progress?.Report(new QuantizationRunProgress(QuantizationRunStage.Writing));
            var bytes = QuantizedCheckpoint.Save(model, result,
                request.Checkpoint with { CalibrationSource = calibration?.Description }, carried);

            double? after = null;
            if (request.EvaluationData is { } testAgain)
            {
                progress?.Report(new QuantizationRunProgress(QuantizationRunStage.EvaluatingAfter));
                var watch = Stopwatch.StartNew();
                quantizedModel = ModelIO.LoadModel(bytes, source).Model;
                request.Device.Place(quantizedModel.Module);
                var metrics = Evaluate(quantizedModel, testAgain, request.EvaluationBatchSize, cancellation);
                (after, testSamples) = (metrics.Accuracy, metrics.Samples);
                evaluateSeconds += watch.Elapsed.TotalSeconds;
            }

            var report = new QuantizationRunReport
            {
                Source = source, Arch = model.Spec.ArchString, Fused = fused, RequestedMethod = requested,
                Quantization = result.Report, ScaleFormat = request.Checkpoint.Scales,
                CalibrationSource = calibration?.Description, AccuracyBefore = before, AccuracyAfter = after,
                TestSamples = testSamples, InputBytes = inputBytes, Fp32Bytes = fp32Bytes,
                QuantizedBytes = bytes.LongLength, QuantizeSeconds = result.Report.TotalSeconds,
                EvaluateSeconds = evaluateSeconds, TotalSeconds = clock.Elapsed.TotalSeconds,
                Device = ComputeDevice.Of(model.Module).Name,
                Notes = [.. notes, .. result.Report.Notes],
            };
            _logger.LogInformation("Quantized {Source} ({Arch}) with {Method} to {Bits} bits: accuracy {Before} -> " +
                "{After}, {Fp32} -> {Quantized} bytes", source, report.Arch, report.Quantization.Method,
                options.Bits, before, after, fp32Bytes, bytes.LongLength);
            progress?.Report(new QuantizationRunProgress(QuantizationRunStage.Done));
            return new QuantizationRunResult(bytes, report);
        }
        finally
        {
            model.Module.Dispose();
            quantizedModel?.Module.Dispose();
        }
    }

    private static EvalMetrics Evaluate(IScaleGrowModel model, DataSplits data, int batchSize,
        CancellationToken cancellation) =>
        Trainer.Evaluate(model.Module, data.EvalBatches(data.Test, batchSize).Epoch(0), cancellation);

    private static void CheckCalibration(CalibrationSet calibration, long[] sampleShape, string arch)
    {
        for (int i = 0; i < calibration.Batches.Count; i++)
        {
            var batch = calibration.Batches[i];
            if (!batch.is_floating_point() || batch.dim() != sampleShape.Length + 1
                || !batch.shape.Skip(1).SequenceEqual(sampleShape))
                throw new InvalidSpecException(
                    $"calibration '{calibration.Description}': batch {i} is {batch.dtype} " +
                    $"{UniformQuantizer.Shape(batch)}, but {arch} takes float [B, {string.Join(", ", sampleShape)}]");
        }
    }

    private static void CheckEvaluationData(DataSplits data, long[] sampleShape, ArchitectureSpec spec)
    {
        long[] dataShape = [data.Channels, data.Height, data.Width];
        if (!dataShape.SequenceEqual(sampleShape))
            throw new InvalidSpecException(
                $"test data '{data.Test.Name}' holds {data.Channels}x{data.Height}x{data.Width} images, but " +
                $"{spec.ArchString} takes [{string.Join(", ", sampleShape)}]");
        if (data.NumClasses != spec.NumClasses)
            throw new InvalidSpecException($"test data '{data.Test.Name}' has {data.NumClasses} classes, " +
                                           $"{spec.ArchString} predicts {spec.NumClasses}");
    }

    /// <summary>Forwards layer progress synchronously (the quantizer runs on the caller's thread).</summary>
    private sealed class Relay(Action<LayerQuantizationProgress> report) : IProgress<LayerQuantizationProgress>
    {
        public void Report(LayerQuantizationProgress value) => report(value);
    }
}

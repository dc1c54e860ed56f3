using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ScaleGrow.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScaleGrow.Quantization;

/// <summary>
/// Quantizes the Conv2d and Linear weights of a model one layer after the other (thesis 4.2; GPTQ's sequential
/// scheme): each layer's Hessian is collected from the inputs it receives when the calibration batches flow through
/// the model whose earlier layers are already quantized, so every layer compensates the errors made before it. The
/// layer's weight is then replaced, in place, by its dequantized value.
/// </summary>
/// <remarks>
/// <para>Layer inputs are captured with a forward pre-hook on the layer, and only its Hessian is kept: activations
/// stream, one batch at a time. TorchSharp runs hooks only when a module is invoked through <c>call()</c>; a layer that
/// its parent invokes with <c>forward()</c> is never seen, and quantizing it is refused with an error that says so.
/// A module invoked several times per forward pass (shared weights) gets all its inputs in one Hessian.</para>
/// <para>The calibration batches are enumerated once per layer (plus once to find the forward order), so they must
/// yield the same samples every time. At most <see cref="QuantizationOptions.CalibrationSamples"/> samples (batch
/// dimension) are used. The model is put in eval mode while it runs and its mode restored afterwards.</para>
/// </remarks>
public sealed class ModelQuantizer
{
    private readonly QuantizationOptions _options;
    private readonly ILogger _logger;

    public ModelQuantizer(QuantizationOptions options, ILogger? logger = null)
    {
        options.Validate();
        _options = options with { }; // a private copy: the caller's record stays mutable
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>
    /// Quantizes <paramref name="layers"/> (module names as in <c>named_modules()</c>; default: every Conv2d and
    /// Linear, in the order a forward pass first reaches them) of <paramref name="model"/>.
    /// <paramref name="overlapMaps"/> gives fused convs their branch-overlap counts per kernel position, keyed by
    /// module name as <c>CnnFusion.OverlapMaps</c> returns them (used by the re-ordering methods).
    /// </summary>
    public ModelQuantizationResult Quantize(nn.Module<Tensor, Tensor> model, IEnumerable<Tensor> calibration,
        IReadOnlyList<string>? layers = null, IReadOnlyDictionary<string, int[,]>? overlapMaps = null,
        IProgress<LayerQuantizationProgress>? progress = null, CancellationToken cancellation = default)
    {
        var total = Stopwatch.StartNew();
        var candidates = Candidates(model);
        if (candidates.Count == 0)
            throw new InvalidSpecException("quantization: the model has no Conv2d or Linear layers");
        if (overlapMaps is not null)
            foreach (var key in overlapMaps.Keys)
                if (!candidates.ContainsKey(key))
                    throw new InvalidSpecException(
                        $"quantization: overlap map for '{key}', which is not a Conv2d of the model");

        bool wasTraining = model.training;
        model.eval();
        var results = new List<QuantizedLayer>();
        try
        {
            bool hasData = HasSamples(calibration);
            if (!hasData && QuantizationMethods.NeedsCalibration(_options.Method))
                throw new InvalidSpecException(
                    $"quantization: method {_options.Method} needs calibration samples, none were given");
            var order = layers is null
                ? hasData ? ForwardOrder(model, candidates, calibration) : candidates.Keys.ToList()
                : Resolve(layers, candidates);

            var reports = new List<LayerQuantizationReport>();
            var notes = new List<string>();
            if (!hasData) notes.Add("no calibration data: rtn without measured layer errors");
            // Weight-shared layers (ScaleNet instances) hold one tensor: it is quantized once, by the first layer in
            // order (calibrated on that layer's inputs only), and the checkpoint stores it once.
            var owners = new Dictionary<string, string>(StringComparer.Ordinal);
            order = order.Where(name =>
            {
                if (Checkpoints.TensorAliases.StorageKey(GptqLayerQuantizer.WeightOf(candidates[name])) is not { } key)
                    return true;
                if (owners.TryGetValue(key, out var owner))
                {
                    notes.Add($"{name} shares its weight with {owner}: quantized once, as {owner}");
                    return false;
                }
                owners[key] = name;
                return true;
            }).ToList();
            long samplesUsed = 0;
            for (int i = 0; i < order.Count; i++)
            {
                cancellation.ThrowIfCancellationRequested();
                string name = order[i];
                var module = candidates[name];
                var clock = Stopwatch.StartNew();
                progress?.Report(new LayerQuantizationProgress(i, order.Count, name, LayerQuantizationStage.Calibrating,
                    null, 0));
                using var quantizer = new GptqLayerQuantizer(module, name);
                if (hasData)
                {
                    samplesUsed = Calibrate(model, module, quantizer, calibration, cancellation);
                    if (quantizer.Samples == 0)
                        throw new ScaleGrowException($"layer '{name}' was never reached through Module.call() in a " +
                            "forward pass, so its inputs cannot be captured (its parent must invoke it with call())");
                }
                var overlap = overlapMaps is not null && overlapMaps.TryGetValue(name, out var map) ? map : null;
                QuantizedLayer result;
                using (var scope = torch.NewDisposeScope())
                {
                    result = quantizer.Quantize(_options, overlap);
                    using (torch.no_grad()) GptqLayerQuantizer.WeightOf(module).copy_(result.Dequantized);
                    foreach (var t in Tensors(result)) t.MoveToOuterDisposeScope();
                }
                results.Add(result);
                double seconds = clock.Elapsed.TotalSeconds;
                reports.Add(new LayerQuantizationReport
                {
                    Name = name, Kind = result.Kind, Shape = result.WeightShape, Method = result.Method,
                    Bits = result.Bits, GroupSize = result.GroupSize, RelativeError = result.RelativeError,
                    Seconds = seconds, Samples = result.Samples, PercentDampUsed = result.PercentDampUsed,
                    DeadColumns = result.DeadColumns,
                });
                if (result.PercentDampUsed > _options.PercentDamp)
                    notes.Add($"{name}: dampening raised to {result.PercentDampUsed:G3} to factorise the Hessian");
                if (result.DeadColumns > 0)
                    notes.Add($"{name}: {result.DeadColumns} input columns were always zero, their weights set to 0");
                _logger.LogInformation("Quantized {Layer} ({Index}/{Count}) to {Bits} bits with {Method}: " +
                    "relative error {Error}, {Seconds:F2} s", name, i + 1, order.Count, result.Bits, result.Method,
                    result.RelativeError, seconds);
                progress?.Report(new LayerQuantizationProgress(i, order.Count, name, LayerQuantizationStage.Quantized,
                    result.RelativeError, seconds));
            }
            var report = new QuantizationReport
            {
                Method = _options.Method, Bits = _options.Bits, GroupSize = _options.GroupSize,
                Symmetric = _options.Symmetric, CalibrationSamples = samplesUsed, Layers = reports,
                TotalSeconds = total.Elapsed.TotalSeconds, Notes = notes,
            };
            return new ModelQuantizationResult(report, results);
        }
        catch
        {
            foreach (var r in results) r.Dispose();
            throw;
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    private static IEnumerable<Tensor> Tensors(QuantizedLayer r) =>
        [r.Codes, r.Scales, r.Zeros, r.Permutation, r.GroupIndex, r.Dequantized];

    private static bool HasSamples(IEnumerable<Tensor> calibration)
    {
        foreach (var batch in calibration)
        {
            if (batch.dim() == 0)
                throw new InvalidSpecException("quantization: a calibration batch has no batch dimension");
            if (batch.shape[0] > 0) return true;
        }
        return false;
    }

    private static List<string> Resolve(IReadOnlyList<string> layers,
        Dictionary<string, nn.Module<Tensor, Tensor>> candidates)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in layers)
        {
            if (!candidates.ContainsKey(name))
                throw new InvalidSpecException(
                    $"quantization: layer '{name}' is not a Conv2d or Linear module of the model");
            if (!seen.Add(name)) throw new InvalidSpecException($"quantization: layer '{name}' is listed twice");
        }
        return layers.ToList();
    }

    /// <summary>Every Conv2d and Linear module by name (a module registered twice counts once).</summary>
    private static Dictionary<string, nn.Module<Tensor, Tensor>> Candidates(nn.Module<Tensor, Tensor> model)
    {
        var candidates = new Dictionary<string, nn.Module<Tensor, Tensor>>(StringComparer.Ordinal);
        foreach (var (name, module) in model.named_modules())
            if (module is Conv2d or Linear && !candidates.Values.Contains(module))
                candidates[name] = (nn.Module<Tensor, Tensor>)module;
        return candidates;
    }

    /// <summary>
    /// The Conv2d and Linear layers a forward pass on <paramref name="sample"/> does not reach through
    /// <c>Module.call()</c>, whose inputs hooks therefore cannot capture (e.g. layers invoked with <c>forward()</c>).
    /// Lets a caller refuse a calibrated method, or drop to rtn, before any work.
    /// </summary>
    internal static IReadOnlyList<string> LayersHooksCannotSee(nn.Module<Tensor, Tensor> model, Tensor sample)
    {
        var candidates = Candidates(model);
        bool wasTraining = model.training;
        model.eval();
        try
        {
            var (_, missed) = TraceForward(model, candidates, sample);
            return missed;
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>The candidates in the order one forward pass first invokes them.</summary>
    private List<string> ForwardOrder(nn.Module<Tensor, Tensor> model,
        Dictionary<string, nn.Module<Tensor, Tensor>> candidates, IEnumerable<Tensor> calibration)
    {
        var first = calibration.First(b => b.shape[0] > 0);
        using var sample = first.narrow(0, 0, Math.Min(first.shape[0], _options.CalibrationSamples));
        var (order, missed) = TraceForward(model, candidates, sample);
        if (missed.Count > 0)
            throw new ScaleGrowException($"layers never reached through Module.call() in a forward pass: " +
                $"{string.Join(", ", missed)} (TorchSharp runs hooks only in call(); name the layers to quantize, or " +
                "have their parents invoke them with call())");
        return order;
    }

    private static (List<string> Order, List<string> Missed) TraceForward(nn.Module<Tensor, Tensor> model,
        Dictionary<string, nn.Module<Tensor, Tensor>> candidates, Tensor sample)
    {
        var order = new List<string>();
        var removers = new List<Action>();
        foreach (var (name, module) in candidates)
        {
            var hook = module.register_forward_pre_hook((Action<nn.Module>)(_ =>
            {
                if (!order.Contains(name)) order.Add(name);
            }));
            removers.Add(hook.remove);
        }
        try
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            model.call(ComputeDevice.Of(model).Input(sample));
        }
        finally
        {
            foreach (var remove in removers) remove();
        }
        return (order, candidates.Keys.Where(n => !order.Contains(n)).ToList());
    }

    /// <summary>Runs up to CalibrationSamples samples through the model, feeding the target layer's inputs to the
    /// quantizer. Returns the number of samples used.</summary>
    private long Calibrate(nn.Module<Tensor, Tensor> model, nn.Module<Tensor, Tensor> target,
        GptqLayerQuantizer quantizer, IEnumerable<Tensor> calibration, CancellationToken cancellation)
    {
        var hook = target.register_forward_pre_hook((_, input) =>
        {
            quantizer.AddBatch(input);
            return input;
        });
        long used = 0;
        var device = ComputeDevice.Of(model); // calibration batches go where the model is
        try
        {
            foreach (var batch in calibration)
            {
                cancellation.ThrowIfCancellationRequested();
                long take = Math.Min(batch.shape[0], _options.CalibrationSamples - used);
                if (take <= 0) break;
                using var scope = torch.NewDisposeScope();
                using var noGrad = torch.no_grad();
                model.call(device.Input(take < batch.shape[0] ? batch.narrow(0, 0, take) : batch));
                used += take;
            }
        }
        finally
        {
            hook.remove();
        }
        return used;
    }
}

/// <summary>The report and the per-layer quantized tensors (codes, scales, zeros, permutation) of a model; the model
/// itself already holds the dequantized weights. Dispose to free the tensors.</summary>
public sealed class ModelQuantizationResult(QuantizationReport report, IReadOnlyList<QuantizedLayer> layers)
    : IDisposable
{
    public QuantizationReport Report { get; } = report;
    public IReadOnlyList<QuantizedLayer> Layers { get; } = layers;

    public void Dispose()
    {
        foreach (var layer in Layers) layer.Dispose();
    }
}

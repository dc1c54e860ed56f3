using ScaleGrow.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Quantization;

/// <summary>
/// The inputs whose layer activations form the GPTQ Hessians (thesis 4.2.1: "X can be a small part of the training
/// data used as a calibration set"): model-ready float batches, held in memory so that <see cref="ModelQuantizer"/>
/// can replay the same samples once per layer. Samples come from a TRAINING split, never from test data, so the
/// accuracy measured after quantization stays an unbiased estimate. Owns its tensors; dispose it.
/// </summary>
public sealed class CalibrationSet : IDisposable
{
    /// <summary>Batch size of the replayed calibration batches (memory per forward pass, not a tuning knob).</summary>
    public const int DefaultBatchSize = 128;

    private readonly List<Tensor> _batches;

    private CalibrationSet(string description, List<Tensor> batches)
    {
        Description = description;
        _batches = batches;
        Samples = batches.Sum(b => b.shape[0]);
    }

    /// <summary>Where the samples came from, for reports and checkpoint metadata.</summary>
    public string Description { get; }

    /// <summary>Float batches [B, ...sample shape], normalised as the model's training inputs were.</summary>
    public IReadOnlyList<Tensor> Batches => _batches;

    public long Samples { get; }

    /// <summary>No calibration data: calibrated methods fall back to rtn.</summary>
    public static CalibrationSet None() => new("none", []);

    /// <summary>
    /// <paramref name="samples"/> images drawn without replacement from <paramref name="data"/>'s training split by a
    /// permutation seeded with <paramref name="seed"/> (the quantization seed), normalised with the split's statistics
    /// and never augmented — the inputs the model sees at inference.
    /// </summary>
    public static CalibrationSet FromTrainingSplit(DataSplits data, int samples, long seed,
        int batchSize = DefaultBatchSize)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (samples < 1) throw new InvalidSpecException($"calibration: samples must be positive, got {samples}");
        var order = new SampleRandom(Seeds.Derive(seed, "calibration", 0)).Permutation(data.Train.Count);
        var chosen = order[..Math.Min(samples, order.Length)];
        Array.Sort(chosen); // file order: the same samples, read cache-friendly
        using var subset = data.Train.Subset(chosen, $"{data.Train.Name}/calibration");
        var loader = new BatchLoader(subset, data.Mean, data.Std, BatchOptions.Evaluation(batchSize));
        var batches = new List<Tensor>();
        foreach (var (x, y) in loader.Epoch(0))
        {
            y.Dispose();
            batches.Add(x.DetachFromDisposeScope());
        }
        return new CalibrationSet($"{data.Train.Name}: {chosen.Length} samples drawn with seed {seed}", batches);
    }

    /// <summary>
    /// A named calibration source (quantize-on-upload: the upload's metadata names one, or the service's default):
    /// a dataset name as <see cref="DatasetSpec.Name"/> accepts, read from <paramref name="directory"/> or the
    /// dataset's default folder, sampled from its training split as <see cref="FromTrainingSplit"/> does.
    /// </summary>
    public static CalibrationSet FromNamedSource(string name, string? directory, int samples, long seed)
    {
        var spec = new DatasetSpec(Name: name, Directory: directory, TestLimit: 1);
        spec.Validate();
        using var data = DatasetLoader.Load(spec);
        return FromTrainingSplit(data, samples, seed);
    }

    /// <summary>Copies of caller-provided model-ready batches (each [B, ...sample shape], float).</summary>
    public static CalibrationSet FromBatches(string description, IEnumerable<Tensor> batches)
    {
        ArgumentNullException.ThrowIfNull(batches);
        var copies = new List<Tensor>();
        try
        {
            foreach (var batch in batches)
            {
                if (batch.dim() == 0)
                    throw new InvalidSpecException($"calibration '{description}': a batch has no batch dimension");
                copies.Add(batch.detach().clone().DetachFromDisposeScope());
            }
        }
        catch
        {
            foreach (var t in copies) t.Dispose();
            throw;
        }
        return new CalibrationSet(description, copies);
    }

    public void Dispose()
    {
        foreach (var t in _batches) t.Dispose();
        _batches.Clear();
    }
}

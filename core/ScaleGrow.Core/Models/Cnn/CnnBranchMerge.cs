using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScaleGrow.Models.Cnn;

/// <summary>
/// Merges every multi-branch unit into its main Conv-BN branch while keeping the network trainable (option
/// <c>growth.fineTuneBranches: merge</c>): after growth ends, fine-tuning then trains the plain architecture — the
/// one a fixed network of the same shape would train — instead of every branch, which costs about twice the time
/// per epoch (RESULTS §2). Unlike <see cref="CnnFusion"/>, each unit keeps a batch norm, so training behaves like
/// training a plain network from the start.
/// <para>
/// For a unit with branches, let (W, b) be its eval-mode equivalent kernel (every branch's BN folded, as fusion does).
/// The main convolution becomes W' = s·W, with s per output channel chosen so each channel's kernel keeps the norm the
/// main kernel had: a conv followed by BN is scale-invariant, so its effective learning rate depends on that norm, and
/// the merged kernel's own norm can be far from it. The main BN then undoes its own normalisation: with m and v the
/// per-channel mean and variance of W'·x on a calibration batch (as training computes the unit's input),
/// running mean = m, running variance = v, γ = √(v + ε)/s, β = m/s + b. In eval mode that is exactly W·x + b, whatever
/// m and v are; in train mode it is W·x + b up to how far a batch's statistics are from the calibration batch's.
/// </para>
/// </summary>
public static class CnnBranchMerge
{
    /// <summary>True when some unit has more than its main branch.</summary>
    public static bool HasBranches(CnnSpec spec) =>
        !spec.Fused && spec.AllLayers().Any(l => l.Layer.Units.Any(u => u.Branches.Count > 1));

    /// <summary>The same architecture with each unit reduced to its main branch (ids, hence names, kept).</summary>
    public static CnnSpec MergedSpec(CnnSpec spec)
    {
        static LayerSpec Main(LayerSpec layer) => layer with
        {
            Units = layer.Units.Select(u => u with { Branches = [u.Branches[0]] }).ToList(),
        };
        return spec with
        {
            Stem = Main(spec.Stem),
            Blocks = spec.Blocks.Select(b => b with { Layers = b.Layers.Select(Main).ToList() }).ToList(),
            Downsamples = spec.Downsamples.Select(Main).ToList(),
        };
    }

    /// <summary>
    /// A new model of <see cref="MergedSpec"/> computing what <paramref name="model"/> computes in eval mode.
    /// <paramref name="calibration"/> (B, C, H, W) is a batch of training inputs; <paramref name="model"/> is left
    /// as it was (its running statistics included). Also returns the names of the parameters whose values were
    /// rewritten (the merged units' main convolution and BN): their optimizer moments no longer apply.
    /// </summary>
    public static (CnnModel Model, IReadOnlyList<string> Rewritten) Merge(CnnModel model, Tensor calibration)
    {
        if (model.Spec.Fused)
            throw new InvalidSpecException("branch merge: the model is already fused (plain convolutions without norms)");
        var units = MultiBranchUnits(model);
        var merged = ScaleGrow.ComputeDevice.Of(model).Place(new CnnModel(MergedSpec(model.Spec)));
        var rewritten = new List<string>();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var kernels = new Dictionary<string, (Tensor Weight, Tensor Bias, Tensor Scale)>(StringComparer.Ordinal);
        foreach (var (path, unit) in units)
        {
            var (w, b) = unit.EquivalentKernel();                                     // (O, I/g, kh, kw), (O)
            var mainNorm = unit.Branches[0].Conv!.weight!.detach().flatten(1).norm(1); // (O)
            var ownNorm = w.flatten(1).norm(1);
            // A channel whose merged kernel is zero stays zero; BN then outputs its β, which is b as it should be.
            var scale = torch.where(ownNorm > 1e-12, mainNorm / ownNorm.clamp_min(1e-12), torch.ones_like(ownNorm));
            kernels[path] = (w * scale.reshape(-1, 1, 1, 1), b, scale);
        }
        var statistics = OutputStatistics(model, units, kernels, calibration);

        var source = model.state_dict();
        foreach (var (name, target) in merged.state_dict())
            target.copy_(source[name]); // every merged name exists in the branched model: names are creation ids
        var mergedUnits = merged.AllLayers()
            .SelectMany(l => l.Layer.Units.Select(u => (Path: $"{CnnFusion.LayerPath(l.Role, l.Index, l.Layer.Spec)}.{u.GetName()}", Unit: (ConvUnit)u)))
            .ToDictionary(u => u.Path, u => u.Unit, StringComparer.Ordinal);
        foreach (var (path, (weight, bias, scale)) in kernels)
        {
            var main = mergedUnits[path].Branches[0];
            var (mean, variance) = statistics[path];
            main.Conv!.weight!.copy_(weight);
            main.Norm.running_mean!.copy_(mean);
            main.Norm.running_var!.copy_(variance);
            main.Norm.weight!.copy_((variance + ConvBranch.BatchNormEps).sqrt() / scale);
            main.Norm.bias!.copy_(mean / scale + bias);
            string prefix = $"{path}.b{mergedUnits[path].Spec.Branches[0].Id}";
            rewritten.AddRange([$"{prefix}.conv.weight", $"{prefix}.bn.weight", $"{prefix}.bn.bias"]);
        }
        merged.train(model.training);
        rewritten.Sort(StringComparer.Ordinal);
        return (merged, rewritten);
    }

    private static List<(string Path, ConvUnit Unit)> MultiBranchUnits(CnnModel model) =>
        model.AllLayers()
            .SelectMany(l => l.Layer.Units.Select(u =>
                (Path: $"{CnnFusion.LayerPath(l.Role, l.Index, l.Layer.Spec)}.{u.GetName()}", Unit: (ConvUnit)u)))
            .Where(u => u.Unit.Branches.Count > 1)
            .ToList();

    /// <summary>
    /// Per merged unit, the per-channel mean and (biased) variance of W'·x, where x is the unit's input in a
    /// train-mode forward pass of the branched model over the calibration batch. The pass does not move any running
    /// statistic of <paramref name="model"/>.
    /// </summary>
    private static Dictionary<string, (Tensor Mean, Tensor Variance)> OutputStatistics(CnnModel model,
        List<(string Path, ConvUnit Unit)> units, Dictionary<string, (Tensor Weight, Tensor Bias, Tensor Scale)> kernels,
        Tensor calibration)
    {
        var statistics = new Dictionary<string, (Tensor Mean, Tensor Variance)>(StringComparer.Ordinal);
        var buffers = model.named_buffers().Select(b => (b.buffer, Saved: b.buffer.clone())).ToList();
        var removers = new List<Action>();
        bool wasTraining = model.training;
        model.train();
        try
        {
            foreach (var (path, unit) in units)
            {
                var g = unit.Geometry;
                var weight = kernels[path].Weight;
                var hook = unit.register_forward_pre_hook((_, x) =>
                {
                    var z = nn.functional.conv2d(x, weight, strides: [g.Stride, g.Stride],
                        padding: [g.KernelH / 2, g.KernelW / 2], groups: g.Groups);   // (B, O, H', W')
                    statistics[path] = (z.mean([0, 2, 3]).MoveToOuterDisposeScope(),
                        z.var([0, 2, 3], unbiased: false).MoveToOuterDisposeScope());
                    return x;
                });
                removers.Add(hook.remove);
            }
            // The pass's activations (all 512 samples, every layer) go when this scope ends, not with the merge's.
            using var pass = torch.NewDisposeScope();
            model.call(calibration);
        }
        finally
        {
            foreach (var remove in removers) remove();
            foreach (var (buffer, saved) in buffers) buffer.copy_(saved);
            model.train(wasTraining);
        }
        return statistics;
    }
}

using ScaleGrow.Models;
using ScaleGrow.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Growth;

/// <summary>
/// Applies a grown spec to a model (algorithm 3-1, lines 13–16): builds the new model from the spec, initialises what
/// is new with the chosen strategy (tables 3-9, 3-15) — whole new tensors and the new slices of widened ones — and
/// puts every old value back in its place (<see cref="TensorPlacement"/>).
/// </summary>
public static class ModelRebuilder
{
    /// <param name="calibration">A batch of training inputs (B, C, H, W): function-preserving VGG depth growth
    /// measures the new layer's input statistics on it (<see cref="FunctionPreservingDepth"/>).</param>
    public static (IScaleGrowModel Model, IReadOnlyList<string> NewParameters) Rebuild(IScaleGrowModel old,
        ArchitectureSpec grownSpec, InitOptions init, long seed, Tensor? calibration = null)
    {
        torch.manual_seed(seed);
        var grown = ModelFactory.Create(grownSpec);
        var oldState = old.Module.state_dict();
        var newParameters = new List<string>();
        var carried = new List<string>();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var parameterNames = grown.Module.named_parameters().Select(p => p.name).ToHashSet(StringComparer.Ordinal);
        var peers = new PeerStatistics(oldState);
        // New values are drawn on the CPU, where the model is built, in the same order on every device: a growth gives
        // the same network whether the run is on a GPU or not. Old values are then put back on the model's device.
        foreach (var (name, target) in grown.Module.state_dict())
        {
            bool isParameter = parameterNames.Contains(name);
            if (!oldState.TryGetValue(name, out var source))
            {
                if (!isParameter) continue; // new buffers (BN running stats) keep their defaults
                newParameters.Add(name);
                Initialise(name, target, init, peers);
                continue;
            }
            if (!target.shape.SequenceEqual(source.shape) && isParameter) Initialise(name, target, init, peers);
            carried.Add(name);
        }
        ComputeDevice.Of(old.Module).Place(grown.Module);
        var placed = grown.Module.state_dict();
        foreach (var name in carried)
            TensorPlacement.CopyInto(placed[name], oldState[name], name, old.Spec, grownSpec);
        if (init.PreserveFunction && ModelFamilies.For(grownSpec) is IGrowableFamily growable)
            growable.PreserveFunction(grown, old.Spec, oldState, calibration);
        newParameters.Sort(StringComparer.Ordinal);
        return (grown, newParameters);
    }

    private static void Initialise(string name, Tensor p, InitOptions init, PeerStatistics peers)
    {
        bool isWeight = p.dim() > 1;
        if (init.PreserveFunction && ((!isWeight && IsNormScale(name)) || IsResidualOutput(name)))
        {
            // A new CNN branch with γ = 0 adds nothing (new CNN layers are then set by FunctionPreservingDepth); a
            // new Transformer layer whose attention-O and fc2 are zero is the identity on its residual stream.
            p.zero_();
            return;
        }
        if (!isWeight) return; // norms and biases keep the model's own initialiser
        switch (init.Strategy)
        {
            case InitStrategy.Zeros:
                p.zero_();
                break;
            case InitStrategy.Uniform:
                p.uniform_(-init.Scale, init.Scale);
                break;
            case InitStrategy.Gaussian:
                p.normal_(0, init.Scale);
                break;
            case InitStrategy.GaussianFitLocal:
            case InitStrategy.GaussianFitGlobal:
                if (peers.Fit(name, p, local: init.Strategy == InitStrategy.GaussianFitLocal) is { } fit)
                    p.normal_(fit.Mean, fit.Std);
                break; // nothing to fit: keep the inherited initialiser
        }
    }

    private static bool IsResidualOutput(string name) =>
        name.Contains(".attn.o.", StringComparison.Ordinal) || name.Contains(".mlp.fc2.", StringComparison.Ordinal);

    private static bool IsNormScale(string name) =>
        name.EndsWith(".weight", StringComparison.Ordinal) &&
        (name.Contains(".bn.", StringComparison.Ordinal) || name.Contains("norm", StringComparison.Ordinal));

    /// <summary>Mean and standard deviation of existing tensors of the same kind (last two name segments, rank).</summary>
    private sealed class PeerStatistics(IReadOnlyDictionary<string, Tensor> existing)
    {
        public (double Mean, double Std)? Fit(string name, Tensor p, bool local)
        {
            string kind = Kind(name), group = Group(name);
            var sameKind = existing.Where(e => Kind(e.Key) == kind && e.Value.dim() == p.dim()).ToList();
            var chosen = local && sameKind.Any(e => Group(e.Key) == group)
                ? sameKind.Where(e => Group(e.Key) == group).ToList()
                : sameKind;
            if (chosen.Count == 0) return null;
            using var scope = torch.NewDisposeScope();
            var values = torch.cat(chosen.Select(t => t.Value.flatten()).ToArray());
            return (Trainer.ReadFloat(values.mean()), Math.Max(1e-8, Trainer.ReadFloat(values.std())));
        }

        private static string Kind(string name)
        {
            var parts = name.Split('.');
            return parts.Length >= 2 ? parts[^2] + "." + parts[^1] : name;
        }

        /// <summary>The module group a tensor belongs to: a CNN block/down/stem, or a Transformer layer.</summary>
        private static string Group(string name)
        {
            var parts = name.Split('.');
            return parts[0] == "layers" && parts.Length > 1 ? parts[0] + "." + parts[1] : parts[0];
        }
    }
}

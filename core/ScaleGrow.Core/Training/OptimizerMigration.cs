using System.Text.Json.Serialization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScaleGrow.Training;

public enum OptimizerMigrationStrategy
{
    /// <summary>Old moments carried over by parameter name; new parameters (and new slices) start at zero.</summary>
    [JsonStringEnumMemberName("inherit")] Inherit,

    /// <summary>All moments dropped (ablation, thesis table 3-10 / 3-16).</summary>
    [JsonStringEnumMemberName("fresh")] Fresh,
}

/// <summary>
/// Builds the optimizer state of a grown model from the old one (thesis 3.3.4 (2) and table 3-16: inheriting the
/// old state and starting new state at zero was best). Moments join on parameter names, which growth operators
/// never change; a widened parameter gets its old moment copied into the leading slice (new rows/columns zero).
/// The schedule position (global step) is always kept: the learning-rate schedule spans the whole run.
/// </summary>
public static class OptimizerMigration
{
    /// <param name="reset">Parameters whose values were rewritten rather than grown (a branch merge): their old
    /// moments point the wrong way, so they start at zero like new parameters.</param>
    /// <param name="oldSpec">With <paramref name="newSpec"/>: the architectures before and after growth, so widened
    /// moments land where <see cref="ScaleGrow.Models.TensorPlacement"/> put the weights (e.g. per head).</param>
    public static NamedOptimizerState Migrate(NamedOptimizerState old, IEnumerable<(string Name, Parameter Param)> parameters,
        OptimizerMigrationStrategy strategy, ScaleGrow.Models.ArchitectureSpec? oldSpec = null,
        ScaleGrow.Models.ArchitectureSpec? newSpec = null, IReadOnlyCollection<string>? reset = null)
    {
        var moments = new SortedDictionary<string, Tensor>(StringComparer.Ordinal);
        var steps = new SortedDictionary<string, long>(StringComparer.Ordinal);
        if (strategy == OptimizerMigrationStrategy.Inherit)
        {
            using var noGrad = torch.no_grad();
            foreach (var (name, p) in parameters)
            {
                if (reset?.Contains(name) == true) continue;
                string oldName = name;
                foreach (var slot in NamedOptimizer.SlotsOf(old.Scalars.Kind))
                {
                    if (!old.Moments.TryGetValue($"{oldName}::{slot}", out var previous)) continue;
                    moments[$"{name}::{slot}"] = Fit(previous, p, $"{oldName}::{slot}", oldSpec, newSpec);
                }
                if (old.Scalars.ParameterSteps.TryGetValue(oldName, out long s)) steps[name] = s;
            }
        }
        var scalars = old.Scalars with { ParameterSteps = steps };
        return new NamedOptimizerState(scalars, moments);
    }

    private static Tensor Fit(Tensor previous, Tensor parameter, string key, ScaleGrow.Models.ArchitectureSpec? oldSpec,
        ScaleGrow.Models.ArchitectureSpec? newSpec)
    {
        if (previous.shape.SequenceEqual(parameter.shape)) // on the parameter's device, in its type
            return previous.detach().to(parameter.dtype).to(parameter.device).clone().DetachFromDisposeScope();
        if (previous.dim() != parameter.dim() || previous.shape.Zip(parameter.shape).Any(d => d.First > d.Second))
            throw new InvalidSpecException(
                $"optimizer migration: moment '{key}' of shape [{string.Join(",", previous.shape)}] does not fit " +
                $"the grown parameter [{string.Join(",", parameter.shape)}]");
        var grown = torch.zeros_like(parameter).DetachFromDisposeScope();
        if (oldSpec is not null && newSpec is not null)
            ScaleGrow.Models.TensorPlacement.CopyInto(grown, previous.detach().to(parameter.dtype).to(parameter.device),
                key[..key.LastIndexOf("::", StringComparison.Ordinal)], oldSpec, newSpec);
        else
            grown[previous.shape.Select(d => TensorIndex.Slice(0, d)).ToArray()] =
                previous.detach().to(parameter.dtype).to(parameter.device);
        return grown;
    }
}

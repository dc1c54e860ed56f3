using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Models;

/// <summary>
/// Where an old tensor's values go inside its grown version. Growth only appends: new channels, heads, rows and
/// columns come after the old ones, so the old tensor is the leading slice — except when every attention head gets
/// wider (table 3-12's ablation), where each head's rows move to the head's new block (the family's
/// <see cref="IModelFamily.TryPlaceGrown"/>). Used for weights when a model is rebuilt and for optimizer moments when
/// its state is migrated, so both stay aligned.
/// </summary>
public static class TensorPlacement
{
    /// <summary>Copies <paramref name="source"/> into its place in <paramref name="target"/> (same rank, no dimension shrinks).</summary>
    public static void CopyInto(Tensor target, Tensor source, string name, ArchitectureSpec oldSpec,
        ArchitectureSpec newSpec)
    {
        if (target.shape.SequenceEqual(source.shape))
        {
            target.copy_(source);
            return;
        }
        if (target.dim() != source.dim() || source.shape.Zip(target.shape).Any(d => d.First > d.Second))
            throw new InvalidSpecException(
                $"growth: tensor '{name}' cannot grow from [{string.Join(",", source.shape)}] to " +
                $"[{string.Join(",", target.shape)}]; growth never removes weights");
        using var scope = torch.NewDisposeScope();
        if (ModelFamilies.For(oldSpec).TryPlaceGrown(target, source, name, oldSpec, newSpec)) return;
        target[source.shape.Select(d => TensorIndex.Slice(0, d)).ToArray()] = source;
    }
}

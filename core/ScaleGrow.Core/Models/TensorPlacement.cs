using ScaleGrow.Models.Transformer;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Models;

/// <summary>
/// Where an old tensor's values go inside its grown version. Growth only appends: new channels, heads, rows and
/// columns come after the old ones, so the old tensor is the leading slice — except when every attention head gets
/// wider (table 3-12's ablation), where each head's rows move to the head's new block. Used for weights when a model
/// is rebuilt and for optimizer moments when its state is migrated, so both stay aligned.
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
        if (oldSpec is TransformerSpec a && newSpec is TransformerSpec b && a.HeadDim != b.HeadDim
            && HeadAxis(name) is { } axis)
        {
            // Head h's d old rows go to rows h·d' … h·d' + d of the grown tensor.
            var index = torch.arange(a.Heads * a.HeadDim, dtype: ScalarType.Int64, device: source.device);
            var mapped = index.div(a.HeadDim, RoundingMode.floor) * b.HeadDim + index % a.HeadDim;
            var expanded = torch.zeros(SwapAxis(source.shape, axis, target.shape[axis]), dtype: source.dtype,
                device: source.device);
            expanded.index_copy_(axis, mapped, source);
            source = expanded;
        }
        target[source.shape.Select(d => TensorIndex.Slice(0, d)).ToArray()] = source;
    }

    /// <summary>The head-structured axis of an attention tensor: Q/K/V rows (and biases), O columns.</summary>
    private static int? HeadAxis(string name)
    {
        if (name.EndsWith(".attn.o.weight", StringComparison.Ordinal)) return 1;
        foreach (var p in new[] { ".attn.q.", ".attn.k.", ".attn.v." })
            if (name.Contains(p, StringComparison.Ordinal)) return 0;
        return null;
    }

    private static long[] SwapAxis(long[] shape, int axis, long size)
    {
        var s = (long[])shape.Clone();
        s[axis] = size;
        return s;
    }
}

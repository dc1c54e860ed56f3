using static TorchSharp.torch;

namespace ScaleGrow.Data;

/// <summary>How datasets take ownership of the tensors they hold.</summary>
internal static class TensorOwnership
{
    /// <summary>Keeps a contiguous tensor (detached from any dispose scope); replaces any other by a contiguous copy,
    /// freeing the input.</summary>
    public static Tensor Own(Tensor t)
    {
        if (t.is_contiguous()) return t.DetachFromDisposeScope();
        var copy = t.contiguous().DetachFromDisposeScope();
        t.Dispose();
        return copy;
    }
}

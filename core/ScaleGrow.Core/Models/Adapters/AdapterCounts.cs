namespace ScaleGrow.Models.Adapters;

/// <summary>Parameters and multiply-accumulates of one layer instance's adapters, counted from its spec.</summary>
public static class AdapterCounts
{
    /// <summary>Trainable parameters the instance's adapter adds (norms not included).</summary>
    public static long Parameters(AdapterSpec? adapter, int width, IReadOnlyList<ProjectionShape> projections,
        bool bias)
    {
        if (adapter is null) return 0;
        long r = adapter.Rank;
        switch (adapter.Kind)
        {
            case AdapterKind.ParallelBottleneck:
                long one = 2 * r * width + (bias ? r + width : 0);
                return (adapter.OnAttention ? one : 0) + (adapter.OnMlp ? one : 0);
            case AdapterKind.Lora:
                return projections.Where(p => p.InAttention ? adapter.OnAttention : adapter.OnMlp)
                    .Sum(p => r * (p.In + p.Out));
            default:
                return 0;
        }
    }

    /// <summary>Multiply-accumulates per token of the instance's adapters.</summary>
    public static long MacsPerToken(AdapterSpec? adapter, int width, IReadOnlyList<ProjectionShape> projections) =>
        Parameters(adapter, width, projections, bias: false);
}

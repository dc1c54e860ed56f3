namespace ScaleGrow.Export;

/// <summary>The pieces Transformer graphs share: linear maps, head split/merge and masked softmax attention.</summary>
internal static class OnnxAttention
{
    /// <summary>x (…, in) · Wᵀ (+ b): the weight keeps its checkpoint layout [out, in] and name; ORT folds the
    /// transpose of a constant weight when it loads the model.</summary>
    public static string Linear(OnnxGraphBuilder g, string path, string x, bool bias)
    {
        string weight = g.Node("Transpose", path, [g.Parameter(path + ".weight")], ("perm", new long[] { 1, 0 }));
        string y = g.Node("MatMul", path, [x, weight]);
        return bias ? g.Node("Add", path, [y, g.Parameter(path + ".bias")]) : y;
    }

    /// <summary>(B, T, H·d) → (B, H, T, d).</summary>
    public static string SplitHeads(OnnxGraphBuilder g, string path, string x, int heads, int headDim)
    {
        string split = g.Node("Reshape", path, [x, g.Int64s(0, 0, heads, headDim)]);
        return g.Node("Transpose", path, [split], ("perm", new long[] { 0, 2, 1, 3 }));
    }

    /// <summary>(B, H, T, d) → (B, T, H·d).</summary>
    public static string MergeHeads(OnnxGraphBuilder g, string path, string x, int heads, int headDim)
    {
        string merged = g.Node("Transpose", path, [x], ("perm", new long[] { 0, 2, 1, 3 }));
        return g.Node("Reshape", path, [merged, g.Int64s(0, 0, (long)heads * headDim)]);
    }

    /// <summary>
    /// softmax(q kᵀ / √d, masked) v, as <c>scaled_dot_product_attention</c> computes it: where
    /// <paramref name="keep"/> (bool, broadcast to (B, H, T, T)) is false the score is −∞.
    /// </summary>
    public static string Attend(OnnxGraphBuilder g, string path, string q, string k, string v, int headDim,
        string? keep)
    {
        string kT = g.Node("Transpose", path, [k], ("perm", new long[] { 0, 1, 3, 2 }));  // (B, H, d, T)
        string scores = g.Node("MatMul", path, [q, kT]);                                   // (B, H, T, T)
        scores = g.Node("Mul", path, [scores, g.Scalar((float)(1.0 / Math.Sqrt(headDim)))]);
        if (keep is not null) scores = g.Node("Where", path, [keep, scores, g.Scalar(float.NegativeInfinity)]);
        string weights = g.Node("Softmax", path, [scores], ("axis", -1L));
        return g.Node("MatMul", path, [weights, v]);                                        // (B, H, T, d)
    }

    /// <summary>Exact GELU, 0.5·x·(1 + erf(x/√2)) (TorchSharp's default, not the tanh approximation).</summary>
    public static string Gelu(OnnxGraphBuilder g, string path, string x)
    {
        string scaled = g.Node("Mul", path, [x, g.Scalar((float)(1 / Math.Sqrt(2)))]);
        string erf = g.Node("Add", path, [g.Node("Erf", path, [scaled]), g.Scalar(1f)]);
        return g.Node("Mul", path, [g.Node("Mul", path, [x, erf]), g.Scalar(0.5f)]);
    }

    /// <summary>The length of dimension <paramref name="axis"/> of <paramref name="x"/> as a 1-element int64.</summary>
    public static string Dim(OnnxGraphBuilder g, string path, string x, long axis) =>
        g.Node("Shape", path, [x], ("start", axis), ("end", axis + 1));
}

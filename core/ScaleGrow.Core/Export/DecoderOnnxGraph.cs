using ScaleGrow.Models.Decoder;
using TorchSharp;
using static ScaleGrow.Export.OnnxAttention;

namespace ScaleGrow.Export;

/// <summary>
/// The forward pass of a Llama-style <see cref="DecoderModel"/> as ONNX nodes: token ids (B, T) → logits (B, T, V)
/// for the whole sequence (no KV cache): embedding <c>Gather</c>, per layer RMSNorm, grouped-query causal attention
/// with rotary positions (Hugging Face's rotate_half convention; the cos/sin tables for every position up to
/// maxPositions are constants, sliced to T), RMSNorm, SwiGLU MLP; final RMSNorm and the head (the embedding when
/// tied).
/// </summary>
internal static class DecoderOnnxGraph
{
    public static string Emit(OnnxGraphBuilder g, DecoderSpec spec, string input)
    {
        string length = Dim(g, "rope", input, 1);                                           // [T]
        string cos, sin;
        using (var scope = torch.NewDisposeScope())
        {
            var (cosTable, sinTable) = RotaryEmbedding.Tables(spec, spec.MaxPositions);    // (P, d)
            cos = g.Node("Slice", "rope", [g.Constant("rope.cos", cosTable), g.Int64s(0), length, g.Int64s(0)]);
            sin = g.Node("Slice", "rope", [g.Constant("rope.sin", sinTable), g.Int64s(0), length, g.Int64s(0)]);
        }
        // Causal mask (T, T): query i sees keys j ≤ i.
        string positions = g.Node("Range", "mask",
            [g.Node("Squeeze", "mask", [g.Int64s(0)]), g.Node("Squeeze", "mask", [length]),
                g.Node("Squeeze", "mask", [g.Int64s(1)])]);
        string keep = g.Node("GreaterOrEqual", "mask",
            [
                g.Node("Unsqueeze", "mask", [positions, g.Int64s(1)]),
                g.Node("Unsqueeze", "mask", [positions, g.Int64s(0)]),
            ]);

        string x = g.Node("Gather", "embed", [g.Parameter("embed.weight"), input], ("axis", 0L)); // (B, T, W)
        foreach (var layer in spec.Layers)
        {
            string path = $"layers.L{layer.Id}";
            if (layer.Adapter is { Kind: not ScaleGrow.Models.Adapters.AdapterKind.None })
                throw OnnxExporter.AdapterUnsupported(path, layer.Adapter);
            string h = RmsNorm(g, path + ".norm1", x, spec.RmsNormEps);
            string q = Rotate(g, path, SplitHeads(g, path + ".attn", Linear(g, path + ".attn.q", h, false), spec.Heads,
                spec.HeadDim), cos, sin);
            string k = Rotate(g, path, SplitHeads(g, path + ".attn", Linear(g, path + ".attn.k", h, false),
                spec.KvHeads, spec.HeadDim), cos, sin);
            string v = SplitHeads(g, path + ".attn", Linear(g, path + ".attn.v", h, false), spec.KvHeads, spec.HeadDim);
            if (spec.KvHeads != spec.Heads)
            {
                k = RepeatKv(g, path + ".attn", k, spec);
                v = RepeatKv(g, path + ".attn", v, spec);
            }
            string attended = MergeHeads(g, path + ".attn", Attend(g, path + ".attn", q, k, v, spec.HeadDim, keep),
                spec.Heads, spec.HeadDim);
            x = g.Node("Add", path, [x, Linear(g, path + ".attn.o", attended, false)]);
            h = RmsNorm(g, path + ".norm2", x, spec.RmsNormEps);
            string gate = CnnOnnxGraph.Silu(g, path + ".mlp", Linear(g, path + ".mlp.gate", h, false));
            string gated = g.Node("Mul", path + ".mlp", [gate, Linear(g, path + ".mlp.up", h, false)]);
            x = g.Node("Add", path, [x, Linear(g, path + ".mlp.down", gated, false)]);
        }
        string normed = RmsNorm(g, "norm", x, spec.RmsNormEps);
        return Linear(g, spec.TieEmbeddings ? "embed" : "head", normed, false);          // (B, T, V)
    }

    /// <summary>x / √(mean(x²) + ε) · γ over the last dimension.</summary>
    private static string RmsNorm(OnnxGraphBuilder g, string path, string x, double eps)
    {
        string meanSquare = g.Node("ReduceMean", path, [g.Node("Mul", path, [x, x]), g.Int64s(-1)], ("keepdims", 1L));
        string root = g.Node("Sqrt", path, [g.Node("Add", path, [meanSquare, g.Scalar((float)eps)])]);
        string normed = g.Node("Mul", path, [x, g.Node("Reciprocal", path, [root])]);
        return g.Node("Mul", path, [g.Parameter(path + ".weight"), normed]);
    }

    /// <summary>x·cos + rotate_half(x)·sin on (B, H, T, d).</summary>
    private static string Rotate(OnnxGraphBuilder g, string path, string x, string cos, string sin)
    {
        string[] halves = g.Nodes("Split", path + ".rope", [x], 2, ("axis", -1L), ("num_outputs", 2L));
        string rotated = g.Node("Concat", path + ".rope", [g.Node("Neg", path + ".rope", [halves[1]]), halves[0]],
            ("axis", -1L));
        return g.Node("Add", path + ".rope",
            [g.Node("Mul", path + ".rope", [x, cos]), g.Node("Mul", path + ".rope", [rotated, sin])]);
    }

    /// <summary>(B, kvH, T, d) → (B, H, T, d), query head h reading key/value head h / (H / kvH).</summary>
    private static string RepeatKv(OnnxGraphBuilder g, string path, string x, DecoderSpec spec)
    {
        int repeats = spec.Heads / spec.KvHeads;
        string expanded = g.Node("Expand", path, [g.Node("Unsqueeze", path, [x, g.Int64s(2)]),
            g.Int64s(1, 1, repeats, 1, 1)]);                                               // (B, kvH, r, T, d)
        return g.Node("Reshape", path, [expanded, g.Int64s(0, spec.Heads, -1, spec.HeadDim)]);
    }
}

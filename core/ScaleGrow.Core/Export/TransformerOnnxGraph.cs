using ScaleGrow.Models.Transformer;
using static ScaleGrow.Export.OnnxAttention;

namespace ScaleGrow.Export;

/// <summary>
/// The forward pass of a <see cref="TransformerModel"/> (ViT or BERT-style encoder, pre-norm) as ONNX nodes, read
/// from the spec and the parameters by name: patch <c>Conv</c> + class token + positions, or token <c>Gather</c> +
/// positions sliced to the sequence (padding masked from attention); per layer LN, attention, LN, GELU MLP;
/// final LN on the class token / [CLS] and the linear head. ScaleNet instances read their owner's weights (shared
/// names resolve to one initializer).
/// </summary>
internal static class TransformerOnnxGraph
{
    public static string Emit(OnnxGraphBuilder g, TransformerSpec spec, string input)
    {
        string x;
        string? keep = null;
        if (spec.Modality == TransformerModality.Image)
        {
            string patches = g.Node("Conv", "embed.patch",
                [input, g.Parameter("embed.patch.weight"), g.Parameter("embed.patch.bias")],
                ("kernel_shape", new long[] { spec.PatchSize, spec.PatchSize }),
                ("strides", new long[] { spec.PatchSize, spec.PatchSize }));                // (B, W, h, w)
            patches = g.Node("Reshape", "embed", [patches, g.Int64s(0, 0, -1)]);
            patches = g.Node("Transpose", "embed", [patches], ("perm", new long[] { 0, 2, 1 })); // (B, N, W)
            string shape = g.Node("Concat", "embed.cls", [Dim(g, "embed.cls", input, 0), g.Int64s(1, spec.Width)],
                ("axis", 0L));
            string cls = g.Node("Expand", "embed.cls", [g.Parameter("embed.cls"), shape]); // (B, 1, W)
            x = g.Node("Concat", "embed", [cls, patches], ("axis", 1L));                   // (B, N+1, W)
            x = g.Node("Add", "embed", [x, g.Parameter("embed.pos")]);
        }
        else
        {
            string tokens = g.Node("Gather", "embed.tokens", [g.Parameter("embed.tokens.weight"), input],
                ("axis", 0L));                                                              // (B, T, W)
            string positions = g.Node("Slice", "embed.pos",
                [g.Parameter("embed.pos"), g.Int64s(0), Dim(g, "embed.pos", input, 1), g.Int64s(1)]);
            x = g.Node("Add", "embed", [tokens, positions]);
            // Attend to real tokens only: (B, 1, 1, T).
            string real = g.Node("Not", "mask", [g.Node("Equal", "mask", [input, g.Int64s(spec.PadTokenId)])]);
            keep = g.Node("Unsqueeze", "mask", [real, g.Int64s(1, 2)]);
        }
        foreach (var layer in spec.Layers)
        {
            string path = $"layers.L{layer.Id}";
            if (layer.Adapter is { Kind: not ScaleGrow.Models.Adapters.AdapterKind.None })
                throw OnnxExporter.AdapterUnsupported(path, layer.Adapter);
            string h = LayerNorm(g, path + ".norm1", x);
            string q = SplitHeads(g, path + ".attn", Linear(g, path + ".attn.q", h, true), spec.Heads, spec.HeadDim);
            string k = SplitHeads(g, path + ".attn", Linear(g, path + ".attn.k", h, true), spec.Heads, spec.HeadDim);
            string v = SplitHeads(g, path + ".attn", Linear(g, path + ".attn.v", h, true), spec.Heads, spec.HeadDim);
            string attended = MergeHeads(g, path + ".attn",
                Attend(g, path + ".attn", q, k, v, spec.HeadDim, keep), spec.Heads, spec.HeadDim);
            x = g.Node("Add", path, [x, Linear(g, path + ".attn.o", attended, true)]);
            h = LayerNorm(g, path + ".norm2", x);
            string hidden = Gelu(g, path + ".mlp", Linear(g, path + ".mlp.fc1", h, true));
            x = g.Node("Add", path, [x, Linear(g, path + ".mlp.fc2", hidden, true)]);
        }
        string first = g.Node("Gather", "norm", [x, g.Int64s(0)], ("axis", 1L));         // (B, 1, W)
        first = g.Node("Squeeze", "norm", [first, g.Int64s(1)]);                           // (B, W)
        string normed = LayerNorm(g, "norm", first);
        return g.Node("Gemm", "head", [normed, g.Parameter("head.weight"), g.Parameter("head.bias")],
            ("transB", 1L));                                                               // (B, classes)
    }

    /// <summary>TorchSharp's LayerNorm over the last dimension (ε = 1e-5, the default it is built with).</summary>
    private static string LayerNorm(OnnxGraphBuilder g, string path, string x) =>
        g.Node("LayerNormalization", path, [x, g.Parameter(path + ".weight"), g.Parameter(path + ".bias")],
            ("axis", -1L), ("epsilon", 1e-5f));
}

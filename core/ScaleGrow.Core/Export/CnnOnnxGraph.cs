using ScaleGrow.Models.Cnn;
using TorchSharp;

namespace ScaleGrow.Export;

/// <summary>
/// The forward pass of a fused <see cref="CnnModel"/> as ONNX nodes, layer by layer as docs/checkpoint-format.md
/// ("Running a CNN checkpoint without ScaleGrow") describes it: each unit one <c>Conv</c> with bias, the norms outside
/// units <c>BatchNormalization</c>, SE as pooled 1×1 convolutions with <c>HardSigmoid</c>, the head BN, global average
/// pooling and <c>Gemm</c>. Unfused units are fused by the caller (<see cref="OnnxExporter"/>) first.
/// </summary>
internal static class CnnOnnxGraph
{
    public static string Emit(OnnxGraphBuilder g, CnnModel model, string input)
    {
        var paths = model.named_modules().ToDictionary(m => (object)m.module, m => m.name,
            ReferenceEqualityComparer.Instance);
        var family = model.Spec.Family;
        string x = input; // (B, C, H, W)
        foreach (var (_, _, layer) in model.AllLayers())
        {
            string path = paths[layer];
            x = layer switch
            {
                PlainLayer => Activate(g, family, path, Unit(g, layer, 0, x, paths)),
                DownsampleLayer down => Activate(g, family, path,
                    Unit(g, layer, 0, BatchNorm(g, paths[down.Norm], x), paths)),
                BasicResidualLayer => Relu(g, path, g.Node("Add", path,
                    [Unit(g, layer, 1, Relu(g, path, Unit(g, layer, 0, x, paths)), paths), x])),
                BottleneckLayer => Relu(g, path, g.Node("Add", path,
                [
                    Unit(g, layer, 2, Relu(g, path, Unit(g, layer, 1, Relu(g, path, Unit(g, layer, 0, x, paths)),
                        paths)), paths),
                    x,
                ])),
                InvertedResidualLayer => InvertedResidual(g, layer, path, x, paths),
                _ => throw new UnsupportedLayerException(
                    $"layer '{path}' is a {layer.GetType().Name}, which the ONNX exporter does not know"),
            };
        }
        var head = model.Head;
        string normed = BatchNorm(g, paths[head.Norm], x);
        string pooled = g.Node("GlobalAveragePool", "head", [normed]);                    // (B, C, 1, 1)
        string flat = g.Node("Flatten", "head", [pooled], ("axis", 1L));                  // (B, C)
        string fc = paths[head.Classifier];
        return g.Node("Gemm", fc, [flat, g.Parameter(fc + ".weight"), g.Parameter(fc + ".bias")],
            ("transB", 1L));                                                               // (B, classes)
    }

    private static string InvertedResidual(OnnxGraphBuilder g, CnnLayer layer, string path, string x,
        Dictionary<object, string> paths)
    {
        string y = Silu(g, path, Unit(g, layer, 0, x, paths));                             // (B, e·C, H, W)
        y = Silu(g, path, Unit(g, layer, 1, y, paths));
        // Squeeze-excitation: mean over H, W, 1×1 reduce, ReLU, 1×1 expand, hard sigmoid (t/6 + 1/2, clamped).
        string se = path + ".se";
        string s = g.Node("GlobalAveragePool", se, [y]);                                   // (B, e·C, 1, 1)
        s = g.Node("Relu", se, [Conv1x1(g, se + ".reduce", s)]);
        s = g.Node("HardSigmoid", se, [Conv1x1(g, se + ".expand", s)], ("alpha", 1f / 6), ("beta", 0.5f));
        y = g.Node("Mul", se, [y, s]);
        return Silu(g, path, g.Node("Add", path, [Unit(g, layer, 2, y, paths), x]));
    }

    private static string Unit(OnnxGraphBuilder g, CnnLayer layer, int index, string x,
        Dictionary<object, string> paths)
    {
        if (layer.Units[index] is not FusedConvUnit unit)
            throw new UnsupportedLayerException(
                $"unit '{paths[layer.Units[index]]}' is a {layer.Units[index].GetType().Name}; only fused units " +
                "export " +
                "(fuse the checkpoint first)");
        string conv = paths[unit.Conv];
        var geometry = unit.Geometry;
        return g.Node("Conv", conv, [x, g.Parameter(conv + ".weight"), g.Parameter(conv + ".bias")],
            ("kernel_shape", new long[] { geometry.KernelH, geometry.KernelW }),
            ("strides", new long[] { geometry.Stride, geometry.Stride }),
            ("pads", new long[]
                { geometry.KernelH / 2, geometry.KernelW / 2, geometry.KernelH / 2, geometry.KernelW / 2 }),
            ("group", (long)geometry.Groups));
    }

    private static string Conv1x1(OnnxGraphBuilder g, string conv, string x) =>
        g.Node("Conv", conv, [x, g.Parameter(conv + ".weight"), g.Parameter(conv + ".bias")],
            ("kernel_shape", new long[] { 1, 1 }));

    private static string BatchNorm(OnnxGraphBuilder g, string path, string x) =>
        g.Node("BatchNormalization", path,
            [x, g.Parameter(path + ".weight"), g.Parameter(path + ".bias"), g.Parameter(path + ".running_mean"),
                g.Parameter(path + ".running_var")],
            ("epsilon", (float)ConvBranch.BatchNormEps));

    private static string Activate(OnnxGraphBuilder g, CnnFamily family, string path, string x) =>
        family == CnnFamily.MobileNetV3 ? Silu(g, path, x) : Relu(g, path, x);

    private static string Relu(OnnxGraphBuilder g, string path, string x) => g.Node("Relu", path, [x]);

    /// <summary>SiLU as x · sigmoid(x) (ONNX has no SiLU operator before opset 22's Swish proposals).</summary>
    internal static string Silu(OnnxGraphBuilder g, string path, string x) =>
        g.Node("Mul", path, [x, g.Node("Sigmoid", path, [x])]);
}

using ScaleGrow.Models;

namespace ScaleGrow.Export;

/// <summary>The ONNX graph of a model in inference form: its input, its layers, and the logits' dimensions.</summary>
/// <param name="InputShape">The per-sample input shape.</param>
/// <param name="Logits">The name of the graph value holding the logits.</param>
/// <param name="OutputDimensions">The logits' dimensions (a batch name or size first).</param>
internal sealed record OnnxGraphOutput(long[] InputShape, string Logits, object[] OutputDimensions);

/// <summary>
/// The ONNX part of a model family: declares the input on <see cref="OnnxGraphBuilder"/> and emits the layers of a
/// model already in inference form. Implemented by the family class beside <see cref="IModelFamily"/>.
/// </summary>
internal interface IOnnxExportableFamily
{
    OnnxGraphOutput EmitOnnx(OnnxGraphBuilder builder, IScaleGrowModel model, string inputName, object batch);
}

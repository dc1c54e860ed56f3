using ScaleGrow.Export;

namespace ScaleGrow.Runs;

/// <summary>
/// A run spec's <c>export</c> section (<c>"export": {"format": "onnx"}</c>): at the end of the run, the fused final
/// model — and the quantized one, when the spec quantizes — is exported as ONNX beside the checkpoints
/// (docs/deploy.md). Null: no export.
/// </summary>
public sealed record ExportSpec
{
    public string Format { get; set; } = "onnx";

    /// <summary>ONNX opset (<see cref="OnnxExportOptions.MinOpset"/>..<see cref="OnnxExportOptions.MaxOpset"/>).
    /// </summary>
    public int Opset { get; set; } = OnnxExportOptions.DefaultOpset;

    /// <summary>A fixed batch size, or null for a dynamic batch dimension.</summary>
    public int? Batch { get; set; }

    public OnnxExportOptions Options => new() { Opset = Opset, Batch = Batch };

    public void Validate()
    {
        if (Format != "onnx") throw new InvalidSpecException($"export: format must be 'onnx', got '{Format}'");
        try
        {
            Options.Validate();
        }
        catch (InvalidSpecException e)
        {
            throw new InvalidSpecException($"export: {e.Message}");
        }
    }
}

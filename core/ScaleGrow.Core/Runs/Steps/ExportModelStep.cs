using ScaleGrow.Export;

namespace ScaleGrow.Runs;

/// <summary>Export the fused final model (and the quantized one, when there is one) as ONNX.</summary>
public sealed record ExportModelInput(string RunId, string FusedModel, string? QuantizedModel);

/// <summary>The exported files: <c>final/model.onnx</c>, <c>final/model.w{bits}.onnx</c>, and a text model's
/// tokenizer <c>final/model.tokenizer.json</c>.</summary>
public sealed record ExportModelResult(string Onnx, long Bytes, string? QuantizedOnnx, long? QuantizedBytes,
    string? Tokenizer, int Opset, IReadOnlyList<string> Notes);

/// <summary>
/// The <c>ExportModel</c> activity (see <see cref="RunAsync"/>).
/// </summary>
public sealed class ExportModelStep(RunSteps run) : RunStep<ExportModelInput, ExportModelResult>(run)
{
    /// <summary>The activity's name, as the orchestrations call it and the service documents it.</summary>
    public const string Name = "ExportModel";

    /// <summary>
    /// Exports the fused final model as <c>final/model.onnx</c> (a text model's tokenizer beside it as
    /// <c>final/model.tokenizer.json</c>) and, when the run quantized, the quantized model as
    /// <c>final/model.w{bits}.onnx</c>, with the spec's <c>export</c> options (<see cref="OnnxExporter"/>,
    /// docs/deploy.md). Idempotent: a retry rewrites the same files.
    /// </summary>
    public override async Task<ExportModelResult> RunAsync(ExportModelInput input,
        CancellationToken cancellationToken = default)
    {
        var spec = await Run.ReadSpecAsync(input.RunId, cancellationToken);
        var options = (spec.Export ?? new ExportSpec()).Options;
        var fused = OnnxExporter.ExportCheckpoint(await Run.Store.ReadAllBytesAsync(input.FusedModel, cancellationToken),
            input.FusedModel, options);
        string onnx = RunPaths.Final(input.RunId, "model.onnx");
        await Run.Store.WriteAsync(onnx, fused.Bytes, null, cancellationToken);
        string? tokenizer = null;
        if (fused.Tokenizer is { } json)
        {
            tokenizer = OnnxExportResult.TokenizerPathFor(onnx);
            await Run.Store.WriteAsync(tokenizer, System.Text.Encoding.UTF8.GetBytes(json), null, cancellationToken);
        }
        string? quantizedOnnx = null;
        long? quantizedBytes = null;
        if (input.QuantizedModel is { } quantizedModel)
        {
            var quantized = OnnxExporter.ExportCheckpoint(
                await Run.Store.ReadAllBytesAsync(quantizedModel, cancellationToken), quantizedModel, options);
            quantizedOnnx = RunPaths.Final(input.RunId, $"model.w{quantized.Bits}.onnx");
            await Run.Store.WriteAsync(quantizedOnnx, quantized.Bytes, null, cancellationToken);
            quantizedBytes = quantized.Bytes.LongLength;
        }
        return new ExportModelResult(onnx, fused.Bytes.LongLength, quantizedOnnx, quantizedBytes, tokenizer,
            options.Opset, fused.Notes);
    }
}

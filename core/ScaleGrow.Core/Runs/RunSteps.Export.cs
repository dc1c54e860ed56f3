using ScaleGrow.Export;

namespace ScaleGrow.Runs;

public sealed partial class RunSteps
{
    /// <summary>
    /// Exports the fused final model as <c>final/model.onnx</c> (a text model's tokenizer beside it as
    /// <c>final/model.tokenizer.json</c>) and, when the run quantized, the quantized model as
    /// <c>final/model.w{bits}.onnx</c>, with the spec's <c>export</c> options (<see cref="OnnxExporter"/>,
    /// docs/deploy.md). Idempotent: a retry rewrites the same files.
    /// </summary>
    public async Task<ExportModelResult> ExportModelAsync(ExportModelInput input,
        CancellationToken cancellationToken = default)
    {
        var spec = await ReadSpecAsync(input.RunId, cancellationToken);
        var options = (spec.Export ?? new ExportSpec()).Options;
        var fused = OnnxExporter.ExportCheckpoint(await _store.ReadAllBytesAsync(input.FusedModel, cancellationToken),
            input.FusedModel, options);
        string onnx = RunPaths.Final(input.RunId, "model.onnx");
        await _store.WriteAsync(onnx, fused.Bytes, null, cancellationToken);
        string? tokenizer = null;
        if (fused.Tokenizer is { } json)
        {
            tokenizer = OnnxExportResult.TokenizerPathFor(onnx);
            await _store.WriteAsync(tokenizer, System.Text.Encoding.UTF8.GetBytes(json), null, cancellationToken);
        }
        string? quantizedOnnx = null;
        long? quantizedBytes = null;
        if (input.QuantizedModel is { } quantizedModel)
        {
            var quantized = OnnxExporter.ExportCheckpoint(
                await _store.ReadAllBytesAsync(quantizedModel, cancellationToken), quantizedModel, options);
            quantizedOnnx = RunPaths.Final(input.RunId, $"model.w{quantized.Bits}.onnx");
            await _store.WriteAsync(quantizedOnnx, quantized.Bytes, null, cancellationToken);
            quantizedBytes = quantized.Bytes.LongLength;
        }
        return new ExportModelResult(onnx, fused.Bytes.LongLength, quantizedOnnx, quantizedBytes, tokenizer,
            options.Opset, fused.Notes);
    }
}

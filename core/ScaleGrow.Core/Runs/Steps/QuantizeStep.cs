using System.Text.Json.Nodes;
using ScaleGrow.Data;
using ScaleGrow.Export;
using ScaleGrow.Quantization;

namespace ScaleGrow.Runs;

/// <summary>The <c>Quantize</c> activity of quantize-on-upload (see <see cref="RunAsync"/>).</summary>
public sealed class QuantizeStep(UploadSteps uploads)
{
    /// <summary>The activity's name, as the quantize-on-upload orchestration calls it.</summary>
    public const string Name = "Quantize";

    private UploadSteps Context { get; } = uploads;

    /// <summary>
    /// Quantizes the upload (thesis chapter 4, <see cref="QuantizationRunner"/>: fuses a multi-branch CNN first) and
    /// writes the packed checkpoint and a report. The upload is streamed at the ETag that was validated; if the name
    /// holds another version by now, this fails with <see cref="ArtifactConflictException"/> (the orchestration then
    /// rejects this version with that message). Calibration images come from the training split of the dataset
    /// the upload's <c>calibration</c> metadata names, else the one its input shape suggests; when that is not
    /// installed here the calibrated methods fall back to round-to-nearest and the report says so. Idempotent: a
    /// retry rewrites the same two blobs.
    /// </summary>
    public async Task<UploadOutcome> RunAsync(UploadRef upload, CancellationToken cancellationToken = default)
    {
        string path = UploadSteps.PathOf(UploadSteps.Uploads, upload.Name);
        var info = await Context.CurrentVersionAsync(upload, cancellationToken);
        var meta = info.Metadata;
        var options = Context.OptionsFor(meta, path);
        var notes = new List<string>();
        await using var stream = await Context.Store.OpenVersionAsync(path, info.ETag, cancellationToken);
        var (spec, header) = Context.ReadSpec(stream, path);
        using var data = Context.CalibrationData(spec, InputNormalization.FromMetadata(header, path),
            meta.GetValueOrDefault("calibration"), notes);
        using var calibration = data is null
            ? CalibrationSet.None()
            : CalibrationSet.FromTrainingSplit(data, options.CalibrationSamples, options.Seed);
        var result = new QuantizationRunner().Run(stream, path, new QuantizationRunRequest
        {
            Options = options, Calibration = calibration, EvaluationData = Context.EvaluationSamples > 0 ? data : null,
            Device = ComputeDevice.Resolve("auto"), // the replica's GPU when it has one
        }, cancellation: cancellationToken);
        var paths = UploadSteps.PathsFor(upload.Name, options.Bits);
        await Context.Store.WriteAsync(paths.Artifact, result.Checkpoint, null, cancellationToken);
        var json = JsonNode.Parse(result.Report.ToJson())!.AsObject();
        if (UploadSteps.ExportFor(meta, path) is { } exportOptions)
        {
            // Beside the quantized checkpoint, from the checkpoint just written (docs/deploy.md).
            var exported = OnnxExporter.ExportCheckpoint(result.Checkpoint, paths.Artifact, exportOptions);
            string onnx = UploadSteps.OnnxPathFor(paths.Artifact);
            await Context.Store.WriteAsync(onnx, exported.Bytes, null, cancellationToken);
            json["onnx"] = onnx;
            json["onnxBytes"] = exported.Bytes.LongLength;
            json["onnxOpset"] = exported.Opset;
        }
        json["upload"] = upload.Name;
        json["etag"] = upload.ETag;
        json["status"] = "quantized";
        json["artifact"] = paths.Artifact;
        if (notes.Count > 0) json["uploadNotes"] = new JsonArray(notes.Select(n => (JsonNode)n!).ToArray());
        await Context.Store.WriteAsync(paths.Report, UploadSteps.Json(json), null, cancellationToken);
        return new UploadOutcome("quantized", upload.Name, paths.Artifact, paths.Report, null);
    }
}

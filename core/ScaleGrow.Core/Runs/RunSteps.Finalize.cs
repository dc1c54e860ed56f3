using System.Text.Json;
using ScaleGrow.Models;
using ScaleGrow.Quantization;

namespace ScaleGrow.Runs;

public sealed partial class RunSteps
{
    /// <summary>
    /// Quantizes the fused final model with the spec's options (<see cref="QuantizationRunner"/>): calibration from
    /// the run's training split (images; text models fall back to round-to-nearest), accuracy before and after on
    /// its test split. Writes <c>final/model.w{bits}.safetensors</c> and <c>final/quantization.json</c>; idempotent.
    /// </summary>
    public async Task<QuantizeModelResult> QuantizeModelAsync(QuantizeModelInput input,
        CancellationToken cancellationToken = default)
    {
        var spec = await ReadSpecAsync(input.RunId, cancellationToken);
        var options = spec.Quantization ?? new QuantizationOptions();
        using var lease = RunData.Lease(spec);
        var data = lease.Data as ImageRunData;
        using var calibration = data is null
            ? CalibrationSet.None()
            : CalibrationSet.FromTrainingSplit(data.Splits, options.CalibrationSamples, options.Seed);
        var bytes = await _store.ReadAllBytesAsync(input.FusedModel, cancellationToken);
        var result = new QuantizationRunner().Run(bytes, input.FusedModel, new QuantizationRunRequest
        {
            Options = options, Calibration = calibration, EvaluationData = data?.Splits, Device = DeviceFor(spec),
        }, cancellation: cancellationToken);
        string model = RunPaths.Final(input.RunId, $"model.w{options.Bits}.safetensors");
        string report = RunPaths.Final(input.RunId, "quantization.json");
        await _store.WriteAsync(model, result.Checkpoint, null, cancellationToken);
        await _store.WriteAsync(report, System.Text.Encoding.UTF8.GetBytes(result.Report.ToJson()), null,
            cancellationToken);
        var r = result.Report;
        return new QuantizeModelResult(model, report, r.Quantization.Method, r.Quantization.Bits, r.AccuracyBefore,
            r.AccuracyAfter, r.Fp32Bytes, r.QuantizedBytes);
    }

    /// <summary>Writes the run's final artifacts: the grown model, report.json and curves.png (fused model: Fuse).</summary>
    public async Task<RunSummary> FinalizeAsync(FinalizeInput input, CancellationToken cancellationToken = default)
    {
        var spec = await ReadSpecAsync(input.RunId, cancellationToken);
        string model = RunPaths.Final(input.RunId, "model.safetensors");
        await _store.WriteAsync(model, await _store.ReadAllBytesAsync(input.Model, cancellationToken), null,
            cancellationToken);
        var journal = await Journal(input.RunId).EntriesAsync(cancellationToken);
        var (grown, _) = Checkpoints.ModelIO.LoadModel(await _store.ReadAllBytesAsync(input.Model, cancellationToken),
            input.Model);
        var stats = ModelStats.Of(grown.Spec);
        grown.Module.Dispose();
        var fused = new FuseResult(input.FusedModel, stats.Parameters, stats.ParametersFused);
        var report = RunReport.Build(input.RunId, spec, journal, input.Evaluation, fused, input.StopReason,
            input.WallSeconds);
        report["arch"] = grown.Spec.ArchString;
        if (journal.FirstOrDefault(e => (string?)e["kind"] == "expand") is { } expansion)
            report["expansion"] = expansion.DeepClone();
        // Fine-tuning trained the merged plain network: the unfused parameter count above is the merged one.
        if (journal.LastOrDefault(e => (string?)e["kind"] == "merge") is { } merge)
            report["branchMerge"] = merge.DeepClone();
        if (input.Quantized is { } q)
            report["quantized"] = JsonSerializer.SerializeToNode(q, RunStepsJson.Default.QuantizeModelResult);
        if (input.Exported is { } exported)
            report["onnx"] = JsonSerializer.SerializeToNode(exported, RunStepsJson.Default.ExportModelResult);
        string reportPath = RunPaths.Final(input.RunId, "report.json");
        await _store.WriteAsync(reportPath,
            JsonSerializer.SerializeToUtf8Bytes(report, new JsonSerializerOptions { WriteIndented = true }), null,
            cancellationToken);
        await _store.WriteAsync(RunPaths.Final(input.RunId, "curves.png"),
            RunReport.Curves(journal, $"{input.RunId}: {grown.Spec.ArchString}"), null, cancellationToken);
        return new RunSummary
        {
            RunId = input.RunId, Arch = grown.Spec.ArchString, Parameters = stats.Parameters,
            ParametersFused = stats.ParametersFused, Evaluation = input.Evaluation, Model = model,
            FusedModel = input.FusedModel, Report = reportPath, StopReason = input.StopReason, Quantized = input.Quantized,
            Exported = input.Exported,
            Growths = journal.Count(e => (string?)e["kind"] == "growth"),
            Epochs = journal.Count(e => (string?)e["kind"] == "epoch"), WallSeconds = input.WallSeconds,
        };
    }
}

using ScaleGrow.Quantization;

namespace ScaleGrow.Runs;

public sealed record QuantizeModelInput(string RunId, string FusedModel);

/// <summary>The quantized final model (packed checkpoint) and its headline numbers; the full report is a blob.</summary>
public sealed record QuantizeModelResult(string Model, string Report, string Method, int Bits, double? AccuracyBefore,
    double? AccuracyAfter, long Fp32Bytes, long QuantizedBytes);

/// <summary>
/// The <c>QuantizeModel</c> activity (see <see cref="RunAsync"/>).
/// </summary>
public sealed class QuantizeModelStep(RunSteps run) : RunStep<QuantizeModelInput, QuantizeModelResult>(run)
{
    /// <summary>The activity's name, as the orchestrations call it and the service documents it.</summary>
    public const string Name = "QuantizeModel";

    /// <summary>
    /// Quantizes the fused final model with the spec's options (<see cref="QuantizationRunner"/>): calibration from
    /// the run's training split (images; text models fall back to round-to-nearest), accuracy before and after on
    /// its test split. Writes <c>final/model.w{bits}.safetensors</c> and <c>final/quantization.json</c>; idempotent.
    /// </summary>
    public override async Task<QuantizeModelResult> RunAsync(QuantizeModelInput input,
        CancellationToken cancellationToken = default)
    {
        var spec = await Run.ReadSpecAsync(input.RunId, cancellationToken);
        var options = spec.Quantization ?? new QuantizationOptions();
        using var lease = RunData.Lease(spec);
        var data = lease.Data as ImageRunData;
        using var calibration = data is null
            ? CalibrationSet.None()
            : CalibrationSet.FromTrainingSplit(data.Splits, options.CalibrationSamples, options.Seed);
        var bytes = await Run.Store.ReadAllBytesAsync(input.FusedModel, cancellationToken);
        var result = new QuantizationRunner().Run(bytes, input.FusedModel, new QuantizationRunRequest
        {
            Options = options, Calibration = calibration, EvaluationData = data?.Splits, Device = Run.DeviceFor(spec),
        }, cancellation: cancellationToken);
        string model = RunPaths.Final(input.RunId, $"model.w{options.Bits}.safetensors");
        string report = RunPaths.Final(input.RunId, "quantization.json");
        await Run.Store.WriteAsync(model, result.Checkpoint, null, cancellationToken);
        await Run.Store.WriteAsync(report, System.Text.Encoding.UTF8.GetBytes(result.Report.ToJson()), null,
            cancellationToken);
        var r = result.Report;
        return new QuantizeModelResult(model, report, r.Quantization.Method, r.Quantization.Bits, r.AccuracyBefore,
            r.AccuracyAfter, r.Fp32Bytes, r.QuantizedBytes);
    }
}

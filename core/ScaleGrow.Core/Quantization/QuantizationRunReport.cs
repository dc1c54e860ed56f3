namespace ScaleGrow.Quantization;

/// <summary>
/// What quantizing a checkpoint did, end to end (issue 5's report): accuracy on the test split before and after,
/// checkpoint size before and after, time, and the per-layer relative reconstruction errors ‖WX−ŴX‖²/‖WX‖² of
/// <see cref="Quantization"/>.
/// </summary>
public sealed record QuantizationRunReport
{
    /// <summary>The checkpoint's file or blob name.</summary>
    public required string Source { get; init; }

    /// <summary>The architecture string of the model that was quantized (e.g. <c>ResNet-1-2-1</c>).</summary>
    public required string Arch { get; init; }

    /// <summary>True when the runner fused an unfused CNN before quantizing (structural re-parameterization).
    /// </summary>
    public required bool Fused { get; init; }

    /// <summary>The method asked for; <see cref="QuantizationReport.Method"/> is the one used (rtn after a
    /// fallback).</summary>
    public required string RequestedMethod { get; init; }

    public required QuantizationReport Quantization { get; init; }

    public required ScaleFormat ScaleFormat { get; init; }

    /// <summary>Where the calibration samples came from; null without calibration data.</summary>
    public string? CalibrationSource { get; init; }

    /// <summary>Accuracy of the float model (after fusion) on the test split; null without test data.</summary>
    public double? AccuracyBefore { get; init; }

    /// <summary>Accuracy of the model loaded back from the quantized checkpoint on the same samples.</summary>
    public double? AccuracyAfter { get; init; }

    public long TestSamples { get; init; }

    /// <summary>Bytes of the checkpoint as given.</summary>
    public required long InputBytes { get; init; }

    /// <summary>Bytes of the float32 checkpoint of the model that was quantized (after any fusion).</summary>
    public required long Fp32Bytes { get; init; }

    public required long QuantizedBytes { get; init; }

    /// <summary>How many times smaller the quantized checkpoint is than the float32 one.</summary>
    public double SizeRatio => QuantizedBytes > 0 ? (double)Fp32Bytes / QuantizedBytes : 0;

    /// <summary>Accuracy lost, in fractions (before − after); null without test data.</summary>
    public double? AccuracyDrop => AccuracyBefore - AccuracyAfter;

    /// <summary>Seconds spent quantizing (calibration passes and solving), without evaluation.</summary>
    public required double QuantizeSeconds { get; init; }

    public required double EvaluateSeconds { get; init; }
    public required double TotalSeconds { get; init; }

    /// <summary>Where the model was measured and quantized (read from its parameters).</summary>
    public string? Device { get; init; }

    /// <summary>Everything a reader should know: fallbacks, fusion, raised dampening, dead inputs.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    public string ToJson() => System.Text.Json.JsonSerializer.Serialize(this,
        QuantizationJson.Default.QuantizationRunReport);
}

/// <summary>The stages of <see cref="QuantizationRunner.Run(byte[], string, QuantizationRunRequest,
/// IProgress{QuantizationRunProgress}?, CancellationToken)"/>.</summary>
public enum QuantizationRunStage
{
    Loading,
    EvaluatingBefore,
    Quantizing,
    Writing,
    EvaluatingAfter,
    Done,
}

/// <summary>Where a quantization run stands; <see cref="Layer"/> is set during <see cref="QuantizationRunStage.
/// Quantizing"/>.</summary>
public sealed record QuantizationRunProgress(QuantizationRunStage Stage, LayerQuantizationProgress? Layer = null);

using System.Text.Json;
using System.Text.Json.Serialization;

namespace ScaleGrow.Quantization;

/// <summary>What quantizing a model did, layer by layer (the report: per-layer reconstruction error
/// ‖WX−ŴX‖²/‖WX‖² on the calibration inputs, time; totals).</summary>
public sealed record QuantizationReport
{
    public required string Method { get; init; }
    public required int Bits { get; init; }
    public required int GroupSize { get; init; }
    public required bool Symmetric { get; init; }

    /// <summary>Calibration samples that flowed through the model for each layer (0 for <c>rtn</c> without data).
    /// </summary>
    public required long CalibrationSamples { get; init; }

    public required IReadOnlyList<LayerQuantizationReport> Layers { get; init; }
    public required double TotalSeconds { get; init; }

    /// <summary>Weights quantized (parameters of the quantized Conv2d/Linear weights).</summary>
    public long QuantizedWeights => Layers.Sum(l => l.Weights);

    /// <summary>Mean of the layers' relative errors (null when none was measured).</summary>
    public double? MeanRelativeError =>
        Layers.Any(l => l.RelativeError is not null) ? Layers.Where(l => l.RelativeError is not null)
            .Average(l => l.RelativeError!.Value) : null;

    public double? MaxRelativeError =>
        Layers.Any(l => l.RelativeError is not null) ? Layers.Max(l => l.RelativeError) : null;

    /// <summary>Things a reader should know (raised dampening, dead inputs, no calibration data).</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    public string ToJson() => JsonSerializer.Serialize(this, QuantizationJson.Default.QuantizationReport);
}

/// <summary>One layer of a <see cref="QuantizationReport"/>.</summary>
public sealed record LayerQuantizationReport
{
    public required string Name { get; init; }
    public required LayerKind Kind { get; init; }
    public required long[] Shape { get; init; }
    public required string Method { get; init; }
    public required int Bits { get; init; }

    /// <summary>Columns per grid, 0 for per output channel.</summary>
    public required int GroupSize { get; init; }

    /// <summary>‖WX−ŴX‖²/‖WX‖² on the layer's calibration inputs (coming from the already-quantized layers before it);
    /// null without calibration data.</summary>
    public double? RelativeError { get; init; }

    public required double Seconds { get; init; }
    public long Samples { get; init; }
    public double PercentDampUsed { get; init; }
    public long DeadColumns { get; init; }
    public long Weights => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>Where a model quantization stands, reported per layer.</summary>
public sealed record LayerQuantizationProgress(int Index, int Count, string Name, LayerQuantizationStage Stage,
    double? RelativeError, double Seconds);

public enum LayerQuantizationStage
{
    /// <summary>Collecting the layer's Hessian from calibration inputs.</summary>
    Calibrating,

    /// <summary>The layer's weight has been replaced by its quantized value.</summary>
    Quantized,
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true,
    WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(QuantizationOptions))]
[JsonSerializable(typeof(QuantizationReport))]
[JsonSerializable(typeof(LayerQuantizationProgress))]
[JsonSerializable(typeof(QuantizationRunReport))]
internal partial class QuantizationJson : JsonSerializerContext;

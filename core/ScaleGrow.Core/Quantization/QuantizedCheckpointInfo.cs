using System.Text.Json.Serialization;

namespace ScaleGrow.Quantization;

/// <summary>How the scales of a quantized checkpoint are stored.</summary>
public enum ScaleFormat
{
    /// <summary>IEEE binary32: reproduces the quantizer's weights bit-exactly (the default).</summary>
    F32,

    /// <summary>IEEE binary16: 2 bytes less per grid; the dequantized weights move by up to |q − zero|·2⁻¹¹ of a
    /// grid step (measured in bench/RESULTS-quantization.md).</summary>
    F16,
}

/// <summary>Options for writing a quantized checkpoint.</summary>
public sealed record QuantizedCheckpointOptions
{
    /// <summary>F32 by default: with one grid per output channel (the default grid) scales are under 1% of a 4-bit
    /// file, so F16 saves little and would break the bit-exact match with the weights the report was measured on.
    /// </summary>
    public ScaleFormat Scales { get; init; } = ScaleFormat.F32;

    /// <summary>Where the calibration samples came from (recorded in the file, for the reader's information).</summary>
    public string? CalibrationSource { get; init; }
}

/// <summary>
/// The JSON under <c>scalegrow.quantization</c> in a quantized checkpoint (docs/quantization.md, "Quantized
/// checkpoints"): the settings the model was quantized with and, per quantized layer, what a reader needs to decode
/// its packed tensors without knowing the architecture.
/// </summary>
public sealed record QuantizedCheckpointInfo
{
    /// <summary>The method used (after any fallback), one of <see cref="QuantizationMethods.All"/>.</summary>
    public required string Method { get; init; }

    public required int Bits { get; init; }

    /// <summary>Columns per grid, 0 for one grid per output channel.</summary>
    public required int GroupSize { get; init; }

    public required bool Symmetric { get; init; }

    /// <summary><c>F32</c> or <c>F16</c>: the dtype of every <c>.weight.scales</c> tensor.</summary>
    public required ScaleFormat ScaleFormat { get; init; }

    /// <summary>Calibration samples that formed the Hessians (0 for rtn without data).</summary>
    public long CalibrationSamples { get; init; }

    public string? CalibrationSource { get; init; }

    /// <summary>Every quantized layer by module name; its weight is stored as <c>{name}.weight.codes</c> etc.</summary>
    public required IReadOnlyDictionary<string, QuantizedLayerInfo> Layers { get; init; }
}

/// <summary>One quantized layer's entry in <see cref="QuantizedCheckpointInfo.Layers"/>.</summary>
public sealed record QuantizedLayerInfo
{
    public required LayerKind Kind { get; init; }

    /// <summary>The weight shape: [out, in] or [out, in/G, kh, kw]. The codes follow its row-major element order.
    /// </summary>
    public required long[] Shape { get; init; }

    /// <summary>G: output rows g·out/G.. belong to conv group g (1 for Linear).</summary>
    public required long ConvGroups { get; init; }

    public required int Bits { get; init; }

    /// <summary>Columns per grid, 0 for one grid per output row.</summary>
    public required int GroupSize { get; init; }

    /// <summary>Symmetric grid: no zero-point tensor, every zero point is 2^(bits−1).</summary>
    public required bool Symmetric { get; init; }

    /// <summary>Groups follow the quantization order, so <c>{name}.weight.perm</c> is stored and column perm[g][k]
    /// uses grid k / groupSize. False: column j uses grid j / groupSize.</summary>
    public required bool Permuted { get; init; }
}

/// <summary>Strict JSON for what a hostile file can hold: required members, no nulls where none belong, no unknown
/// members.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true,
    WriteIndented = false, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    RespectNullableAnnotations = true, RespectRequiredConstructorParameters = true, AllowDuplicateProperties = false,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(QuantizedCheckpointInfo))]
internal partial class QuantizedCheckpointJson : JsonSerializerContext;

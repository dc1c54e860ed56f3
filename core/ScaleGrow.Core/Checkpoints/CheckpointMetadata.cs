namespace ScaleGrow.Checkpoints;

/// <summary>
/// The <c>__metadata__</c> keys and values ScaleGrow's checkpoints carry (see docs/checkpoint-format.md). Keys under
/// <c>scalegrow.</c> listed here are written by <see cref="CheckpointCodec"/> and may not be set as extra metadata.
/// </summary>
public static class CheckpointMetadata
{
    /// <summary>What the file holds: <see cref="ModelKind"/>, <see cref="OptimizerKind"/> or
    /// <see cref="QuantizedModelKind"/>.</summary>
    public const string KindKey = "scalegrow.kind";

    /// <summary>Version of ScaleGrow's conventions on top of safetensors; see <see cref="FormatVersion"/>.</summary>
    public const string FormatVersionKey = "scalegrow.format-version";

    /// <summary>The architecture spec as JSON (model checkpoints).</summary>
    public const string SpecKey = "scalegrow.spec";

    /// <summary>The optimizer's scalar state as JSON (optimizer checkpoints).</summary>
    public const string OptimizerStateKey = "scalegrow.optimizer";

    /// <summary>Quantized-model files: the quantization settings and the per-layer layout of the packed tensors as JSON
    /// (see docs/quantization.md, "Quantized checkpoints").</summary>
    public const string QuantizationKey = "scalegrow.quantization";

    /// <summary>JSON object mapping each alias name to the canonical name whose data it shares.</summary>
    public const string AliasesKey = "scalegrow.aliases";

    public const string FormatVersion = "1";

    public const string ModelKind = "model";
    public const string OptimizerKind = "optimizer";
    public const string QuantizedModelKind = "quantized-model";

    internal static readonly IReadOnlySet<string> ReservedKeys = new HashSet<string>(StringComparer.Ordinal)
        { KindKey, FormatVersionKey, SpecKey, OptimizerStateKey, AliasesKey, QuantizationKey };
}

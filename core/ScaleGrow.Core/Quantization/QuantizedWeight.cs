namespace ScaleGrow.Quantization;

/// <summary>
/// One quantized layer's weight as its checkpoint stores it, unpacked: codes in the weight's row-major order (the
/// matrix [out, columns], a conv seen as [out, in/G·kh·kw]), float32 scales and zero points per [out, grids]. What the
/// ONNX exporter writes, so that the exported file holds the same integers and dequantizes to the same floats.
/// </summary>
public sealed record QuantizedWeight
{
    public required string Name { get; init; }
    public required long[] WeightShape { get; init; }
    public required long ConvGroups { get; init; }
    public required int Bits { get; init; }

    /// <summary>Columns per grid (all columns for one grid per output row).</summary>
    public required long GroupWidth { get; init; }

    /// <summary>uint8 codes, [out, columns], original column order.</summary>
    public required byte[] Codes { get; init; }

    /// <summary>float32 [out, grids].</summary>
    public required float[] Scales { get; init; }

    /// <summary>uint8 zero points [out, grids].</summary>
    public required byte[] Zeros { get; init; }

    /// <summary>int64 [G, columns]: the grid of each column, only when grids follow a permuted order.</summary>
    public long[]? GroupIndex { get; init; }

    public long Rows => WeightShape[0];
    public long Columns => WeightShape.Skip(1).Aggregate(1L, (a, b) => a * b);
    public long Grids => (Columns + GroupWidth - 1) / GroupWidth;
}

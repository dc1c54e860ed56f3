using ScaleGrow.Quantization;

namespace ScaleGrow.Export;

/// <summary>
/// How a <see cref="QuantizedWeight"/> becomes one ONNX <c>DequantizeLinear</c> over the matrix [out, columns]:
/// one grid per row → per-axis (axis 0, scales [out]); grids of consecutive columns → blocked (axis 1, block_size =
/// group width, opset 21); grids in a permuted order (re-ordered GPTQ with groups) → the columns are stored in
/// quantization order so each grid is one block, and a <c>Gather</c> puts them back (one conv group), or, for
/// grouped convolutions whose groups each have their own order, the scales are expanded to one per element
/// (block_size 1). The integers and scales are the checkpoint's own, so the weight is reproduced bit for bit.
/// </summary>
internal static class OnnxDequantizeLayout
{
    public readonly record struct Data<T>(T[] Values, long[] Shape);

    public static (Data<byte> Codes, Data<float> Scales, Data<byte> Zeros, int Axis, long BlockSize, long[]? Order)
        OnnxLayout(this QuantizedWeight q)
    {
        long rows = q.Rows, columns = q.Columns, grids = q.Grids;
        var codes = new Data<byte>(q.Codes, [rows, columns]);
        if (grids == 1)
            return (codes, new Data<float>(q.Scales, [rows]), new Data<byte>(q.Zeros, [rows]), 0, 0, null);
        var scales = new Data<float>(q.Scales, [rows, grids]);
        var zeros = new Data<byte>(q.Zeros, [rows, grids]);
        if (q.GroupIndex is null) return (codes, scales, zeros, 1, q.GroupWidth, null);
        if (q.ConvGroups == 1)
        {
            // Columns sorted by their grid (stably): each grid becomes one consecutive block.
            var order = Enumerable.Range(0, (int)columns).OrderBy(j => q.GroupIndex[j]).ThenBy(j => j).ToArray();
            var permuted = new byte[q.Codes.Length];
            for (long r = 0; r < rows; r++)
                for (int k = 0; k < columns; k++)
                    permuted[r * columns + k] = q.Codes[r * columns + order[k]];
            var inverse = new long[columns];
            for (int k = 0; k < columns; k++) inverse[order[k]] = k;
            return (new Data<byte>(permuted, [rows, columns]), scales, zeros, 1, q.GroupWidth, inverse);
        }
        // Per-conv-group orders: one scale and zero point per element.
        long rowsPerGroup = rows / q.ConvGroups;
        var fullScales = new float[rows * columns];
        var fullZeros = new byte[rows * columns];
        for (long r = 0; r < rows; r++)
        {
            long g = r / rowsPerGroup;
            for (long j = 0; j < columns; j++)
            {
                long grid = q.GroupIndex[g * columns + j];
                fullScales[r * columns + j] = q.Scales[r * grids + grid];
                fullZeros[r * columns + j] = q.Zeros[r * grids + grid];
            }
        }
        return (codes, new Data<float>(fullScales, [rows, columns]), new Data<byte>(fullZeros, [rows, columns]), 1, 1,
            null);
    }
}

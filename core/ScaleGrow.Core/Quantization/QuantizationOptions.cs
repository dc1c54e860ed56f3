using System.Text.Json;

namespace ScaleGrow.Quantization;

/// <summary>The names of the weight quantization methods (thesis chapter 4).</summary>
public static class QuantizationMethods
{
    /// <summary>Round-to-nearest on a uniform grid, no error compensation (the thesis's "直接量化", table 4-1).</summary>
    public const string Rtn = "rtn";

    /// <summary>OBS/GPTQ error compensation in natural column order (thesis 4.2.1, formulas 4-1..4-3).</summary>
    public const string Gptq = "gptq";

    /// <summary>The thesis's method (4.2.2): GPTQ in an order fixed before quantization — most-overlapped kernel
    /// positions of fused convolutions first, then by the importance (quant(w)−w)²/[H⁻¹]_pp.</summary>
    public const string GptqReorder = "gptq-reorder";

    /// <summary>Beyond the thesis (its stated future work): like <see cref="GptqReorder"/>, but the columns not yet
    /// quantized are ranked again after every block, with the compensated weights and the inverse Hessian of the
    /// remaining columns.</summary>
    public const string GptqReorderDynamic = "gptq-reorder-dynamic";

    public static IReadOnlyList<string> All { get; } = [Rtn, Gptq, GptqReorder, GptqReorderDynamic];

    /// <summary>Whether the method needs calibration inputs (every method but <see cref="Rtn"/>).</summary>
    public static bool NeedsCalibration(string method) => method != Rtn;

    /// <summary>Whether the method quantizes columns in an importance order it computes itself.</summary>
    public static bool Reorders(string method) => method is GptqReorder or GptqReorderDynamic;
}

/// <summary>
/// How weights are quantized (thesis chapter 4). Defaults: the thesis's method at its headline width (W4, table 4-1),
/// and the GPTQ reference's settings for everything the thesis leaves open — per-output-channel grids
/// (groupsize −1), asymmetric min/max grids, no act-order, blocks of 128 columns, 1% dampening.
/// </summary>
/// <remarks>
/// Asymmetric is the default because the fused kernels of grown CNNs are skewed (thesis 4.1, figure 4-2: the centre
/// taps are amplified by every branch that overlaps there), so a grid spanning [min, max] of a row wastes fewer levels
/// than one spanning [−max|w|, max|w|]; the zero point costs one byte per row or group. Both grids contain 0 exactly,
/// so zero weights (and dead columns) stay exactly zero.
/// </remarks>
public sealed record QuantizationOptions
{
    /// <summary><c>rtn</c>, <c>gptq</c>, <c>gptq-reorder</c> (the thesis's method, 4.2.2) or
    /// <c>gptq-reorder-dynamic</c>.</summary>
    public string Method { get; set; } = QuantizationMethods.GptqReorder;

    /// <summary>Bits per weight, 2..8 (the thesis reports 8 and 4, table 4-1; 3 is GPTQ's other main width).</summary>
    public int Bits { get; set; } = 4;

    /// <summary>0: one grid per output channel (GPTQ reference default). Otherwise the number of consecutive input
    /// columns (in quantization order, see <see cref="StaticGroups"/>) that share a grid.</summary>
    public int GroupSize { get; set; }

    /// <summary>Symmetric max-|w| grid with a fixed zero point instead of the asymmetric min/max grid.</summary>
    public bool Symmetric { get; set; }

    /// <summary>GPTQ's act-order: quantize columns by descending Hessian diagonal. Only for <c>gptq</c>; the
    /// re-ordering methods compute their own order.</summary>
    public bool ActOrder { get; set; }

    /// <summary>With groups and a permuted order: compute every group's grid up front from the weights of the group in
    /// ORIGINAL column order (GPTQ's static-groups trick), instead of from the next <see cref="GroupSize"/> columns in
    /// quantization order when they are reached (the default, with the permutation stored).</summary>
    public bool StaticGroups { get; set; }

    /// <summary>Columns per lazy batch update (GPTQ reference: 128). With groups it is rounded up to a multiple of the
    /// group size so that a group never straddles two blocks.</summary>
    public int BlockSize { get; set; } = 128;

    /// <summary>Dampening λ as a fraction of the mean Hessian diagonal (GPTQ reference: 0.01).</summary>
    public double PercentDamp { get; set; } = 0.01;

    /// <summary>Calibration samples (images or sequences) whose layer inputs form the Hessians. 512 keeps the
    /// Hessian of a classifier head with up to 512 input features full rank.</summary>
    public int CalibrationSamples { get; set; } = 512;

    /// <summary>Seed for drawing the calibration samples from a dataset (the quantization itself is deterministic).
    /// </summary>
    public long Seed { get; set; } = 1;

    /// <summary>Throws <see cref="InvalidSpecException"/> naming the first field that is out of range.</summary>
    public void Validate()
    {
        static void Check(bool ok, string message)
        {
            if (!ok) throw new InvalidSpecException("quantization: " + message);
        }
        Check(Method is not null && QuantizationMethods.All.Contains(Method),
            $"method must be one of {string.Join(", ", QuantizationMethods.All)}, got '{Method}'");
        Check(Bits is >= 2 and <= 8, $"bits must be in 2..8, got {Bits}");
        Check(GroupSize == 0 || GroupSize is >= 2 and <= 65536,
            $"groupSize must be 0 (per output channel) or in 2..65536, got {GroupSize}");
        Check(BlockSize is >= 1 and <= 65536, $"blockSize must be in 1..65536, got {BlockSize}");
        Check(double.IsFinite(PercentDamp) && PercentDamp is > 0 and <= 1,
            $"percentDamp must be in (0, 1], got {PercentDamp}");
        Check(CalibrationSamples is >= 1 and <= 1_000_000,
            $"calibrationSamples must be in 1..1000000, got {CalibrationSamples}");
        Check(!ActOrder || Method == QuantizationMethods.Gptq,
            $"actOrder applies to method gptq only; '{Method}' fixes its own column order");
        Check(!StaticGroups || GroupSize > 0, "staticGroups needs a groupSize > 0");
    }

    public string ToJson() => JsonSerializer.Serialize(this, QuantizationJson.Default.QuantizationOptions);

    /// <summary>Reads and validates options; <paramref name="source"/> names the file or field in errors.</summary>
    public static QuantizationOptions FromJson(string json, string source) =>
        SpecJson.Parse(json, QuantizationJson.Default.QuantizationOptions, source, "not valid quantization options",
            "quantization options are null", options => options.Validate());
}

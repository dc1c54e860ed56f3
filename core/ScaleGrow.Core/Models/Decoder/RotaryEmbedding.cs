using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Models.Decoder;

/// <summary>
/// Rotary position embedding (Su et al. 2021) in Hugging Face Llama's convention: the head dimension is split in two
/// halves, and dimension i of the first half rotates with dimension i of the second (<c>rotate_half</c>), not adjacent
/// pairs as in Meta's original code — so Hugging Face weights load without permuting Q and K. Frequencies
/// θ^(−2i/d), optionally rescaled as Llama 3.1 does (<see cref="RopeScaling"/>).
/// </summary>
public static class RotaryEmbedding
{
    /// <summary>The inverse frequencies (d/2), float32, as Hugging Face computes them.</summary>
    public static Tensor InverseFrequencies(DecoderSpec spec)
    {
        int d = spec.HeadDim;
        var exponents = torch.arange(0, d, 2, dtype: ScalarType.Int64).to_type(ScalarType.Float32) / d; // host: see Tables
        var inv = 1.0f / torch.pow(torch.tensor((float)spec.RopeTheta), exponents); // host: (d/2), see Tables
        if (spec.RopeScaling is not { } s) return inv;
        double lowWavelength = s.OriginalMaxPositions / s.LowFreqFactor;
        double highWavelength = s.OriginalMaxPositions / s.HighFreqFactor;
        var wavelength = 2 * Math.PI / inv;
        var scaled = torch.where(wavelength > lowWavelength, inv / s.Factor, inv);
        var smooth = (s.OriginalMaxPositions / wavelength - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
        var smoothed = (1 - smooth) * scaled / s.Factor + smooth * scaled;
        var medium = (wavelength >= highWavelength).logical_and(wavelength <= lowWavelength);
        return torch.where(medium, smoothed, scaled);
    }

    /// <summary>cos and sin tables (T, d) for positions 0…T−1: [freqs, freqs] over the two halves.</summary>
    public static (Tensor Cos, Tensor Sin) Tables(DecoderSpec spec, long length, Device? device = null)
    {
        var inv = InverseFrequencies(spec);
        // host: the tables are computed on the CPU in float32, exactly as Hugging Face does, then moved to the device.
        var positions = torch.arange(length, dtype: ScalarType.Float32); // host: as above
        var freqs = torch.outer(positions, inv);                                           // (T, d/2)
        var angles = torch.cat([freqs, freqs], -1);                                        // (T, d)
        var cos = angles.cos();
        var sin = angles.sin();
        return device is null ? (cos, sin) : (cos.to(device), sin.to(device));
    }

    /// <summary>Rotates (B, H, T, d) queries or keys by their positions: x·cos + rotate_half(x)·sin.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long half = x.shape[^1] / 2;
        var x1 = x[.., .., .., TensorIndex.Slice(0, half)];
        var x2 = x[.., .., .., TensorIndex.Slice(half)];
        var rotated = torch.cat([-x2, x1], -1);                                            // rotate_half
        return x * cos + rotated * sin;
    }
}

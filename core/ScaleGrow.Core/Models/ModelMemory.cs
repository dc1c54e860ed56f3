using System.Globalization;

namespace ScaleGrow.Models;

/// <summary>
/// What a spec will cost in memory, computed from the spec alone (no tensor is made), and the limit a spec must stay
/// under before anything is built. A run spec or a checkpoint's spec is user input: a 122 KB checkpoint whose spec
/// claimed width 8,192 made <c>inspect</c> take 9.4 GB, and a head of 2^31 − 1 classes crashed in native code
/// (issue 16). Float32 throughout: 4 bytes a parameter or activation.
/// </summary>
/// <param name="ParameterBytes">The model's parameters (and batch-norm statistics are negligible beside them).</param>
/// <param name="ActivationBytesPerSample">The activations one sample keeps for a training step's backward pass (every
/// layer's output); evaluation needs less, so this is an upper bound for it.</param>
public sealed record ModelMemory(long Parameters, long ParameterBytes, long ActivationBytesPerSample)
{
    /// <summary>Environment setting of the limit, in bytes (suffixes K, M, G, T: powers of 1024).</summary>
    public const string LimitSetting = "SCALEGROW_MAX_MODEL_BYTES";

    private const long BytesPerValue = 4;

    /// <summary>Parameters and activations of <paramref name="spec"/>; a spec whose sizes overflow 64-bit counts is
    /// an <see cref="InvalidSpecException"/>.</summary>
    public static ModelMemory Of(ArchitectureSpec spec)
    {
        var stats = ModelStats.Of(spec);
        try
        {
            long activations = checked(ActivationsPerSample(spec) * BytesPerValue);
            return new ModelMemory(stats.Parameters, checked(stats.Parameters * BytesPerValue), activations);
        }
        catch (OverflowException)
        {
            throw new InvalidSpecException($"{spec.ArchString}: its activation sizes overflow 64-bit counts");
        }
    }

    /// <summary>
    /// The limit: <see cref="LimitSetting"/> when set, else half the memory this process may use (physical memory,
    /// or the container's limit) — room for the model, its data and one copy while loading.
    /// </summary>
    public static long DefaultLimit()
    {
        string? setting = Environment.GetEnvironmentVariable(LimitSetting);
        if (!string.IsNullOrWhiteSpace(setting)) return ParseBytes(setting, LimitSetting);
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return Math.Max(1L << 28, available / 2);
    }

    /// <summary>Refuses a spec whose parameters, or whose activations for a batch of <paramref name="batchSize"/>,
    /// exceed <paramref name="limitBytes"/> (default: <see cref="DefaultLimit"/>), with a one-line error.</summary>
    public static ModelMemory EnsureWithinLimit(ArchitectureSpec spec, int batchSize, string where,
        long? limitBytes = null)
    {
        long limit = limitBytes ?? DefaultLimit();
        var memory = Of(spec);
        string setting = limitBytes is null ? $" ({LimitSetting})" : "";
        if (memory.ParameterBytes > limit)
            throw new InvalidSpecException(
                $"{where}: {spec.ArchString} has {memory.Parameters:N0} parameters " +
                $"({Format(memory.ParameterBytes)}), " +
                $"over the {Format(limit)} model memory limit{setting}");
        double activations = (double)memory.ActivationBytesPerSample * Math.Max(1, batchSize);
        if (activations > limit)
            throw new InvalidSpecException(
                $"{where}: {spec.ArchString} needs {Format(activations)} of activations for a batch of {batchSize} " +
                $"({Format(memory.ActivationBytesPerSample)} a sample), over the {Format(limit)} model memory " +
                $"limit{setting}");
        return memory;
    }

    /// <summary>"123456", "512M", "8G", "1.5T" (powers of 1024) as bytes.</summary>
    public static long ParseBytes(string text, string what)
    {
        string s = text.Trim();
        double unit = 1;
        if (s.Length > 0 && char.IsAsciiLetter(s[^1]))
        {
            unit = char.ToUpperInvariant(s[^1]) switch
            {
                'K' => 1L << 10,
                'M' => 1L << 20,
                'G' => 1L << 30,
                'T' => 1L << 40,
                _ => 0,
            };
            s = s[..^1];
        }
        if (unit == 0 || !double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) ||
            !(value * unit >= 1) || value * unit > long.MaxValue / 2)
            throw new InvalidSpecException($"{what}: '{text}' is not a size in bytes (e.g. 8G, 512M, 1000000)");
        return (long)(value * unit);
    }

    public static string Format(double bytes) => bytes switch
    {
        >= 1L << 40 => $"{bytes / (1L << 40):0.0} TiB",
        >= 1L << 30 => $"{bytes / (1L << 30):0.0} GiB",
        >= 1L << 20 => $"{bytes / (1L << 20):0.0} MiB",
        _ => $"{bytes / 1024:0.0} KiB",
    };

    /// <summary>Values of every layer output for one sample (the input included), the memory a backward pass holds.
    /// </summary>
    private static long ActivationsPerSample(ArchitectureSpec spec) =>
        ModelFamilies.TryFor(spec)?.ActivationsPerSample(spec) ?? 0;
}

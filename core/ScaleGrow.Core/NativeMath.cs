using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ScaleGrow;

/// <summary>
/// Keeps libtorch's CPU convolutions correct on AMD processors with AVX-512 (Zen 4 / Zen 5). On the 2-core AMD EPYC
/// (family 26, Zen 5, under a hypervisor) these builds and CI run on, oneDNN 3.7.1 (inside libtorch 2.10) computes
/// convolutions wrongly with its vector JIT kernels. Probe: 1,840 conv2d shapes (batch 1–32, 1–32 channels in, 5–32
/// out, 3–28 pixels, 1×1 and 3×3, dense and depthwise), float32 against a float64 reference that does not use oneDNN:
/// <list type="bullet">
/// <item>oneDNN's own choice (AVX-512): forward right, but input gradients wrong — 216 shapes finite but off by 15–19
/// (measured against float64 gradients), and 29–54 more NaN or infinite, a different set every run: training
/// diverged at random, ~30 tests failed in every suite run, and every CNN trained here learned from partly wrong
/// gradients;</item>
/// <item>capped at AVX2, AVX2_VNNI or AVX: 80 shapes with a wrong forward result (errors of 15–25 on outputs of that
/// size; every 12-channel input), and still 6–10 with bad gradients; AVX512_CORE_VNNI: 14 bad gradients;</item>
/// <item>capped at SSE4.1: 0 wrong and 0 non-finite in every run, forward and backward; a 20-step VGG workload
/// 1.1–2.1× the uncapped time, and real CNN epochs about 2× (quick preset: 70 s against 33–38 s); oneDNN switched
/// off altogether (ATen's im2col path): also right, but slower still (2.5×).</item>
/// </list>
/// So this caps oneDNN at SSE4.1 (<c>ONEDNN_MAX_CPU_ISA=SSE41</c>) on AMD CPUs with AVX-512. Zen 4 is included
/// unmeasured: speed is a better thing to lose than correct gradients.
/// <para>
/// oneDNN reads the variable once, at its first primitive, from the native environment — .NET's
/// <see cref="Environment.SetEnvironmentVariable(string, string)"/> does not reach that on Linux, so this calls libc's
/// <c>setenv</c>. It runs as this assembly's module initializer, i.e. before any ScaleGrow code can build a model;
/// hosts whose first tensor may come before any ScaleGrow type call <see cref="Configure"/> first. A value the user
/// set (<c>ONEDNN_MAX_CPU_ISA</c> or the older <c>DNNL_MAX_CPU_ISA</c>) is never overridden. Other CPUs are left alone.
/// </para>
/// </summary>
public static class NativeMath
{
    private static int _configured;

    /// <summary>What <see cref="Configure"/> decided, for logs and reports (e.g. "oneDNN capped at SSE4.1 (AMD CPU with AVX-512: …)").</summary>
    public static string Decision { get; private set; } = "not configured";

    [ModuleInitializer]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2255", Justification = "Must run before libtorch's first convolution in every host; see the class comment.")]
    internal static void ConfigureOnLoad() => Configure();

    /// <summary>Applies the oneDNN ISA cap where it is needed. Idempotent; call before the first tensor operation.</summary>
    public static void Configure()
    {
        if (Interlocked.Exchange(ref _configured, 1) == 1) return;
        Decision = Decide(
            ReadCpuInfo(),
            Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA"),
            Environment.GetEnvironmentVariable("DNNL_MAX_CPU_ISA"),
            out var cap);
        if (cap is null) return;
        try
        {
            if (setenv("ONEDNN_MAX_CPU_ISA", cap, 0) != 0)
                Decision = "oneDNN ISA not capped: libc setenv failed";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            Decision = "oneDNN ISA not capped: libc setenv unavailable";
        }
    }

    /// <summary>
    /// The decision as a pure function of /proc/cpuinfo's text and the two variables: returns the log line and sets
    /// <paramref name="cap"/> to the ISA to cap oneDNN at, or null to leave it alone.
    /// </summary>
    public static string Decide(string? cpuInfo, string? oneDnnIsa, string? dnnlIsa, out string? cap)
    {
        cap = null;
        var userValue = !string.IsNullOrEmpty(oneDnnIsa) ? oneDnnIsa : dnnlIsa;
        if (!string.IsNullOrEmpty(userValue)) return $"oneDNN ISA set by the environment ({userValue})";
        if (cpuInfo is null) return "oneDNN ISA left to oneDNN (no /proc/cpuinfo)";
        var amd = false;
        var avx512 = false;
        foreach (var line in cpuInfo.Split('\n'))
        {
            var colon = line.IndexOf(':');
            if (colon < 0) continue;
            var key = line[..colon].Trim();
            var value = line[(colon + 1)..];
            if (key == "vendor_id") amd |= value.Trim() == "AuthenticAMD";
            else if (key == "flags") avx512 |= value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains("avx512f");
        }
        if (!(amd && avx512)) return "oneDNN ISA left to oneDNN";
        cap = "SSE41";
        return "oneDNN capped at SSE4.1 (AMD CPU with AVX-512: its vector convolution kernels give wrong results there)";
    }

    private static string? ReadCpuInfo()
    {
        try
        {
            return OperatingSystem.IsLinux() && File.Exists("/proc/cpuinfo") ? File.ReadAllText("/proc/cpuinfo") : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int setenv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
}

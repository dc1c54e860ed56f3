using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Tests;

public class NativeMathTests
{
    private const string Zen5 = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nflags\t\t: fpu sse avx2 avx512f avx512bw\n";
    private const string Zen3 = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nflags\t\t: fpu sse avx2\n";
    private const string IntelAvx512 = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu avx2 avx512f\n";

    [Theory]
    [InlineData(Zen5, null, null, "SSE41")]
    [InlineData(Zen3, null, null, null)]
    [InlineData(IntelAvx512, null, null, null)]
    [InlineData(Zen5, "AVX512_CORE", null, null)]
    [InlineData(Zen5, null, "AVX512_CORE", null)]
    [InlineData(null, null, null, null)]
    public void OneDnnIsCappedAtSse41OnlyOnAmdWithAvx512AndNeverOverTheUsersChoice(string? cpuInfo, string? oneDnn, string? dnnl, string? expectedCap)
    {
        var decision = NativeMath.Decide(cpuInfo, oneDnn, dnnl, out var cap);
        Assert.Equal(expectedCap, cap);
        Assert.False(string.IsNullOrWhiteSpace(decision));
        if ((oneDnn ?? dnnl) is { } user) Assert.Contains(user, decision);
    }

    /// <summary>
    /// The faults <see cref="NativeMath"/> works around, checked on whatever CPU runs the suite: float32 convolutions
    /// against a float64 reference (which does not go through oneDNN), forward and backward, dense and depthwise. On the
    /// Zen 5 build machine, uncapped, 29–39 of the probe's 1,840 shapes had non-finite input gradients in every run; capped
    /// at AVX2, every 12-channel input gave a wrong forward result.
    /// </summary>
    [Fact]
    public void ConvolutionsMatchAFloat64ReferenceAndHaveFiniteGradients()
    {
        torch.manual_seed(3);
        var bad = new List<string>();
        foreach (var batch in new[] { 1, 32 })
            foreach (var inChannels in new[] { 1, 8, 12, 32 })
                foreach (var outChannels in new[] { 8, 16, 32 })
                    foreach (var size in new[] { 3, 12, 28 })
                        foreach (var kernel in new[] { 1, 3 })
                            foreach (var depthwise in new[] { false, true })
                            {
                                if (depthwise && outChannels % inChannels != 0) continue;
                                var groups = depthwise ? inChannels : 1;
                                using var scope = torch.NewDisposeScope();
                                var x = torch.randn(batch, inChannels, size, size).requires_grad_(true);
                                var w = torch.randn(outChannels, inChannels / groups, kernel, kernel).requires_grad_(true);
                                var padding = new long[] { kernel / 2, kernel / 2 };
                                var y = nn.functional.conv2d(x, w, padding: padding, groups: groups);
                                var reference = nn.functional.conv2d(x.detach().to(float64), w.detach().to(float64), padding: padding, groups: groups);
                                var error = (y.detach().to(float64) - reference).abs().max().item<double>();
                                y.sum().backward();
                                var finite = x.grad!.isfinite().all().item<bool>() && w.grad!.isfinite().all().item<bool>();
                                if (!(error < 1e-3) || !finite)
                                    bad.Add($"{batch}x{inChannels}x{size}x{size} * {outChannels}x{inChannels / groups}x{kernel}x{kernel}" +
                                            $" groups {groups}: forward error {error:g3}{(finite ? "" : ", non-finite gradients")}");
                            }
        Assert.True(bad.Count == 0, $"{bad.Count} wrong convolutions ({NativeMath.Decision}): {string.Join("; ", bad.Take(8))}");
    }
}

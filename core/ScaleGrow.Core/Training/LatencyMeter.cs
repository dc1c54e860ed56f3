using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Training;

/// <summary>CPU inference latency: median wall time of repeated eval-mode forward passes after warm-up.</summary>
public static class LatencyMeter
{
    public static double MedianMilliseconds(nn.Module<Tensor, Tensor> model, long[] inputShape, int warmup = 3,
        int repeats = 15) => MedianMilliseconds(model, () => torch.randn(inputShape), warmup, repeats);

    /// <summary>Latency for an input made by <paramref name="input"/> (e.g. token ids for text models).</summary>
    public static double MedianMilliseconds(nn.Module<Tensor, Tensor> model, Func<Tensor> input, int warmup = 3,
        int repeats = 15)
    {
        model.eval();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var x = input();
        for (int i = 0; i < warmup; i++)
        {
            using var s = torch.NewDisposeScope();
            model.forward(x);
        }
        var times = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            using var s = torch.NewDisposeScope();
            var clock = Stopwatch.StartNew();
            model.forward(x);
            times[i] = clock.Elapsed.TotalMilliseconds;
        }
        Array.Sort(times);
        return repeats % 2 == 1 ? times[repeats / 2] : (times[repeats / 2 - 1] + times[repeats / 2]) / 2;
    }
}

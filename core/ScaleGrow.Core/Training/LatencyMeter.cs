using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Training;

/// <summary>
/// Inference latency on the model's device: median wall time of repeated eval-mode forward passes after warm-up (on
/// a GPU each pass waits for the device, so the time is the pass's, not its launch's).
/// </summary>
public static class LatencyMeter
{
    public static double MedianMilliseconds(nn.Module<Tensor, Tensor> model, long[] inputShape, int warmup = 3,
        int repeats = 15) => MedianMilliseconds(model, () => torch.randn(inputShape), warmup, repeats); // host: placed below

    /// <summary>Latency for an input made by <paramref name="input"/> (e.g. token ids for text models).</summary>
    public static double MedianMilliseconds(nn.Module<Tensor, Tensor> model, Func<Tensor> input, int warmup = 3,
        int repeats = 15, ComputeDevice? device = null)
    {
        model.eval();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        device ??= ComputeDevice.Of(model);
        var x = device.Input(input());
        for (int i = 0; i < warmup; i++)
        {
            using var s = torch.NewDisposeScope();
            model.forward(x);
        }
        device.Synchronize();
        var times = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            using var s = torch.NewDisposeScope();
            var clock = Stopwatch.StartNew();
            model.forward(x);
            device.Synchronize();
            times[i] = clock.Elapsed.TotalMilliseconds;
        }
        Array.Sort(times);
        return repeats % 2 == 1 ? times[repeats / 2] : (times[repeats / 2 - 1] + times[repeats / 2]) / 2;
    }
}

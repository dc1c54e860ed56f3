using System.Diagnostics;
using ScaleGrow.Models;
using ScaleGrow.Runs;
using ScaleGrow.Training;
using TorchSharp;

namespace ScaleGrow.Sweeps;

/// <summary>
/// Seconds per training epoch of a fixed-size spec on this machine, from a few timed steps on random data of the
/// run's shape: what gives the fixed baselines the growth runs' wall time as a number of epochs (bench §3, and a
/// sweep's <c>budget.trialSeconds</c>).
/// </summary>
public static class EpochProbe
{
    public static double SecondsPerEpoch(RunSpec spec)
    {
        using var scope = torch.NewDisposeScope();
        using var lease = RunData.Lease(spec);
        var data = lease.Data;
        var arch = data.BuildArchitecture(spec.Model);
        torch.manual_seed(1);
        var model = ModelFactory.Create(arch);
        var device = ComputeDevice.Resolve(spec.Device); // the trial's time per epoch, on the trial's device
        device.Place(model.Module);
        try
        {
            using var optimizer = new NamedOptimizer(model.Module.named_parameters(), spec.Training);
            var x = data.SampleInput(spec.Training.BatchSize);
            var y = torch.randint(0, data.NumClasses, spec.Training.BatchSize); // host: the trainer places batches
            var schedule = new LearningRateSchedule(0.01, 0, 0, 0);
            // Timed in the precision the run will use there: bf16/fp16 on a GPU, fp32 where a CPU falls back to it.
            var precision = device.IsCuda ? spec.Training.Precision : TrainingPrecision.Fp32;
            using var mixed = precision == TrainingPrecision.Fp32 ? null
                : new MixedPrecision(model.Module, () => ModelFactory.Create(arch).Module, precision);
            Trainer.TrainEpoch(model.Module, optimizer, schedule, Enumerable.Repeat((x, y), 2), mixed: mixed);
            var clock = Stopwatch.StartNew();
            Trainer.TrainEpoch(model.Module, optimizer, schedule, Enumerable.Repeat((x, y), 8), mixed: mixed);
            double perStep = clock.Elapsed.TotalSeconds / 8;
            long steps = data.TrainBatchCount(spec.Training.BatchSize);
            return perStep * steps * 1.08; // + validation, roughly
        }
        finally
        {
            (model.Module as IDisposable)?.Dispose();
        }
    }
}

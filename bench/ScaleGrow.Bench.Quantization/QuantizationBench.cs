using System.Diagnostics;
using ScaleGrow.Checkpoints;
using ScaleGrow.Data;
using ScaleGrow.Models;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Quantization;
using ScaleGrow.Training;

namespace ScaleGrow.Bench.Quantization;

public sealed record BenchSettings
{
    public required List<(string Name, string Path)> Models { get; init; }
    public string? DataDirectory { get; init; }
    public required List<int> Bits { get; init; }
    public required List<string> Methods { get; init; }
    public required List<int> Seeds { get; init; }
    public required int CalibrationSamples { get; init; }
    public int? TestLimit { get; init; }

    /// <summary>Also write gptq-reorder checkpoints with F16 scales (first seed) to measure the scale format.</summary>
    public bool ScalesCheck { get; init; }

    /// <summary>Ablation of thesis 4.2.2's overlap-first rule: re-ordering methods get no overlap maps, and their rows
    /// are labelled "(no overlap)".</summary>
    public bool NoOverlap { get; init; }

    public required string Results { get; init; }
    public string? StandIns { get; init; }
    public required string Command { get; init; }
}

/// <summary>One model's float reference: measured once, after the fusion the runner also applies.</summary>
public sealed record ModelReference(string Name, string Path, string Arch, long Parameters, double Accuracy,
    long Fp32Bytes, long InputBytes, long TestSamples);

/// <summary>One quantization of one model.</summary>
public sealed record BenchRun(string Model, int Bits, string Method, int Seed, ScaleFormat Scales, double Accuracy,
    long Bytes, double QuantizeSeconds, double? MeanRelativeError, double? MaxRelativeError);

public sealed record BenchResults(List<ModelReference> Models, List<BenchRun> Runs, long CalibrationPool,
    string TestSet);

/// <summary>Runs every (model, bits, method, seed) through the product's <see cref="QuantizationRunner"/>: calibration
/// drawn from the training split with the seed, accuracy of the checkpoint loaded back, on a fixed test set.
/// </summary>
public static class QuantizationBench
{
    public static BenchResults Run(BenchSettings s)
    {
        using var data = DatasetLoader.Load(new DatasetSpec(Directory: s.DataDirectory, TestLimit: s.TestLimit));
        var calibration = s.Seeds.ToDictionary(seed => seed,
            seed => CalibrationSet.FromTrainingSplit(data, s.CalibrationSamples, seed));
        var models = new List<ModelReference>();
        var runs = new List<BenchRun>();
        try
        {
            foreach (var (name, path) in s.Models)
            {
                var bytes = File.ReadAllBytes(path);
                var reference = Reference(name, path, bytes, data);
                models.Add(reference);
                Console.Error.WriteLine($"{name}: {reference.Arch}, FP32 accuracy {reference.Accuracy:P2}, " +
                                        $"{reference.Fp32Bytes:N0} bytes");
                foreach (int bits in s.Bits)
                    foreach (var method in s.Methods)
                    {
                        // rtn reads no calibration data for its weights: one run is every seed's run.
                        var seeds = QuantizationMethods.NeedsCalibration(method) ? s.Seeds : s.Seeds.Take(1).ToList();
                        foreach (int seed in seeds)
                            runs.Add(Quantize(name, bytes, bits, method, seed, calibration[seed], data, s,
                                ScaleFormat.F32));
                    }
                if (s.ScalesCheck)
                    foreach (int bits in s.Bits)
                        runs.Add(Quantize(name, bytes, bits, QuantizationMethods.GptqReorder, s.Seeds[0],
                            calibration[s.Seeds[0]], data, s, ScaleFormat.F16));
            }
        }
        finally
        {
            foreach (var set in calibration.Values) set.Dispose();
        }
        return new BenchResults(models, runs, data.Train.Count, data.Test.Name + $" ({data.Test.Count} images)");
    }

    /// <summary>The method as results name it: re-ordering methods run without overlap maps are told apart.</summary>
    public static string Label(string method, BenchSettings s) =>
        s.NoOverlap && QuantizationMethods.Reorders(method) ? method + " (no overlap)" : method;

    private static ModelReference Reference(string name, string path, byte[] bytes, DataSplits data)
    {
        var (model, _) = ModelIO.LoadModel(bytes, path);
        IScaleGrowModel measured = model is CnnModel { Spec.Fused: false } cnn ? CnnFusion.Fuse(cnn) : model;
        try
        {
            var metrics = Trainer.Evaluate(measured.Module, data.EvalBatches(data.Test, 500).Epoch(0));
            return new ModelReference(name, path, measured.Spec.ArchString,
                ModelStats.CountParameters(measured.Module), metrics.Accuracy,
                ModelIO.SaveModel(measured).LongLength, bytes.LongLength, metrics.Samples);
        }
        finally
        {
            measured.Module.Dispose();
            if (!ReferenceEquals(measured, model)) model.Module.Dispose();
        }
    }

    private static BenchRun Quantize(string name, byte[] bytes, int bits, string method, int seed,
        CalibrationSet calibration, DataSplits data, BenchSettings s, ScaleFormat scales)
    {
        var clock = Stopwatch.StartNew();
        var result = new QuantizationRunner().Run(bytes, name, new QuantizationRunRequest
        {
            Options = new QuantizationOptions
            { Method = method, Bits = bits, CalibrationSamples = s.CalibrationSamples, Seed = seed },
            Calibration = calibration, EvaluationData = data, EvaluateBefore = false, UseOverlapMaps = !s.NoOverlap,
            Checkpoint = new QuantizedCheckpointOptions { Scales = scales },
        });
        var r = result.Report;
        Console.Error.WriteLine($"{name} W{bits} {method} seed {seed} {scales}: accuracy {r.AccuracyAfter:P2}, " +
                                $"{r.QuantizedBytes:N0} bytes, quantized in {r.QuantizeSeconds:0.0} s " +
                                $"({clock.Elapsed.TotalSeconds:0.0} s with evaluation)");
        return new BenchRun(name, bits, Label(method, s), seed, scales, r.AccuracyAfter!.Value, r.QuantizedBytes,
            r.QuantizeSeconds, r.Quantization.MeanRelativeError, r.Quantization.MaxRelativeError);
    }
}

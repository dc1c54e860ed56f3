using System.Diagnostics;
using System.Text.Json;
using ScaleGrow.Checkpoints;
using ScaleGrow.Data;
using ScaleGrow.Growth;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Training;
using TorchSharp;

namespace ScaleGrow.Bench.Quantization;

/// <summary>What a stand-in is and how it was trained, for the results file.</summary>
public sealed record StandInInfo(string Name, string File, string Arch, string Description, int Epochs,
    int TrainSamples, double Seconds, double ValidationAccuracy, string? Command = null);

/// <summary>
/// Small Fashion-MNIST models trained with the core <see cref="Trainer"/> in a few minutes, standing in for the lead's
/// checkpoints (<c>grow --preset fashion-resnet</c>, fused; <c>train --preset fashion-vgg11</c>) until those exist:
/// a "grown" ResNet whose units carry re-parameterizable branches drawn at random with replacement from the branch
/// space (as width growth adds them, thesis 3.3.3, table 3-18), saved fused; and a wider fixed VGG with plain
/// single-branch units.
/// </summary>
public static class StandIns
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static IReadOnlyList<StandInInfo> Train(string outDirectory, string? dataDirectory, int epochs,
        int trainLimit, string command)
    {
        Directory.CreateDirectory(outDirectory);
        using var data = DatasetLoader.Load(new DatasetSpec(Directory: dataDirectory, TrainLimit: trainLimit));
        var grownSpec = WithRandomBranches(CnnSpecs.Fixed(CnnFamily.ResNet, 10, [1, 2, 1], stageWidths: [32, 48, 64]),
            seed: 17);
        var baselineSpec = CnnSpecs.Fixed(CnnFamily.Vgg, 10, [2, 2, 2], stageWidths: [48, 96, 144]);
        var infos = new List<StandInInfo>
        {
            TrainOne("grown-standin", grownSpec, fuse: true, data, epochs, outDirectory,
                "ResNet with 1-3 random re-parameterizable branches per unit (a grown model's shape), saved fused")
                with { Command = command },
            TrainOne("baseline-standin", baselineSpec, fuse: false, data, epochs, outDirectory,
                "fixed VGG, single-branch units, about 3x the grown stand-in's parameters") with { Command = command },
        };
        File.WriteAllText(Path.Combine(outDirectory, "standins.json"),
            JsonSerializer.Serialize(infos, Indented));
        return infos;
    }

    /// <summary>Adds one to three branches to every unit, each drawn uniformly with replacement from the branch kinds
    /// that fit it, through the real width-growth operator.</summary>
    private static CnnSpec WithRandomBranches(CnnSpec spec, int seed)
    {
        var random = new Random(seed);
        var additions = new List<(int LayerId, string Unit, string Kind)>();
        foreach (var (role, index, layer) in spec.AllLayers())
        {
            var geometry = CnnGeometry.UnitsOf(spec, role, index);
            for (int u = 0; u < geometry.Count; u++)
            {
                var fitting = BranchKind.All.Where(k => k.FitsIn(geometry[u])).ToList();
                int count = random.Next(1, 4);
                for (int i = 0; i < count; i++)
                    additions.Add((layer.Id, geometry[u].Name, fitting[random.Next(fitting.Count)].Name));
            }
        }
        return CnnGrowthOperators.AddBranches(spec, additions, "bench stand-in").Spec;
    }

    private static StandInInfo TrainOne(string name, CnnSpec spec, bool fuse, DataSplits data, int epochs,
        string outDirectory, string description)
    {
        var clock = Stopwatch.StartNew();
        torch.manual_seed(1);
        using var model = new CnnModel(spec);
        // Table 3-18's CNN settings: SGD, LR 0.1, cosine.
        var options = new TrainingOptions();
        using var optimizer = new NamedOptimizer(model.named_parameters(), options);
        var loader = data.TrainBatches(options.BatchSize, seed: 2);
        var schedule = LearningRateSchedule.For(options, loader.BatchCount, epochs);
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            var metrics = Trainer.TrainEpoch(model, optimizer, schedule, loader.Epoch(epoch));
            Console.Error.WriteLine($"{name}: epoch {epoch + 1}/{epochs} loss {metrics.Loss:0.000} " +
                                    $"train accuracy {metrics.Accuracy:P1} ({metrics.Seconds:0} s)");
        }
        var validation = Trainer.Evaluate(model, data.EvalBatches(data.Validation, 500).Epoch(0));
        string file = Path.Combine(outDirectory, name + ".safetensors");
        if (fuse)
        {
            using var fused = CnnFusion.Fuse(model);
            File.WriteAllBytes(file, ModelIO.SaveModel(fused));
        }
        else
        {
            File.WriteAllBytes(file, ModelIO.SaveModel(model));
        }
        Console.Error.WriteLine($"{name}: {spec.ArchString}, validation accuracy {validation.Accuracy:P2}, " +
                                $"{clock.Elapsed.TotalSeconds:0} s -> {file}");
        return new StandInInfo(name, file, spec.ArchString, description, epochs, data.Train.Count,
            clock.Elapsed.TotalSeconds, validation.Accuracy);
    }
}

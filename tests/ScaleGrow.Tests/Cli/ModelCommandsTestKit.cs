using System.Diagnostics;
using ScaleGrow.Checkpoints;
using ScaleGrow.Models;
using ScaleGrow.Models.Cnn;
using TorchSharp;

namespace ScaleGrow.Tests.Cli;

/// <summary>Runs the built CLI (on checkpoints a test writes: eval, predict, inspect; or on runs); returns what it printed.</summary>
internal static class ModelCommandsTestKit
{
    public sealed record CliResult(int ExitCode, string Stdout, string Stderr);

    public static CliResult Run(params string[] args) => RunWith(new Dictionary<string, string>(), args);

    public static CliResult RunWith(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        using var p = Start(environment, args);
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(3)), $"scalegrow {string.Join(" ", args)} did not finish");
        return new CliResult(p.ExitCode, stdout, stderr.Result);
    }

    /// <summary>Starts the built CLI with stdout and stderr redirected (the caller reads them and waits).</summary>
    public static Process Start(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        info.ArgumentList.Add(CrashResumeTests.CliDll());
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["CI"] = "true";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) info.Environment[key] = value;
        return Process.Start(info)!;
    }

    /// <summary>A small randomly initialised VGG for 28×28 grey images (Fashion-MNIST's shape).</summary>
    public static CnnModel SmallVgg(int seed = 7)
    {
        torch.manual_seed(seed);
        return (CnnModel)ModelFactory.Create(CnnSpecs.Seed(CnnFamily.Vgg, 10, 1, 28, [8, 8, 8]));
    }

    /// <summary>The metadata a run on Fashion-MNIST writes: its input pipeline, with the well-known statistics.
    /// </summary>
    public static IReadOnlyDictionary<string, string> FashionMnistInput() => new Dictionary<string, string>
    {
        [ScaleGrow.Data.InputNormalization.MetadataKey] = new ScaleGrow.Data.InputNormalization
        {
            Dataset = ScaleGrow.Data.DatasetSpec.FashionMnist, Channels = 1, Height = 28, Width = 28,
            Mean = [0.286], Std = [0.353],
        }.ToJson(),
    };

    public static string Save(IScaleGrowModel model, string directory, string name,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        string path = Path.Combine(directory, name);
        File.WriteAllBytes(path, ModelIO.SaveModel(model, metadata));
        return path;
    }

    /// <summary>The logits of a predict CSV by row: (index, label, logits).</summary>
    public static List<(long Index, long Label, float[] Logits)> ReadCsv(string path) =>
        File.ReadAllLines(path).Skip(1).Select(line =>
        {
            var cells = line.Split(',');
            return (long.Parse(cells[0]), long.Parse(cells[1]),
                cells[2..].Select(c => float.Parse(c, System.Globalization.CultureInfo.InvariantCulture)).ToArray());
        }).ToList();
}

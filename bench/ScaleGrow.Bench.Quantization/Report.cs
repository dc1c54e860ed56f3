using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using ScaleGrow.Quantization;
using TorchSharp;

namespace ScaleGrow.Bench.Quantization;

/// <summary>Writes bench/RESULTS-quantization.md: how it was run, the tables, and the comparisons with the thesis's
/// table 4-1 that the numbers settle. A hand-written "## Discussion" section of an existing file is kept.</summary>
public static class Report
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    // Thesis table 4-1, AdaGrow-Basic-ResNet on CIFAR-10, W4A16: FP32 93.14, direct (rtn) 89.13, OBS 91.66, ours 92.98.
    private const double ThesisFp32 = 93.14, ThesisRtn = 89.13, ThesisObs = 91.66, ThesisReorder = 92.98;
    private const string DiscussionHeading = "## Discussion";

    public static void Write(BenchSettings s, BenchResults results, TimeSpan wall, TimeSpan cpu)
    {
        var md = new StringBuilder();
        md.AppendLine("# Quantization benchmark (issue 5, thesis chapter 4)");
        md.AppendLine();
        md.AppendLine($"Generated {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC by");
        md.AppendLine();
        md.AppendLine("```");
        md.AppendLine($"nice -n 10 {s.Command}");
        md.AppendLine("```");
        md.AppendLine();
        md.AppendLine($"- Machine: {Cpu()}, {Environment.ProcessorCount} cores shared with other jobs (load average " +
                      $"at the end {LoadAverage()}), {RuntimeInformation.OSDescription}, .NET " +
                      $"{Environment.Version}, TorchSharp CPU, {torch.get_num_threads()} intra-op thread(s).");
        md.AppendLine($"- Time: {wall.TotalMinutes:0.0} min wall, {cpu.TotalMinutes:0.0} min CPU for " +
                      $"{results.Runs.Count} quantizations and {results.Models.Count} float evaluations.");
        md.AppendLine($"- Calibration: {s.CalibrationSamples} images per seed drawn from the training split " +
                      $"({results.CalibrationPool} images; never the test split), seeds " +
                      $"{string.Join(", ", s.Seeds)}. rtn reads no calibration data for its weights, so it runs once " +
                      "(its spread is 0 by construction).");
        md.AppendLine($"- Test set: {results.TestSet}, the same images for every row; accuracy is that of the " +
                      "quantized checkpoint loaded back from its bytes.");
        md.AppendLine("- Grid: the defaults (asymmetric, one grid per output channel, blocks of 128 columns, 1% " +
                      "dampening); unfused models are fused first, as `scalegrow quantize` does.");
        md.AppendLine();
        if (s.StandIns is { } standIns && File.Exists(standIns)) AppendStandIns(md, standIns);

        foreach (var model in results.Models) AppendModel(md, model, results.Runs, s);
        AppendScales(md, results);
        AppendThesis(md, results);
        md.AppendLine(KeptDiscussion(s.Results) ?? $"{DiscussionHeading}\n\n(to be written after reading the numbers)");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(s.Results))!);
        File.WriteAllText(s.Results, md.ToString());
        File.WriteAllText(Path.ChangeExtension(s.Results, ".json"), JsonSerializer.Serialize(
            new { results.Models, results.Runs }, Indented));
    }

    private static void AppendStandIns(StringBuilder md, string path)
    {
        var infos = JsonSerializer.Deserialize<List<StandInInfo>>(File.ReadAllText(path))!;
        md.AppendLine("## Models");
        md.AppendLine();
        md.AppendLine("The lead's checkpoints (`grow --preset fashion-resnet`, `train --preset fashion-vgg11`) did " +
                      "not exist yet, so these are **stand-ins** trained by this program (`train-standins`) with the " +
                      "core Trainer on Fashion-MNIST (SGD 0.1, cosine, batch 128, default augmentation):");
        if (infos.Select(i => i.Command).FirstOrDefault(c => c is not null) is { } command)
        {
            md.AppendLine();
            md.AppendLine("```");
            md.AppendLine($"nice -n 10 {command}");
            md.AppendLine("```");
        }
        md.AppendLine();
        md.AppendLine("| stand-in | arch | what it is | epochs | train images | training time | validation acc. |");
        md.AppendLine("| --- | --- | --- | ---: | ---: | ---: | ---: |");
        foreach (var i in infos)
            md.AppendLine($"| {i.Name} | {i.Arch} | {i.Description} | {i.Epochs} | {i.TrainSamples} | " +
                          $"{i.Seconds / 60:0.0} min | {i.ValidationAccuracy * 100:0.00}% |");
        md.AppendLine();
    }

    private static void AppendModel(StringBuilder md, ModelReference model, List<BenchRun> all, BenchSettings s)
    {
        md.AppendLine($"## {model.Name}: {model.Arch}");
        md.AppendLine();
        md.AppendLine($"`{model.Path}`: {model.Parameters:N0} parameters after fusion, FP32 checkpoint " +
                      $"{model.Fp32Bytes:N0} bytes, FP32 accuracy **{model.Accuracy * 100:0.00}%** on " +
                      $"{model.TestSamples} test images.");
        md.AppendLine();
        md.AppendLine("| bits | method | accuracy % (mean ± sd) | min – max | Δ vs FP32 (points) | size (bytes) | " +
                      "× smaller | quantization s | mean / max layer error |");
        md.AppendLine("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        md.AppendLine($"| 32 | fp32 | {model.Accuracy * 100:0.00} | | | {model.Fp32Bytes:N0} | 1.00 | | |");
        foreach (int bits in s.Bits)
            foreach (var method in s.Methods.Select(m => QuantizationBench.Label(m, s)))
            {
                var runs = Runs(all, model.Name, bits, method);
                if (runs.Count == 0) continue;
                var acc = runs.Select(r => r.Accuracy * 100).ToList();
                md.AppendLine($"| {bits} | {method} | {acc.Average():0.00} ± {Sd(acc):0.00} | {acc.Min():0.00} – " +
                              $"{acc.Max():0.00} | {acc.Average() - model.Accuracy * 100:+0.00;-0.00;0.00} | " +
                              $"{runs[0].Bytes:N0} | {(double)model.Fp32Bytes / runs[0].Bytes:0.00} | " +
                              $"{runs.Average(r => r.QuantizeSeconds):0.0} | " +
                              $"{Error(runs.Average(r => r.MeanRelativeError))} / " +
                              $"{Error(runs.Average(r => r.MaxRelativeError))} |");
            }
        md.AppendLine();
    }

    private static void AppendScales(StringBuilder md, BenchResults results)
    {
        var f16 = results.Runs.Where(r => r.Scales == ScaleFormat.F16).ToList();
        if (f16.Count == 0) return;
        md.AppendLine("## Scale format: F32 vs F16 (gptq-reorder, first seed)");
        md.AppendLine();
        md.AppendLine("| model | bits | accuracy F32 scales | accuracy F16 scales | bytes F32 | bytes F16 | saved |");
        md.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var half in f16)
        {
            var full = results.Runs.First(r => r.Model == half.Model && r.Bits == half.Bits && r.Seed == half.Seed
                                               && r.Method == half.Method && r.Scales == ScaleFormat.F32);
            md.AppendLine($"| {half.Model} | {half.Bits} | {full.Accuracy * 100:0.00} | {half.Accuracy * 100:0.00} | " +
                          $"{full.Bytes:N0} | {half.Bytes:N0} | {(1 - (double)half.Bytes / full.Bytes) * 100:0.00}% |");
        }
        md.AppendLine();
    }

    private static void AppendThesis(StringBuilder md, BenchResults results)
    {
        md.AppendLine("## Against the thesis (table 4-1, W4A16)");
        md.AppendLine();
        md.AppendLine("Drops in accuracy points from FP32 at 4 bits (mean over seeds). The thesis measured " +
                      "AdaGrow-Basic-ResNet on CIFAR-10 with TensorRT/PyTorch; we measure Fashion-MNIST models on " +
                      "CPU in TorchSharp, so only the ordering and the rough size of the gaps are comparable.");
        md.AppendLine();
        md.AppendLine("| model | FP32 | rtn | gptq (OBS) | gptq-reorder | gptq-reorder-dynamic |");
        md.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: |");
        md.AppendLine($"| thesis: AdaGrow-Basic-ResNet, CIFAR-10 | {ThesisFp32:0.00} | " +
                      $"{ThesisRtn - ThesisFp32:+0.00;-0.00} | {ThesisObs - ThesisFp32:+0.00;-0.00} | " +
                      $"{ThesisReorder - ThesisFp32:+0.00;-0.00} | — |");
        foreach (var m in results.Models)
        {
            string Drop(string method) => Mean(results.Runs, m.Name, 4, method) is { } a
                ? $"{a - m.Accuracy * 100:+0.00;-0.00;0.00}" : "—";
            md.AppendLine($"| {m.Name} | {m.Accuracy * 100:0.00} | {Drop("rtn")} | {Drop("gptq")} | " +
                          $"{Drop("gptq-reorder")} | {Drop("gptq-reorder-dynamic")} |");
        }
        md.AppendLine();
        foreach (var m in results.Models)
        {
            double fp32 = m.Accuracy * 100;
            if (Mean(results.Runs, m.Name, 4, "gptq-reorder") is not { } reorder) continue;
            var rtn = Mean(results.Runs, m.Name, 4, "rtn");
            var gptq = Mean(results.Runs, m.Name, 4, "gptq");
            md.AppendLine($"- {m.Name}: W4 gptq-reorder is {fp32 - reorder:0.00} points below FP32 (target: within " +
                          $"0.5 — {(fp32 - reorder <= 0.5 ? "met" : "NOT met")})" +
                          (rtn is { } r ? $"; {reorder - r:+0.00;-0.00;0.00} points against rtn" : "") +
                          (gptq is { } g ? $"; {reorder - g:+0.00;-0.00;0.00} against plain gptq" : "") + ".");
            var dynamicGain = new List<double>();
            foreach (int bits in results.Runs.Select(x => x.Bits).Distinct())
            {
                var pairs = results.Runs.Where(x => x.Model == m.Name && x.Bits == bits && x.Scales == ScaleFormat.F32
                                                    && x.Method == "gptq-reorder-dynamic")
                    .Select(d => (d, results.Runs.FirstOrDefault(x => x.Model == m.Name && x.Bits == bits
                        && x.Seed == d.Seed && x.Method == "gptq-reorder" && x.Scales == ScaleFormat.F32)))
                    .Where(p => p.Item2 is not null).ToList();
                dynamicGain.AddRange(pairs.Select(p => (p.d.Accuracy - p.Item2!.Accuracy) * 100));
            }
            if (dynamicGain.Count > 0)
                md.AppendLine($"- {m.Name}: dynamic re-ranking minus static re-ordering, paired by bits and seed: " +
                              $"mean {dynamicGain.Average():+0.00;-0.00;0.00} points (sd {Sd(dynamicGain):0.00}, " +
                              $"{dynamicGain.Count(g => g > 0)} better / {dynamicGain.Count(g => g < 0)} worse / " +
                              $"{dynamicGain.Count(g => g == 0)} equal of {dynamicGain.Count}).");
        }
        md.AppendLine();
    }

    private static List<BenchRun> Runs(List<BenchRun> all, string model, int bits, string method) =>
        all.Where(r => r.Model == model && r.Bits == bits && r.Method == method && r.Scales == ScaleFormat.F32)
            .ToList();

    private static double? Mean(List<BenchRun> all, string model, int bits, string method) =>
        Runs(all, model, bits, method) is { Count: > 0 } runs ? runs.Average(r => r.Accuracy * 100) : null;

    private static double Sd(IReadOnlyList<double> values)
    {
        if (values.Count < 2) return 0;
        double mean = values.Average();
        return Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
    }

    private static string Error(double? e) => e is { } v ? v.ToString("0.0e+0") : "—";

    private static string? KeptDiscussion(string path)
    {
        if (!File.Exists(path)) return null;
        var text = File.ReadAllText(path);
        int at = text.IndexOf(DiscussionHeading, StringComparison.Ordinal);
        return at < 0 ? null : text[at..].TrimEnd() + Environment.NewLine;
    }

    private static string Cpu()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"));
            return line?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        }
        catch (IOException)
        {
            return "unknown CPU";
        }
    }

    private static string LoadAverage()
    {
        try
        {
            return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }
}

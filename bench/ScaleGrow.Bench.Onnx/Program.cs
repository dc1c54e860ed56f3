// Issue 20's ONNX benchmark (bench/RESULTS.md section 8).
//
//   dotnet run --project bench/ScaleGrow.Bench.Onnx -c Release -- latency [--threads 2] [--seed 1]
//       the grown architectures of RESULTS §3 and the fixed baselines, fused, random weights with set BN statistics:
//       batch-1 and batch-64 latency in TorchSharp and in ONNX Runtime, interleaved, same thread count
//   dotnet run --project bench/ScaleGrow.Bench.Onnx -c Release -- quantized --model FUSED.safetensors [--threads 2]
//       a trained fused checkpoint: fp32 / int8 / int4 (gptq-reorder, 256 calibration images of its training split)
//       exported to ONNX; test accuracy on the full Fashion-MNIST test set and latency, ORT and TorchSharp
//
// Prints markdown and appends it to bench/results/onnx-{date}.md.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using ScaleGrow;
using ScaleGrow.Checkpoints;
using ScaleGrow.Data;
using ScaleGrow.Export;
using ScaleGrow.Models;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Quantization;
using ScaleGrow.Runs;
using ScaleGrow.Training;
using TorchSharp;
using static TorchSharp.torch;

NativeMath.Configure();
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var mode = args.Length > 0 ? args[0] : "latency";
var options = new Dictionary<string, string>();
for (int i = 1; i + 1 < args.Length; i += 2) options[args[i].TrimStart('-')] = args[i + 1];
int threads = int.Parse(options.GetValueOrDefault("threads", "2"));
long seed = long.Parse(options.GetValueOrDefault("seed", "1"));
int rounds = int.Parse(options.GetValueOrDefault("rounds", "5"));
int repeats1 = int.Parse(options.GetValueOrDefault("repeats", "21"));
int repeats64 = int.Parse(options.GetValueOrDefault("repeats64", "5"));
torch.set_num_threads(threads);
var md = new StringBuilder();
void Say(string line)
{
    Console.WriteLine(line);
    md.AppendLine(line);
}

Say($"## ONNX bench: {mode}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
Say("");
Say($"command: `dotnet run --project bench/ScaleGrow.Bench.Onnx -c Release -- {string.Join(' ', args)}`  ");
Say($"machine: {ScaleGrow.Bench.BenchMachine.Describe()}, {Environment.ProcessorCount} cores, load average at start {ScaleGrow.Bench.BenchMachine.LoadAverage()}  ");
Say($"threads: TorchSharp {torch.get_num_threads()}, ONNX Runtime intra-op {threads}; {NativeMath.Decision}; seed {seed}");
Say("");

if (mode == "latency") Latency();
else if (mode == "quantized") Quantized(options.GetValueOrDefault("model") ?? throw new ArgumentException("--model"));
else throw new ArgumentException($"unknown mode {mode}");

string root = FindRoot();
string resultFile = Path.Combine(root, "bench", "results", $"onnx-{DateTime.UtcNow:yyyyMMdd}.md");
Directory.CreateDirectory(Path.GetDirectoryName(resultFile)!);
File.AppendAllText(resultFile, md + "\n");
Console.Error.WriteLine($"appended to {resultFile}");

void Latency()
{
    // §3's grown models (seeds 32-48-64 at half the thesis's widths; width growth adds branches, which fusion
    // removes, so the fused grown model is the plain network of its final architecture) and the fixed baselines.
    var models = new List<(string Name, CnnSpec Spec)>
    {
        ("grown VGG-6-0-0", CnnSpecs.Fixed(CnnFamily.Vgg, 10, [6, 0, 0], stageWidths: [32, 48, 64])),
        ("grown ResNet-6-0-0", CnnSpecs.Fixed(CnnFamily.ResNet, 10, [6, 0, 0], stageWidths: [32, 48, 64])),
        ("grown Bottleneck-6-0-0", CnnSpecs.Fixed(CnnFamily.Bottleneck, 10, [6, 0, 0], stageWidths: [32, 48, 64])),
        ("grown MobileNetV3-6-0-0", CnnSpecs.Fixed(CnnFamily.MobileNetV3, 10, [6, 0, 0], stageWidths: [16, 24, 32])),
        ("quick preset's VGG-1-1-1", CnnSpecs.Fixed(CnnFamily.Vgg, 10, [1, 1, 1], stageWidths: [24, 32, 48])),
        ("fixed VGG-11-style", CnnSpecs.Baseline("vgg11", 10)),
        ("fixed ResNet-18-style", CnnSpecs.Baseline("resnet18", 10)),
        ("fixed MobileNetV3-small-style", CnnSpecs.Baseline("mbv3-small", 10)),
    };
    Say("| model | params (fused) | TorchSharp b1 ms | ORT b1 ms | ORT/TS b1 | TorchSharp b64 ms | ORT b64 ms | ORT/TS b64 |");
    Say("|---|---:|---:|---:|---:|---:|---:|---:|");
    string? only = options.GetValueOrDefault("only");
    foreach (var (name, spec) in models.Where(m => only is null || m.Name.Contains(only, StringComparison.Ordinal)))
    {
        torch.manual_seed(seed);
        using var scope = torch.NewDisposeScope();
        using var unfused = new CnnModel(spec);
        SetNormStatistics(unfused, spec);
        using var fused = CnnFusion.Fuse(unfused);
        fused.eval();
        var bytes = ModelIO.SaveModel(fused);
        var export = OnnxExporter.ExportCheckpoint(bytes, name, new OnnxExportOptions());
        string path = Path.Combine(Path.GetTempPath(), $"onnx-bench-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, export.Bytes);
        try
        {
            using var ort = OnnxRuntimeModel.Load(path, threads);
            var (ts1, ort1) = Interleaved(fused, ort.Module, 1, rounds, repeats1);
            var (ts64, ort64) = Interleaved(fused, ort.Module, 64, rounds, repeats64);
            long parameters = fused.parameters().Sum(p => p.numel());
            using (var noGrad = torch.no_grad())
            {
                var probe = fused.forward(torch.randn(8, 1, 28, 28));
                Console.Error.WriteLine($"{name}: logits |max| {probe.abs().max().item<float>():G3}, " +
                                        $"smallest |logit| {probe.abs().min().item<float>():G3}");
            }
            Say($"| {name} ({spec.ArchString}) | {parameters:N0} | {ts1:0.000} | {ort1:0.000} | {ort1 / ts1:0.00} | " +
                $"{ts64:0.00} | {ort64:0.00} | {ort64 / ts64:0.00} |");
        }
        finally
        {
            File.Delete(path);
        }
    }
    Say("");
    Say($"Latency: median of {rounds} rounds; each round alternates the two runtimes, and each runtime's value in a " +
        $"round is the median of {repeats1} (batch 1) or {repeats64} (batch 64) timed forward passes after 3 warm-up " +
        "passes. " +
        "Random N(0,1) inputs.");
}

void Quantized(string modelPath)
{
    var checkpoint = File.ReadAllBytes(modelPath);
    var (model, metadata) = ModelIO.LoadModel(checkpoint, modelPath);
    using var data = ImageRunData.ForCheckpoint(metadata, new DatasetSpec(), modelPath).Data;
    var recorded = InputNormalization.FromMetadata(metadata, modelPath);
    using var train = DatasetLoader.Load(new DatasetSpec(), recorded);
    var rows = new List<(string Name, byte[] Checkpoint)> { ("fp32", checkpoint) };
    foreach (int bits in new[] { 8, 4 })
    {
        using var calibration = CalibrationSet.FromTrainingSplit(train, 256, seed);
        var result = new QuantizationRunner().Run(checkpoint, modelPath, new QuantizationRunRequest
        {
            Options = new QuantizationOptions { Bits = bits, CalibrationSamples = 256, Seed = seed },
            Calibration = calibration, EvaluateBefore = false,
        });
        rows.Add(($"int{bits} (gptq-reorder, per channel)", result.Checkpoint));
    }
    model.Module.Dispose();
    Say($"model: `{modelPath}` ({model.Spec.ArchString}), full Fashion-MNIST test set ({data.Splits.TestIndices.Count} images)");
    Say("");
    Say("| weights | checkpoint bytes | ONNX bytes | DequantizeLinear left after ORT's optimisation | TorchSharp acc | " +
        "ORT acc | max abs logit diff (first 500) | TorchSharp b1 ms | ORT b1 ms | TorchSharp b64 ms | ORT b64 ms |");
    Say("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    foreach (var (name, bytes) in rows)
    {
        var export = OnnxExporter.ExportCheckpoint(bytes, name, new OnnxExportOptions());
        string path = Path.Combine(Path.GetTempPath(), $"onnx-bench-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, export.Bytes);
        try
        {
            var (torchModel, _) = ModelIO.LoadModel(bytes, name);
            string optimized = path + ".optimized.onnx";
            using var ort = OnnxRuntimeModel.Load(path, threads, optimized);
            var graph = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimized)).Graph;
            int dequantizeNodes = graph.Node.Count(n => n.OpType == "DequantizeLinear");
            File.Delete(optimized);
            var torchAcc = Evaluation.Evaluate(torchModel, data, 500, false, default).Accuracy;
            var ortAcc = Evaluation.Evaluate(ort, data, 500, false, default).Accuracy;
            double diff = 0;
            using (var scope = torch.NewDisposeScope())
            using (var noGrad = torch.no_grad())
            {
                var (x, _) = data.TestBatches(500).First();
                torchModel.Module.eval();
                diff = (torchModel.Module.forward(x) - ort.Module.forward(x)).abs().max().item<float>();
            }
            var (ts1, ort1) = Interleaved(torchModel.Module, ort.Module, 1, rounds, repeats1);
            var (ts64, ort64) = Interleaved(torchModel.Module, ort.Module, 64, rounds, repeats64);
            Say($"| {name} | {bytes.Length:N0} | {export.Bytes.Length:N0} | {dequantizeNodes} | {torchAcc:P2} | " +
                $"{ortAcc:P2} | {diff:G3} | {ts1:0.000} | {ort1:0.000} | {ts64:0.00} | {ort64:0.00} |");
            torchModel.Module.Dispose();
        }
        finally
        {
            File.Delete(path);
        }
    }
    Say("");
}

(double Torch, double Ort) Interleaved(nn.Module<Tensor, Tensor> torchModel, nn.Module<Tensor, Tensor> ortModel,
    int batch, int rounds, int repeats)
{
    var t = new List<double>();
    var o = new List<double>();
    for (int r = 0; r < rounds; r++)
    {
        t.Add(LatencyMeter.MedianMilliseconds(torchModel, [batch, 1, 28, 28], warmup: 3, repeats: repeats));
        o.Add(LatencyMeter.MedianMilliseconds(ortModel, [batch, 1, 28, 28], warmup: 3, repeats: repeats));
        Console.Error.WriteLine($"  batch {batch} round {r}: TorchSharp {t[^1]:0.000} ms, ORT {o[^1]:0.000} ms");
    }
    return (Median(t), Median(o));
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
}

// Random γ/β and running statistics from a few train-mode passes on random inputs: realistic activation scales,
// as a trained model has (all-zero statistics would make the fused model degenerate).
static void SetNormStatistics(CnnModel model, CnnSpec spec)
{
    using var scope = torch.NewDisposeScope();
    using var noGrad = torch.no_grad();
    foreach (var bn in model.named_modules().Select(m => m.module).OfType<TorchSharp.Modules.BatchNorm2d>())
    {
        bn.weight!.uniform_(0.5, 1.5);
        bn.bias!.uniform_(-0.5, 0.5);
    }
    model.train();
    for (int i = 0; i < 3; i++) model.forward(torch.randn(16, spec.InputChannels, spec.ImageSize, spec.ImageSize));
    model.eval();
}

static string FindRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ScaleGrow.sln"))) dir = dir.Parent;
    return dir?.FullName ?? Directory.GetCurrentDirectory();
}


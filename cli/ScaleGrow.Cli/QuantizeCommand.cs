using System.Text.Json.Nodes;
using ScaleGrow.Checkpoints;
using ScaleGrow.Data;
using ScaleGrow.Quantization;
using ScaleGrow.Training;
using Spectre.Console;

namespace ScaleGrow.Cli;

/// <summary>
/// <c>scalegrow quantize</c>: a float checkpoint → a packed low-bit checkpoint (thesis chapter 4) and its report.
/// Calibration samples come from the training split of <c>--data</c>/<c>--dataset</c> (never the test split, which
/// measures accuracy before and after); without data the run falls back to rtn and says so.
/// </summary>
public static class QuantizeCommand
{
    private static readonly string[] Options =
        ["model", "out", "bits", "method", "group-size", "calib-samples", "data", "dataset", "seed", "limit", "scales", "device"];

    public static Task<int> ExecuteAsync(string[] args) => Task.FromResult(Execute(args));

    private static int Execute(string[] args)
    {
        var cl = CommandLine.Parse("quantize", args, Options, ["symmetric", "json"]);
        var output = new Output(cl.Flag("json"));
        string modelPath = cl.Require("model");
        string outPath = cl.Require("out");
        var defaults = new QuantizationOptions();
        int calibrationSamples = cl.Int("calib-samples", 0, 1_000_000) ?? defaults.CalibrationSamples;
        var options = new QuantizationOptions
        {
            Method = cl.Choice("method", [.. QuantizationMethods.All]) ?? defaults.Method,
            Bits = cl.Int("bits", 2, 8) ?? defaults.Bits,
            GroupSize = cl.Int("group-size", 0, 65536) ?? defaults.GroupSize,
            Symmetric = cl.Flag("symmetric"),
            CalibrationSamples = calibrationSamples > 0 ? calibrationSamples : defaults.CalibrationSamples,
            Seed = cl.Long("seed") ?? defaults.Seed,
        };
        options.Validate();
        var scales = cl.Choice("scales", "f32", "f16") == "f16" ? ScaleFormat.F16 : ScaleFormat.F32;
        int? limit = cl.Int("limit", 1);

        // Everything about the input is checked before the data is read.
        if (!File.Exists(modelPath)) throw new UsageException($"--model: no such file '{modelPath}'");
        var bytes = File.ReadAllBytes(modelPath);
        if (CheckpointCodec.ReadKind(bytes, modelPath) == CheckpointMetadata.QuantizedModelKind)
            throw new InvalidSpecException($"{modelPath}: is already quantized; quantize the float checkpoint it " +
                                           "was made from");
        var (probe, metadata) = ModelIO.LoadModel(bytes, modelPath);
        var spec = probe.Spec;
        probe.Module.Dispose();

        var notes = new List<string>();
        var recorded = InputNormalization.FromMetadata(metadata, modelPath);
        using var data = LoadData(cl, spec, recorded, modelPath, limit, notes);
        using var calibration = data is not null && calibrationSamples > 0
            ? CalibrationSet.FromTrainingSplit(data, calibrationSamples, options.Seed)
            : CalibrationSet.None();
        if (data is not null && calibrationSamples == 0) notes.Add("--calib-samples 0: no calibration data");
        var request = new QuantizationRunRequest
        {
            Options = options, Calibration = calibration, EvaluationData = data,
            Checkpoint = new QuantizedCheckpointOptions { Scales = scales },
            Device = ComputeDevice.Resolve(cl.Get("device") ?? "auto", "--device"),
        };

        var runner = new QuantizationRunner();
        QuantizationRunResult result;
        if (output.Interactive)
        {
            result = output.Progress.Progress().AutoClear(true)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                    new ElapsedTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("loading", maxValue: 1);
                    return runner.Run(bytes, modelPath, request, new Synchronous(p => Show(task, p)));
                });
        }
        else
        {
            result = runner.Run(bytes, modelPath, request, new Synchronous(p => Print(output, p)));
        }
        AtomicFile.Write(outPath, result.Checkpoint);
        var report = result.Report with { Notes = [.. notes, .. result.Report.Notes] };
        Describe(output, report, outPath);
        var json = JsonNode.Parse(report.ToJson())!.AsObject();
        json["out"] = outPath;
        output.Result(json);
        return 0;
    }

    /// <summary>The evaluation and calibration data: --dataset/--data, else the dataset the model's input suggests
    /// in its default folder; when that default is not installed the run goes on without data. Normalised with the
    /// statistics the checkpoint recorded (older checkpoints: the data's own, and a note says so).</summary>
    private static DataSplits? LoadData(CommandLine cl, Models.ArchitectureSpec spec, InputNormalization? recorded,
        string modelPath, int? limit, List<string> notes)
    {
        var family = Models.ModelFamilies.For(spec);
        if (family.ReadsText(spec))
        {
            notes.Add($"{spec.ArchString} reads text: no image calibration or test data; accuracy not measured here");
            return null;
        }
        bool named = cl.Get("data") is not null || cl.Get("dataset") is not null;
        string name = cl.Get("dataset") ?? recorded?.Dataset
                      ?? (family.InputShape(spec) is [3, _, _] ? DatasetSpec.Cifar10 : DatasetSpec.FashionMnist);
        var dataSpec = new DatasetSpec(Name: name, Directory: cl.Get("data"), TestLimit: limit);
        try
        {
            var data = DatasetLoader.Load(dataSpec, recorded);
            if (recorded is null)
                notes.Add($"{modelPath} does not record its input normalisation: calibrated and evaluated with the " +
                          $"statistics of this {name} training split");
            return data;
        }
        catch (ScaleGrowException e) when (!named && e is DataFormatException or InvalidSpecException)
        {
            notes.Add($"no data (default dataset {name} unavailable: {e.Message}); accuracy not measured");
            return null;
        }
    }

    private static void Show(ProgressTask task, QuantizationRunProgress p)
    {
        if (p.Layer is { } layer)
        {
            task.MaxValue = layer.Count;
            task.Description = $"layer {layer.Index + 1}/{layer.Count} {Markup.Escape(layer.Name)}";
            if (layer.Stage == LayerQuantizationStage.Quantized) task.Value = layer.Index + 1;
            return;
        }
        task.Description = Stage(p.Stage);
    }

    private static void Print(Output output, QuantizationRunProgress p)
    {
        if (p.Layer is { Stage: LayerQuantizationStage.Quantized } layer)
            output.Progress.MarkupLine($"[grey]layer {layer.Index + 1}/{layer.Count} " +
                                       $"{Markup.Escape(layer.Name)}: relative error " +
                                       $"{FormatError(layer.RelativeError)}, {layer.Seconds:0.00} s[/]");
        else if (p.Layer is null && p.Stage != QuantizationRunStage.Done)
            output.Progress.MarkupLine($"[grey]{Stage(p.Stage)}[/]");
    }

    private static string Stage(QuantizationRunStage stage) => stage switch
    {
        QuantizationRunStage.Loading => "loading the checkpoint",
        QuantizationRunStage.EvaluatingBefore => "measuring the float model on the test split",
        QuantizationRunStage.Quantizing => "quantizing",
        QuantizationRunStage.Writing => "packing the checkpoint",
        QuantizationRunStage.EvaluatingAfter => "measuring the quantized checkpoint on the test split",
        _ => "done",
    };

    private static void Describe(Output output, QuantizationRunReport r, string outPath)
    {
        var q = r.Quantization;
        string grid = (q.GroupSize > 0 ? $", groups of {q.GroupSize}" : ", per channel") +
                      (q.Symmetric ? ", symmetric" : "");
        output.Line($"[bold]{Markup.Escape(r.Arch)}[/] ({Markup.Escape(r.Source)}) → {q.Method} W{q.Bits}{grid}, " +
                    $"{q.CalibrationSamples} calibration samples");
        if (r.AccuracyBefore is { } before && r.AccuracyAfter is { } after)
            output.Line($"accuracy {before:P2} → [green]{after:P2}[/] ({(after - before) * 100:+0.00;-0.00;0.00} " +
                        $"points) on {r.TestSamples} test samples");
        output.Line($"size {r.Fp32Bytes:N0} → {r.QuantizedBytes:N0} bytes ({r.SizeRatio:0.00}× smaller); " +
                    $"quantization {r.QuantizeSeconds:0.0} s, total {r.TotalSeconds:0.0} s");
        var table = new Table().AddColumns("layer", "kind", "shape", "rel. error", "seconds");
        foreach (var layer in q.Layers)
            table.AddRow(Markup.Escape(layer.Name), layer.Kind.ToString(), string.Join("x", layer.Shape),
                FormatError(layer.RelativeError), $"{layer.Seconds:0.00}");
        output.Human.Write(table);
        foreach (var note in r.Notes) output.Line($"[yellow]note:[/] {Markup.Escape(note)}");
        output.Line($"wrote {Markup.Escape(outPath)}");
    }

    private static string FormatError(double? error) => error is { } e ? e.ToString("0.00e+0") : "-";

    /// <summary>Reports on the caller's thread, in order (System.Progress would post to the thread pool).</summary>
    private sealed class Synchronous(Action<QuantizationRunProgress> report) : IProgress<QuantizationRunProgress>
    {
        public void Report(QuantizationRunProgress value) => report(value);
    }
}

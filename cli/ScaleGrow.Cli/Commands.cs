using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScaleGrow.Checkpoints;
using ScaleGrow.Data;
using ScaleGrow.Data.Text;
using ScaleGrow.Export;
using ScaleGrow.Families;
using ScaleGrow.Models;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Models.Decoder;
using ScaleGrow.Models.Transformer;
using ScaleGrow.Runs;
using ScaleGrow.Scaling;
using ScaleGrow.Training;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Cli;

/// <summary>The subcommands. Each parses its arguments, calls core, and prints (or emits one JSON object).</summary>
public static class Commands
{
    public const string Usage = """
        scalegrow — grow, scale and quantize neural networks (see README.md)

        usage: scalegrow <command> [options]      (every command takes --json and --threads N)

          grow      --preset NAME | --spec FILE [--data DIR] [--out DIR] [--seed N] [--run-id ID]
                    [--store DIR|CONNECTION] [--engine inprocess|azure-storage|direct] [--quantize BITS]
                    [--device auto|cpu|cuda|cuda:N]
                                              grow a network from a seed (AdaGrow) through the orchestration
          train     --preset NAME | --spec FILE [--data DIR] [--out DIR] [--seed N] [--epochs N] [...as grow]
                                              train a fixed-size network (e.g. --preset fashion-vgg11)
          eval      --model CKPT|FILE.onnx [--data DIR|FILE] [--dataset NAME] [--limit N] [--device D]
                                              (text models: their own data, or FILE; .onnx runs in ONNX Runtime)
          eval      --model CKPT|HF_DIR --choices FILE.jsonl [--normalize char|token|none]
                                              decoders: log-likelihood multiple choice ({"question", "choices", "answer"})
          predict   --model CKPT|FILE.onnx --data DIR --out FILE.csv [--dataset NAME] [--limit N]
          inspect   --model CKPT
          fuse      --model CKPT --out CKPT
          export    --model CKPT --format onnx --out FILE.onnx [--opset 18..21] [--batch dynamic|N]
                                              ONNX export (fused, float or quantized), checked in ONNX Runtime
          quantize  --model CKPT --out CKPT [--bits 2..8] [--method rtn|gptq|gptq-reorder|gptq-reorder-dynamic]
                    [--group-size G] [--symmetric] [--calib-samples N] [--data DIR] [--dataset NAME] [--seed N]
                    [--limit N] [--scales f32|f16] [--device D]   quantize weights into a packed low-bit checkpoint
          quantize-upload FILE [--bits B] [--method M] [--group-size G] [--calibration DATASET] [--export onnx] [--out DIR]
                    [--store ...] [--engine ...]   quantize-on-upload, locally: upload FILE, wait for the result
          sweep     --spec FILE [--parallel N] [--run-id ID] [--out DIR] [--store ...] [--engine inprocess|azure-storage]
                                              many runs as one resumable experiment: grid or random axes over spec
                                              fields, ASHA early stopping, sweep.json / sweep.md / pareto.png
          runs      list | show ID | stop ID | resume ID | delete ID [--store ...] [--engine ...]   (ID: a run or a sweep)
          scale     --model CKPT|HF_DIR --depth 2x|--layers N [--mapping ...] [--adapter ...] --out DIR
                                              ScaleNet: a deeper model sharing weights, with per-layer adapters
          presets                              list the presets

        Errors are one line on stderr; exit code 2 for bad arguments or input, 1 for internal errors.

        """;

    public static Task<int> RunAsync(string command, string[] args) => command switch
    {
        "grow" => RunCommand.ExecuteAsync("grow", args),
        "train" => RunCommand.ExecuteAsync("train", args),
        "runs" => RunsCommand.ExecuteAsync(args),
        "sweep" => SweepCommand.ExecuteAsync(args),
        "eval" => Task.FromResult(Eval(args)),
        "predict" => Task.FromResult(Predict(args)),
        "inspect" => Task.FromResult(Inspect(args)),
        "fuse" => Task.FromResult(Fuse(args)),
        "export" => ExportCommand.ExecuteAsync(args),
        "quantize" => QuantizeCommand.ExecuteAsync(args),
        "presets" => Task.FromResult(ListPresets(args)),
        "scale" => ScaleCommand.ExecuteAsync(args),
        "quantize-upload" => QuantizeUploadCommand.ExecuteAsync(args),
        _ => throw new UsageException($"unknown command '{command}' (try: scalegrow help)"),
    };

    private static int ListPresets(string[] args)
    {
        var cl = CommandLine.Parse("presets", args, [], ["json"]);
        var output = new Output(cl.Flag("json"));
        var table = new Table().AddColumns("preset", "kind", "model", "data", "what it is for");
        var list = new JsonArray();
        foreach (var p in Presets.All)
        {
            table.AddRow(p.Name, p.Spec.Kind.ToString().ToLowerInvariant(), Markup.Escape(p.Model),
                Markup.Escape(p.Data), Markup.Escape(p.Description));
            list.Add(new JsonObject
            {
                ["name"] = p.Name, ["kind"] = p.Spec.Kind.ToString().ToLowerInvariant(),
                ["description"] = p.Description
            });
        }
        output.Human.Write(table);
        output.Result(new JsonObject { ["presets"] = list });
        return 0;
    }

    /// <summary>A checkpoint, or an exported <c>.onnx</c> file run in ONNX Runtime (its metadata carries the spec,
    /// input normalisation and tokenizer, so the rest of eval/predict is the same).</summary>
    private static (IScaleGrowModel Model, IReadOnlyDictionary<string, string> Metadata) LoadModel(string path)
    {
        if (!File.Exists(path)) throw new UsageException($"--model: no such file '{path}'");
        if (OnnxRuntimeModel.IsOnnxPath(path))
        {
            var onnx = OnnxRuntimeModel.Load(path);
            return (onnx, onnx.Metadata);
        }
        return ModelIO.LoadModel(File.ReadAllBytes(path), path);
    }

    /// <summary>
    /// The evaluation data for a checkpoint. Text models: the text data they recorded (or --data, a
    /// label&lt;TAB&gt;text file), encoded with the tokenizer they carry. Images: --dataset, else the dataset the
    /// checkpoint recorded, else guessed from the model's input channels; normalised with the statistics the
    /// checkpoint recorded (an older checkpoint without them: the data's own, with a warning on stderr).
    /// </summary>
    private static (IRunData Data, string? Note) DataFor(IScaleGrowModel model,
        IReadOnlyDictionary<string, string> metadata, CommandLine cl, string path)
    {
        var family = ModelFamilies.For(model);
        if (family.ReadsText(model.Spec))
        {
            return (TextRunData.ForCheckpoint(metadata, cl.Get("data"), path), null);
        }
        string name = cl.Get("dataset") ?? InputNormalization.FromMetadata(metadata, path)?.Dataset ??
                      (family.InputShape(model.Spec) is [3, _, _] ? DatasetSpec.Cifar10 : DatasetSpec.FashionMnist);
        var spec = new DatasetSpec(Name: name, Directory: cl.Get("data"), TestLimit: cl.Int("limit", 1));
        spec.Validate();
        var (data, note) = ImageRunData.ForCheckpoint(metadata, spec, path);
        if (note is not null) Console.Error.WriteLine($"warning: {note}");
        return (data, note);
    }

    private static int Eval(string[] args)
    {
        var cl = CommandLine.Parse("eval", args, ["model", "data", "dataset", "limit", "choices", "normalize", "device"],
            ["json"]);
        var output = new Output(cl.Flag("json"));
        string path = cl.Require("model");
        if (cl.Get("choices") is { } choices) return EvalChoices(cl, output, path, choices);
        if (cl.Get("normalize") is not null) throw new UsageException("eval: --normalize goes with --choices");
        var device = ComputeDevice.Resolve(cl.Get("device") ?? "auto", "--device");
        var (model, metadata) = LoadModel(path);
        if (model is not OnnxRuntimeModel) device.Place(model.Module); // ONNX Runtime runs on the CPU
        var (data, note) = DataFor(model, metadata, cl, path);
        var result = Evaluation.Evaluate(model, data, 500, measureLatency: true, default);
        if (model is OnnxRuntimeModel) output.Line($"(ONNX Runtime, {Markup.Escape(path)})");
        output.Line(result.Perplexity is { } ppl
            ? $"[bold]{Markup.Escape(model.Spec.ArchString)}[/] on {result.Samples} test tokens of {Markup.Escape(data.Name)}: " +
              $"perplexity [green]{ppl:0.000}[/], next-token accuracy {result.Accuracy:P2}, loss {result.Loss:0.0000}"
            : $"[bold]{Markup.Escape(model.Spec.ArchString)}[/] on {result.Samples} test samples of {Markup.Escape(data.Name)}: " +
              $"accuracy [green]{result.Accuracy:P2}[/], loss {result.Loss:0.0000}");
        output.Line($"params {result.Parameters:N0}, FLOPs {result.Flops / 1e6:0.00} M, latency " +
                    $"{result.LatencyMsBatch1:0.00} ms (batch 1), {result.LatencyMsBatch64:0.00} ms (batch 64)");
        var json = JsonSerializer.SerializeToNode(result, CliJson.Default.EvaluationResult)!.AsObject();
        if (note is not null) json["warning"] = note;
        json["runtime"] = model is OnnxRuntimeModel ? "onnxruntime" : "torchsharp";
        output.Result(json);
        return 0;
    }

    /// <summary>
    /// Multiple-choice accuracy of a decoder (our checkpoint, or a Hugging Face Llama folder) on a JSONL file, scored
    /// by log-likelihood with the tokenizer the model carries (<see cref="MultipleChoiceEvaluator"/>).
    /// </summary>
    private static int EvalChoices(CommandLine cl, Output output, string path, string choicesFile)
    {
        var normalization = cl.Choice("normalize", "char", "token", "none") switch
        {
            "token" => LengthNormalization.PerToken,
            "none" => LengthNormalization.None,
            _ => LengthNormalization.PerCharacter,
        };
        var items = MultipleChoiceEvaluator.ReadJsonl(choicesFile);
        DecoderModel decoder;
        Func<string, IReadOnlyList<int>> encode;
        if (Directory.Exists(path))
        {
            var imported = HuggingFaceLlama.Import(path);
            decoder = imported.Model;
            var tokenizer = imported.Tokenizer?.Create() ??
                            throw new UsageException($"eval: {path} has no tokenizer file beside the model");
            encode = text => tokenizer.EncodeToIds(text).ToArray();
        }
        else
        {
            var (model, metadata) = LoadModel(path);
            decoder = DecoderModelFamily.AsDecoder(model) ?? throw new UsageException(
                $"eval: --choices needs a decoder (Llama-style) model; {path} is {model.Spec.ArchString}");
            encode = MultipleChoiceEvaluator.EncoderFrom(metadata, path);
        }
        using (decoder)
        {
            var result = MultipleChoiceEvaluator.Evaluate(decoder, items, encode, normalization);
            output.Line($"[bold]{Markup.Escape(decoder.Spec.ArchString)}[/] on {result.Items} questions of " +
                        $"{Markup.Escape(choicesFile)}: accuracy [green]{result.Accuracy:P2}[/] ({result.Correct} right, " +
                        $"log-likelihood per {cl.Get("normalize") ?? "char"})");
            output.Result(new JsonObject
            {
                ["arch"] = decoder.Spec.ArchString, ["items"] = result.Items, ["correct"] = result.Correct,
                ["accuracy"] = result.Accuracy, ["normalize"] = cl.Get("normalize") ?? "char",
                ["predictions"] = new JsonArray(result.Predictions.Select(p => (JsonNode)p).ToArray()),
            });
        }
        return 0;
    }

    private static int Predict(string[] args)
    {
        var cl = CommandLine.Parse("predict", args, ["model", "data", "dataset", "limit", "out"], ["json"]);
        var output = new Output(cl.Flag("json"));
        string outPath = cl.Require("out");
        string path = cl.Require("model");
        var (model, metadata) = LoadModel(path);
        if (cl.Get("data") is null) throw new UsageException("predict: --data is required");
        var (data, note) = DataFor(model, metadata, cl, path);
        int rows = Evaluation.WriteLogitsCsv(model, data, outPath);
        output.Line($"wrote {rows} rows of logits to {Markup.Escape(outPath)}");
        var json = new JsonObject { ["out"] = outPath, ["rows"] = rows, ["classes"] = data.NumClasses };
        if (note is not null) json["warning"] = note;
        output.Result(json);
        return 0;
    }

    private static int Inspect(string[] args)
    {
        var cl = CommandLine.Parse("inspect", args, ["model"], ["json"]);
        var output = new Output(cl.Flag("json"));
        var path = cl.Require("model");
        if (!File.Exists(path)) throw new UsageException($"--model: no such file '{path}'");
        var (model, metadata) = ModelIO.LoadModel(File.ReadAllBytes(path), path);
        var stats = ModelStats.Of(model.Spec);
        output.Line($"[bold]{Markup.Escape(model.Spec.ArchString)}[/]  ({Markup.Escape(path)})");
        output.Line($"parameters {stats.Parameters:N0} ({stats.ParametersFused:N0} after fusion), " +
                    $"FLOPs {stats.Flops / 1e6:0.00} M ({stats.FlopsFused / 1e6:0.00} M after fusion)");
        foreach (var (type, flops) in stats.FlopsByType) output.Line($"  {type,-10} {flops / 1e6,10:0.00} M FLOPs");
        foreach (var line in ModelFamilies.For(model).BranchLines(model.Spec)) output.Line("  " + line);
        output.Result(new JsonObject
        {
            ["arch"] = model.Spec.ArchString, ["parameters"] = stats.Parameters,
            ["parametersFused"] = stats.ParametersFused, ["flops"] = stats.Flops, ["flopsFused"] = stats.FlopsFused,
            ["flopsByType"] = JsonSerializer.SerializeToNode(stats.FlopsByType),
            ["spec"] = JsonNode.Parse(model.Spec.ToJson()),
            ["metadata"] = JsonSerializer.SerializeToNode(metadata.Where(kv => kv.Key != "scalegrow.spec")
                .ToDictionary(kv => kv.Key, kv => kv.Value)),
        });
        return 0;
    }

    private static int Fuse(string[] args)
    {
        var cl = CommandLine.Parse("fuse", args, ["model", "out"], ["json"]);
        var output = new Output(cl.Flag("json"));
        string outPath = cl.Require("out");
        string modelPath = cl.Require("model");
        if (File.Exists(modelPath))
        {
            // A quantized checkpoint holds packed integer weights: fusing happens on float kernels, before
            // quantization (thesis 4.1), so the order cannot be reversed here.
            string? kind;
            using (var header = File.OpenRead(modelPath)) kind = CheckpointCodec.ReadKind(header, modelPath);
            if (kind == CheckpointMetadata.QuantizedModelKind)
                throw new UsageException($"fuse: '{modelPath}' is a quantized checkpoint (kind '{kind}') and cannot " +
                                         "be fused; fuse the float checkpoint it was made from, then quantize the " +
                                         "fused one");
        }
        var (model, metadata) = LoadModel(modelPath);
        IScaleGrowModel fused = ModelFamilies.For(model).ToInferenceForm(model);
        // Carry what inference needs (a text model's tokenizer); the spec and overlap maps are rewritten.
        var bytes = ModelIO.SaveModel(fused, metadata.Where(kv => !kv.Key.StartsWith("scalegrow.spec") &&
                                                                  !kv.Key.StartsWith("scalegrow.overlap"))
            .ToDictionary(kv => kv.Key, kv => kv.Value));
        AtomicFile.Write(outPath, bytes);
        var before = ModelStats.Of(model.Spec);
        var after = ModelStats.Of(fused.Spec);
        output.Line($"fused {Markup.Escape(model.Spec.ArchString)}: {before.Parameters:N0} → {after.Parameters:N0} parameters, " +
                    $"wrote {Markup.Escape(outPath)}");
        output.Result(new JsonObject
        {
            ["out"] = outPath, ["arch"] = fused.Spec.ArchString,
            ["parametersBefore"] = before.Parameters, ["parametersAfter"] = after.Parameters
        });
        return 0;
    }
}

/// <summary>Writes a file so no reader ever sees it half-written (temp file in the same folder, then rename).</summary>
public static class AtomicFile
{
    public static void Write(string path, byte[] bytes)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = full + $".tmp-{Environment.ProcessId}";
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, full, overwrite: true);
    }
}

[System.Text.Json.Serialization.JsonSourceGenerationOptions(
    PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase, WriteIndented = false,
    UseStringEnumConverter = true,
    // A perplexity can overflow to infinity with finite logits; the result must still be written (as "Infinity").
    NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[System.Text.Json.Serialization.JsonSerializable(typeof(EvaluationResult))]
[System.Text.Json.Serialization.JsonSerializable(typeof(RunSummary))]
[System.Text.Json.Serialization.JsonSerializable(typeof(UploadOutcome))]
[System.Text.Json.Serialization.JsonSerializable(typeof(RunListing))]
[System.Text.Json.Serialization.JsonSerializable(typeof(IReadOnlyList<RunListing>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(ScaleGrow.Sweeps.SweepSummary))]
internal sealed partial class CliJson : System.Text.Json.Serialization.JsonSerializerContext;

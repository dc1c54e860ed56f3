using System.Globalization;
using System.Text.Json.Nodes;
using ScaleGrow.Checkpoints;
using ScaleGrow.Families;
using ScaleGrow.Models;
using ScaleGrow.Models.Adapters;
using ScaleGrow.Models.Decoder;
using ScaleGrow.Scaling;
using Spectre.Console;

namespace ScaleGrow.Cli;

/// <summary>
/// <c>scalegrow scale</c>: ScaleNet expansion only (issue 8) — a pretrained checkpoint or Hugging Face Llama folder
/// becomes a deeper model whose new layers share the pretrained tensors, with per-instance adapters. Writes our
/// checkpoint (shared tensors stored once) and, for decoders with <c>--hf</c>, the Hugging Face layout too.
/// </summary>
public static class ScaleCommand
{
    public const string Usage = """
          scale     --model CKPT|HF_DIR (--depth 2x | --layers N) [--mapping cyclic|stack|interleave-new]
                    [--adapter parallel-bottleneck|lora|none] [--rank R] [--where attention|mlp|both]
                    [--own-norms] [--seed N] --out DIR [--hf] [--json]
                                              deepen a pretrained Transformer with weight-shared layers (ScaleNet)
        """;

    public static Task<int> ExecuteAsync(string[] args)
    {
        var cl = CommandLine.Parse("scale", args,
            ["model", "depth", "layers", "mapping", "adapter", "rank", "where", "seed", "out"],
            ["own-norms", "hf", "json"]);
        var output = new Output(cl.Flag("json"));
        string modelPath = cl.Require("model"), outDir = cl.Require("out");
        var options = Options(cl);
        long seed = cl.Long("seed", 0) ?? 0;

        IScaleGrowModel pretrained;
        HuggingFaceTokenizer? tokenizer = null;
        var metadata = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (Directory.Exists(modelPath))
        {
            var imported = HuggingFaceLlama.Import(modelPath);
            pretrained = imported.Model;
            tokenizer = imported.Tokenizer;
        }
        else if (File.Exists(modelPath))
        {
            var (model, meta) = ModelIO.LoadModel(File.ReadAllBytes(modelPath), modelPath);
            pretrained = model;
            foreach (var (k, v) in meta) metadata[k] = v;
            if (meta.TryGetValue(HuggingFaceTokenizer.MetadataKey, out var json))
                tokenizer = HuggingFaceTokenizer.FromJson(json, modelPath);
        }
        else
        {
            throw new UsageException($"scale: --model '{modelPath}' is neither a checkpoint file nor a folder");
        }
        if (cl.Flag("hf") && DecoderModelFamily.AsDecoder(pretrained) is null)
            throw new UsageException("scale: --hf needs a decoder (Llama-style) model");

        var (expanded, expansion) = ScaleNetExpander.Expand(pretrained, options, seed);
        Directory.CreateDirectory(outDir);
        if (tokenizer is not null) metadata[HuggingFaceTokenizer.MetadataKey] = tokenizer.ToJson();
        metadata["scalegrow.scalenet"] = new JsonObject
        {
            ["from"] = Path.GetFullPath(modelPath), ["mapping"] = Name(options.Mapping),
            ["instances"] = new JsonArray(expansion.Mapping.Select(m => (JsonNode)new JsonObject
            {
                ["layer"] = m.LayerId, ["source"] = m.SourceLayerId, ["shared"] = m.Shared,
            }).ToArray()),
        }.ToJsonString();
        string checkpoint = Path.Combine(outDir, "model.safetensors");
        AtomicFile.Write(checkpoint, ModelIO.SaveModel(expanded, metadata));
        var files = new List<string> { checkpoint };
        if (cl.Flag("hf"))
            files.AddRange(HuggingFaceLlama.Export(DecoderModelFamily.AsDecoder(expanded)!, Path.Combine(outDir, "hf"),
                    tokenizer)
                .Select(f => Path.Combine(outDir, "hf", f)));

        double extra = 100.0 * (expansion.ParametersAfter - expansion.ParametersBefore) / expansion.ParametersBefore;
        var sequence = expansion.Mapping.Select(m => m.Shared ? $"L{m.SourceLayerId}'" : $"L{m.LayerId}");
        output.Line($"[bold]{Markup.Escape(expansion.ArchBefore)}[/] → " +
                    $"[bold]{Markup.Escape(expansion.ArchAfter)}[/], mapping {Name(options.Mapping)}: " +
                    string.Join(" ", sequence));
        output.Line($"unique parameters {expansion.ParametersBefore:N0} → {expansion.ParametersAfter:N0} " +
                    $"(+{extra.ToString("0.00", CultureInfo.InvariantCulture)}%), adapters " +
                    $"{Markup.Escape(Describe(options))}");
        foreach (var f in files) output.Line($"wrote {Markup.Escape(f)}");
        output.Result(new JsonObject
        {
            ["archBefore"] = expansion.ArchBefore, ["archAfter"] = expansion.ArchAfter,
            ["mapping"] = Name(options.Mapping),
            ["layers"] = new JsonArray(expansion.Mapping.Select(m => (JsonNode)new JsonObject
            {
                ["layer"] = m.LayerId, ["source"] = m.SourceLayerId, ["shared"] = m.Shared,
            }).ToArray()),
            ["parametersBefore"] = expansion.ParametersBefore, ["parametersAfter"] = expansion.ParametersAfter,
            ["adapter"] = Describe(options), ["files"] = new JsonArray(files.Select(f => (JsonNode)f!).ToArray()),
        });
        return Task.FromResult(0);
    }

    private static ScaleNetOptions Options(CommandLine cl)
    {
        string? depth = cl.Get("depth");
        int? layers = cl.Int("layers", 1, 1024);
        if (depth is not null && layers is not null)
            throw new UsageException("scale: give --depth or --layers, not both");
        double factor = 2;
        if (depth is not null)
        {
            string number = depth.EndsWith('x') ? depth[..^1] : depth;
            if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out factor) ||
                !double.IsFinite(factor) || factor < 1 || factor > 64)
                throw new UsageException($"scale: --depth must be a factor like 2x (1x..64x), got '{depth}'");
        }
        var defaults = new ScaleNetOptions();
        return new ScaleNetOptions
        {
            TargetLayers = layers, DepthFactor = factor,
            Mapping = cl.Choice("mapping", "cyclic", "stack", "interleave-new") switch
            {
                "stack" => LayerMappingKind.Stack,
                "interleave-new" => LayerMappingKind.InterleaveNew,
                "cyclic" => LayerMappingKind.Cyclic,
                _ => defaults.Mapping,
            },
            Adapter = cl.Choice("adapter", "parallel-bottleneck", "lora", "none") switch
            {
                "parallel-bottleneck" => AdapterKind.ParallelBottleneck,
                "lora" => AdapterKind.Lora,
                "none" => AdapterKind.None,
                _ => defaults.Adapter,
            },
            Rank = cl.Int("rank", 1, 65536) ?? defaults.Rank,
            Where = cl.Choice("where", "attention", "mlp", "both") switch
            {
                "attention" => AdapterPlacement.Attention,
                "mlp" => AdapterPlacement.Mlp,
                "both" => AdapterPlacement.Both,
                _ => defaults.Where,
            },
            OwnNorms = cl.Flag("own-norms"),
        };
    }

    private static string Name(LayerMappingKind kind) => kind switch
    {
        LayerMappingKind.Stack => "stack",
        LayerMappingKind.InterleaveNew => "interleave-new",
        _ => "cyclic",
    };

    private static string Describe(ScaleNetOptions o) => o.Adapter switch
    {
        AdapterKind.None => o.OwnNorms ? "none (own norms)" : "none",
        _ => $"{(o.Adapter == AdapterKind.Lora ? "lora" : "parallel-bottleneck")} r{o.Rank} on " +
             $"{o.Where.ToString().ToLowerInvariant()}{(o.OwnNorms ? ", own norms" : "")}",
    };
}

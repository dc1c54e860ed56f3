using System.Text.Json;
using System.Text.Json.Serialization;
using Google.Protobuf;
using Onnx;
using ScaleGrow.Checkpoints;
using ScaleGrow.Data;
using ScaleGrow.Data.Text;
using ScaleGrow.Models;
using ScaleGrow.Models.Adapters;
using ScaleGrow.Quantization;
using ScaleGrow.Scaling;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Export;

/// <summary>Options of an ONNX export (docs/deploy.md).</summary>
public sealed record OnnxExportOptions
{
    /// <summary>Opsets the exporter writes: 18 (ReduceMean with axes as input, Split with num_outputs) to 21
    /// (blocked and 4-bit DequantizeLinear). 21 is the default: ONNX Runtime 1.32 runs it, and it is the first opset
    /// with blocked (grouped) weight quantization.</summary>
    public const int MinOpset = 18, MaxOpset = 21, DefaultOpset = 21;

    public int Opset { get; init; } = DefaultOpset;

    /// <summary>A fixed batch size, or null for a dynamic batch dimension ("batch").</summary>
    public int? Batch { get; init; }

    public void Validate()
    {
        if (Opset is < MinOpset or > MaxOpset)
            throw new InvalidSpecException($"opset must be in {MinOpset}..{MaxOpset}, got {Opset}");
        if (Batch is { } b && b is < 1 or > 1 << 20)
            throw new InvalidSpecException($"batch must be 'dynamic' or an integer in 1..{1 << 20}, got {b}");
    }
}

/// <summary>What an export wrote and what it did on the way (fusion, quantized layers), for the CLI to report.
/// </summary>
public sealed record OnnxExportResult
{
    public required byte[] Bytes { get; init; }
    public required string Arch { get; init; }
    public required string InputName { get; init; }
    public required long[] InputShape { get; init; }
    public int Opset { get; init; }

    /// <summary>Multi-branch units that were fused before export (0 when the checkpoint was fused).</summary>
    public int FusedUnits { get; init; }

    /// <summary>Layers exported as integer codes + DequantizeLinear.</summary>
    public int QuantizedLayers { get; init; }

    public int Bits { get; init; }

    /// <summary>The tokenizer JSON (text models), to write beside the model.</summary>
    public string? Tokenizer { get; init; }

    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>Where the tokenizer goes beside an exported file: <c>model.onnx</c> → <c>model.tokenizer.json</c>.
    /// </summary>
    public static string TokenizerPathFor(string onnxPath) =>
        (onnxPath.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) ? onnxPath[..^5] : onnxPath) +
        ".tokenizer.json";
}

/// <summary>
/// ONNX export of every family ScaleGrow trains (issue 20): the model's forward pass as standard ONNX operators
/// (default domain only), the weights inside under the checkpoint's parameter names, and the checkpoint's metadata —
/// architecture spec, input normalisation (<c>scalegrow.input</c>: stated, not folded, see docs/deploy.md), tokenizer,
/// quantization settings — as ONNX metadata, so <c>scalegrow eval</c> can run the file alone. Unfused CNN checkpoints
/// are fused first (and the result says so); quantized checkpoints keep their integer codes behind
/// <c>DequantizeLinear</c>.
/// </summary>
public static class OnnxExporter
{
    public const string InputName = "input";
    public const string OutputName = "logits";
    public const string ExportKey = "scalegrow.export";

    /// <summary>Metadata keys copied from the checkpoint into the ONNX file.</summary>
    private static readonly string[] CarriedKeys =
    [
        CheckpointMetadata.SpecKey, InputNormalization.MetadataKey, TextTokenizer.MetadataKey, TextDatasetSpec.MetadataKey,
        CheckpointMetadata.QuantizationKey, HuggingFaceTokenizer.MetadataKey,
    ];

    /// <summary>Exports a checkpoint (float or quantized) given as bytes; <paramref name="source"/> names it in errors.
    /// </summary>
    public static OnnxExportResult ExportCheckpoint(byte[] bytes, string source, OnnxExportOptions options)
    {
        options.Validate();
        IScaleGrowModel model;
        IReadOnlyDictionary<string, string> metadata;
        IReadOnlyDictionary<string, QuantizedWeight>? packed = null;
        if (CheckpointCodec.ReadKind(bytes, source) == CheckpointMetadata.QuantizedModelKind)
        {
            var loaded = QuantizedCheckpoint.Load(bytes, source, keepPackedWeights: true);
            (model, metadata, packed) = (loaded.Model, loaded.Metadata, loaded.PackedWeights);
        }
        else
        {
            (model, metadata) = ModelIO.LoadModel(bytes, source);
        }
        using (model.Module)
            return Export(model, metadata, options, packed, source);
    }

    /// <summary>Exports a model with the metadata of its checkpoint. <paramref name="quantized"/>: the packed weights
    /// of a quantized checkpoint (<see cref="LoadedQuantizedModel.PackedWeights"/>).</summary>
    public static OnnxExportResult Export(IScaleGrowModel model, IReadOnlyDictionary<string, string> metadata,
        OnnxExportOptions options, IReadOnlyDictionary<string, QuantizedWeight>? quantized = null,
        string source = "model")
    {
        options.Validate();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var notes = new List<string>();
        int fusedUnits = 0;
        IScaleGrowModel exported = model;
        IScaleGrowModel? fusedCopy = null;
        var family = ModelFamilies.For(model);
        if (!family.IsInferenceForm(model))
        {
            if (quantized is { Count: > 0 })
                throw new UnsupportedLayerException($"{source}: a quantized checkpoint of an unfused CNN cannot be " +
                                                    "exported; quantize the fused checkpoint");
            fusedUnits = family.FusibleUnits(model);
            fusedCopy = family.ToInferenceForm(model);
            exported = fusedCopy;
            notes.Add($"fused {fusedUnits} multi-branch units into plain convolutions before export (the function " +
                      "is unchanged; `scalegrow fuse` writes the fused checkpoint)");
        }
        try
        {
            exported.Module.eval();
            var spec = exported.Spec;
            var builder = new OnnxGraphBuilder(spec.ArchString, exported.Module.state_dict(), options.Opset,
                quantized);
            object batch = options.Batch is { } n ? (long)n : "batch";
            var graph = (family as IOnnxExportableFamily ?? throw new UnsupportedLayerException(
                    $"{source}: models of kind {spec.GetType().Name} have no ONNX export"))
                .EmitOnnx(builder, exported, InputName, batch);
            var (inputShape, logits, outputDims) = (graph.InputShape, graph.Logits, graph.OutputDimensions);
            builder.Output(logits, OutputName, TensorProto.Types.DataType.Float, outputDims);
            EnsureEveryParameterIsUsed(builder, spec, source);

            var proto = new ModelProto
            {
                IrVersion = (long)Onnx.Version.IrVersion2024325, ProducerName = "scalegrow",
                ProducerVersion = typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "0",
                Graph = builder.Graph, DocString = DocString(spec, metadata),
            };
            proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = options.Opset });
            foreach (var key in CarriedKeys)
            {
                string? value = key == CheckpointMetadata.SpecKey ? spec.ToJson() : metadata.GetValueOrDefault(key);
                if (value is not null) proto.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
            }
            int bits = quantized is { Count: > 0 } ? quantized.Values.Max(q => q.Bits) : 32;
            if (metadata.ContainsKey(InputNormalization.MetadataKey))
                notes.Add("the input's normalisation is stated in the metadata (scalegrow.input), not folded: " +
                          "feed (pixels / 255 − mean) / std");
            var exportInfo = new OnnxExportInfo
            {
                Normalization = metadata.ContainsKey(InputNormalization.MetadataKey) ? "metadata" : "none",
                FusedUnits = fusedUnits, QuantizedLayers = quantized?.Count ?? 0, WeightBits = bits,
                Batch = options.Batch?.ToString() ?? "dynamic",
            };
            proto.MetadataProps.Add(new StringStringEntryProto
            {
                Key = ExportKey, Value = JsonSerializer.Serialize(exportInfo, OnnxExportJson.Default.OnnxExportInfo),
            });
            return new OnnxExportResult
            {
                Bytes = proto.ToByteArray(), Arch = spec.ArchString, InputName = InputName, InputShape = inputShape,
                Opset = options.Opset, FusedUnits = fusedUnits, QuantizedLayers = quantized?.Count ?? 0, Bits = bits,
                Tokenizer = metadata.GetValueOrDefault(TextTokenizer.MetadataKey), Notes = notes,
            };
        }
        finally
        {
            fusedCopy?.Module.Dispose();
        }
    }

    internal static UnsupportedLayerException AdapterUnsupported(string path, AdapterSpec adapter) =>
        new($"layer '{path}' has a ScaleNet {adapter.Kind} adapter, a layer type the ONNX exporter does not support " +
            "yet");

    /// <summary>Every parameter must reach the graph: one left over means the graph computes something else than the
    /// model (a module the exporter does not know).</summary>
    private static void EnsureEveryParameterIsUsed(OnnxGraphBuilder builder, ArchitectureSpec spec, string source)
    {
        var unused = builder.ParameterNames
            .Where(n => !builder.Emitted.Contains(n) && !n.EndsWith(".num_batches_tracked", StringComparison.Ordinal))
            .ToList();
        if (unused.Count > 0)
            throw new UnsupportedLayerException(
                $"{source}: {spec.ArchString} has parameters the ONNX graph does not use " +
                $"({string.Join(", ", unused.Take(5))}" +
                $"{(unused.Count > 5 ? ", …" : "")}): their layer type is not supported by the exporter");
    }

    private static string DocString(ArchitectureSpec spec, IReadOnlyDictionary<string, string> metadata)
    {
        string text = $"{spec.ArchString}, exported by ScaleGrow. Output '{OutputName}'.";
        if (InputNormalization.FromMetadata(metadata, "checkpoint") is { } input)
            text += $" Input '{InputName}' (B, {input.Channels}, {input.Height}, {input.Width}) float32 = " +
                    $"(pixels / 255 - mean) / std per channel, mean [{string.Join(", ", input.Mean)}], " +
                    $"std [{string.Join(", ", input.Std)}] (metadata 'scalegrow.input').";
        else if (ModelFamilies.For(spec).ReadsText(spec))
            text += $" Input '{InputName}' (B, T) int64 token ids (tokenizer in metadata 'scalegrow.tokenizer' and " +
                    "beside the file).";
        return text;
    }
}

/// <summary>A layer type, model kind or combination the ONNX exporter cannot write: the message names it.</summary>
public sealed class UnsupportedLayerException(string message) : ScaleGrowException(message);

/// <summary>The <c>scalegrow.export</c> metadata entry: how the file was made.</summary>
public sealed record OnnxExportInfo
{
    /// <summary>"metadata": the input normalisation is stated in <c>scalegrow.input</c>; "none": the model takes
    /// token ids or carried no statistics.</summary>
    public required string Normalization { get; init; }

    public int FusedUnits { get; init; }
    public int QuantizedLayers { get; init; }
    public int WeightBits { get; init; }
    public required string Batch { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(OnnxExportInfo))]
internal partial class OnnxExportJson : JsonSerializerContext;

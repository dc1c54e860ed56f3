using System.Text.Json;
using ScaleGrow.Checkpoints;
using ScaleGrow.Models;
using TorchSharp;
using TorchSharp.Modules;
using static ScaleGrow.Checkpoints.CheckpointText;
using static TorchSharp.torch;

namespace ScaleGrow.Quantization;

/// <summary>A model read from a quantized checkpoint: dequantized into a float model of its spec, with the file's
/// extra metadata (including <c>scalegrow.quantization</c>) and the parsed quantization settings.</summary>
public sealed record LoadedQuantizedModel(IScaleGrowModel Model, IReadOnlyDictionary<string, string> Metadata,
    QuantizedCheckpointInfo Info)
{
    /// <summary>The stored codes, scales and zero points per layer (ONNX export writes them as they are); only when
    /// asked for, so evaluation does not hold a second copy of the weights.</summary>
    public IReadOnlyDictionary<string, QuantizedWeight>? PackedWeights { get; init; }
}

/// <summary>
/// Packed low-bit checkpoints (thesis chapter 4; issue 5): a safetensors file of kind <c>quantized-model</c> that
/// stores each quantized Conv2d/Linear weight as packed b-bit codes (<see cref="BitPacking"/>) with per-row or
/// per-group scales and zero points, and every other tensor as in a float checkpoint. The layout is documented in
/// docs/quantization.md ("Quantized checkpoints") so that a reader with only Python's json and struct can decode it.
/// </summary>
/// <remarks>
/// Tensors of layer <c>L</c> (replacing <c>L.weight</c>): <c>L.weight.codes</c> (U8, the bitstream of the codes in
/// the weight's row-major element order), <c>L.weight.scales</c> (F32/F16 [out, groups]), <c>L.weight.zeros</c> (U8,
/// bitstream of [out, groups] zero points; asymmetric grids only), <c>L.weight.perm</c> (I32 [G, columns]; only when
/// groups follow a permuted quantization order). Loading dequantizes into a float model, so every consumer of models
/// (evaluation, prediction, export) works on quantized checkpoints unchanged. Files are untrusted: every
/// inconsistency is one <see cref="CheckpointFormatException"/> naming the layer and tensor.
/// </remarks>
public static class QuantizedCheckpoint
{
    public const string CodesSuffix = ".weight.codes";
    public const string ScalesSuffix = ".weight.scales";
    public const string ZerosSuffix = ".weight.zeros";
    public const string PermutationSuffix = ".weight.perm";

    private static readonly string[] Suffixes = [CodesSuffix, ScalesSuffix, ZerosSuffix, PermutationSuffix];
    private const string InfoDescription = "quantization settings";

    /// <summary>
    /// Writes <paramref name="model"/> (whose quantized layers already hold their dequantized weights, as
    /// <see cref="ModelQuantizer"/> leaves them) with the packed tensors of <paramref name="result"/>.
    /// </summary>
    public static byte[] Save(IScaleGrowModel model, ModelQuantizationResult result,
        QuantizedCheckpointOptions? options = null, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(result);
        options ??= new QuantizedCheckpointOptions();
        if (result.Layers.Count == 0) throw new ArgumentException("no quantized layers to store", nameof(result));
        using var scope = torch.NewDisposeScope();
        var modules = model.Module.named_modules().ToDictionary(m => m.name, m => m.module, StringComparer.Ordinal);
        var tensors = new Dictionary<string, Tensor>(ModelIO.AsStored(model.Module.state_dict()), StringComparer.Ordinal);
        var layers = new SortedDictionary<string, QuantizedLayerInfo>(StringComparer.Ordinal);
        // Names that share a quantized weight's storage (ScaleNet instances) are not stored as floats: loading
        // restores them from the spec, which rebuilds the sharing.
        var quantizedStorage = result.Layers
            .Select(l => modules.TryGetValue(l.Name, out var m) && m is Conv2d or Linear
                ? Checkpoints.TensorAliases.StorageKey(GptqLayerQuantizer.WeightOf(m)) : null)
            .OfType<string>().ToHashSet(StringComparer.Ordinal);
        var sharingQuantized = tensors
            .Where(t => !result.Layers.Any(l => l.Name + ".weight" == t.Key) &&
                        Checkpoints.TensorAliases.StorageKey(t.Value) is { } key && quantizedStorage.Contains(key))
            .Select(t => t.Key).ToList();
        foreach (var name in sharingQuantized) tensors.Remove(name);
        foreach (var layer in result.Layers)
        {
            string weightName = layer.Name + ".weight";
            if (!modules.TryGetValue(layer.Name, out var module) || module is not (Conv2d or Linear))
                throw new ArgumentException($"layer '{layer.Name}' is not a Conv2d or Linear module of the model");
            if (layers.ContainsKey(layer.Name)) throw new ArgumentException($"layer '{layer.Name}' is listed twice");
            if (!tensors.Remove(weightName, out var weight) || !weight.shape.SequenceEqual(layer.WeightShape))
                throw new ArgumentException($"layer '{layer.Name}': the model's weight does not have the quantized " +
                                            $"shape {UniformQuantizer.Shape(layer.Codes)}");
            bool permuted = layer.GroupSize > 0 && !layer.GroupsInOriginalOrder;
            layers[layer.Name] = new QuantizedLayerInfo
            {
                Kind = layer.Kind, Shape = layer.WeightShape, ConvGroups = layer.ConvGroups, Bits = layer.Bits,
                GroupSize = layer.GroupSize, Symmetric = layer.Symmetric, Permuted = permuted,
            };
            tensors[layer.Name + CodesSuffix] = torch.tensor(BitPacking.Pack(layer.Codes.cpu(), layer.Bits));
            tensors[layer.Name + ScalesSuffix] = StoredScales(layer, options.Scales);
            if (layer.Symmetric)
            {
                if (!layer.Zeros.eq(1 << (layer.Bits - 1)).all().item<bool>())
                    throw new ArgumentException($"layer '{layer.Name}': a symmetric grid must have zero points " +
                                                $"{1 << (layer.Bits - 1)}");
            }
            else
            {
                tensors[layer.Name + ZerosSuffix] = torch.tensor(BitPacking.Pack(layer.Zeros.cpu(), layer.Bits));
            }
            if (permuted) tensors[layer.Name + PermutationSuffix] = layer.Permutation.to(ScalarType.Int32).cpu();
        }
        var report = result.Report;
        var info = new QuantizedCheckpointInfo
        {
            Method = report.Method, Bits = report.Bits, GroupSize = report.GroupSize, Symmetric = report.Symmetric,
            ScaleFormat = options.Scales, CalibrationSamples = report.CalibrationSamples,
            CalibrationSource = options.CalibrationSource, Layers = layers,
        };
        var extra = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (metadata is not null) foreach (var (k, v) in metadata) extra[k] = v;
        using var ms = new MemoryStream();
        CheckpointCodec.Save(ms, CheckpointMetadata.QuantizedModelKind, CheckpointMetadata.SpecKey,
            model.Spec.ToJson(), tensors, extra, tensorNameProblem: null,
            new Dictionary<string, string> { [CheckpointMetadata.QuantizationKey] = InfoJson(info) });
        return ms.ToArray();
    }

    /// <summary>The settings JSON as stored under <c>scalegrow.quantization</c>.</summary>
    public static string InfoJson(QuantizedCheckpointInfo info) =>
        JsonSerializer.Serialize(info, QuantizedCheckpointJson.Default.QuantizedCheckpointInfo);

    /// <summary>
    /// Reads a quantized checkpoint and dequantizes it into a float model of its spec. Anything inconsistent — a
    /// listed layer the spec does not have or whose tensors are missing, codes whose length does not fit the shape,
    /// scales of the wrong shape or not positive and finite, bits outside 2..8, a permutation that is not one, stray
    /// packed tensors — is a <see cref="CheckpointFormatException"/> naming <paramref name="source"/>.
    /// </summary>
#pragma warning disable CA2255 // registers the checkpoint kind with ModelIO once, when the assembly loads
    /// <summary>Lets <see cref="ModelIO.LoadModel(byte[], string)"/> read quantized checkpoints (dequantized).
    /// </summary>
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void RegisterLoader() => ModelIO.RegisterModelLoader(CheckpointMetadata.QuantizedModelKind,
        (bytes, source) =>
        {
            var loaded = Load(bytes, source);
            return (loaded.Model, loaded.Metadata);
        });
#pragma warning restore CA2255

    public static LoadedQuantizedModel Load(byte[] bytes, string source) =>
        Load(bytes, source, keepPackedWeights: false);

    /// <summary>As <see cref="Load(byte[], string)"/>; with <paramref name="keepPackedWeights"/> the result also holds
    /// each layer's codes, scales and zero points (<see cref="LoadedQuantizedModel.PackedWeights"/>).</summary>
    public static LoadedQuantizedModel Load(byte[] bytes, string source, bool keepPackedWeights)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentNullException.ThrowIfNull(source);
        using var ms = new MemoryStream(bytes, writable: false);
        var (specJson, tensors, extra) = CheckpointCodec.Load(ms, source, null, CheckpointMetadata.QuantizedModelKind,
            CheckpointMetadata.SpecKey, "architecture spec", tensorNameProblem: null,
            new Dictionary<string, string> { [CheckpointMetadata.QuantizationKey] = InfoDescription });
        IScaleGrowModel? model = null;
        try
        {
            ArchitectureSpec spec;
            try
            {
                spec = ArchitectureSpec.FromJson(specJson, source);
            }
            catch (InvalidSpecException e)
            {
                throw new CheckpointFormatException(e.Message);
            }
            var info = ParseInfo(extra[CheckpointMetadata.QuantizationKey], source);
            // Packed codes hold at most 8 / 2 = 4 values a byte (2 bits is the fewest this format writes).
            ModelIO.EnsureSpecFitsFile(spec, tensors, source, valuesPerByte: 4);
            model = ModelFactory.Create(spec);
            var modules = model.Module.named_modules()
                .ToDictionary(m => m.name, m => m.module, StringComparer.Ordinal);
            using var scope = torch.NewDisposeScope();
            var floats = new Dictionary<string, Tensor>(tensors, StringComparer.Ordinal);
            var packed = keepPackedWeights
                ? new SortedDictionary<string, QuantizedWeight>(StringComparer.Ordinal)
                : null;
            foreach (var (name, layer) in info.Layers.OrderBy(l => l.Key, StringComparer.Ordinal))
            {
                var weight = DequantizeLayer(name, layer, info.ScaleFormat, floats, modules, source, packed);
                if (floats.ContainsKey(name + ".weight"))
                    throw Error(source, $"layer {Quote(name)} is stored both quantized and as float " +
                                        $"'{name}.weight'");
                floats[name + ".weight"] = weight;
            }
            foreach (var name in floats.Keys.Order(StringComparer.Ordinal))
                if (Suffixes.FirstOrDefault(s => name.EndsWith(s, StringComparison.Ordinal)) is { } suffix)
                    throw Error(source, $"tensor {Quote(name)} belongs to layer " +
                                        $"{Quote(name[..^suffix.Length])}, which " +
                                        $"{CheckpointMetadata.QuantizationKey} does not list as quantized");
            // A name whose tensor the model shares with a restored name (ScaleNet instances) takes that tensor.
            foreach (var group in model.Module.state_dict()
                         .Select(kv => (Key: Checkpoints.TensorAliases.StorageKey(kv.Value), Name: kv.Key))
                         .Where(x => x.Key is not null).GroupBy(x => x.Key, x => x.Name, StringComparer.Ordinal))
            {
                var present = group.FirstOrDefault(floats.ContainsKey);
                if (present is null) continue;
                foreach (var name in group) floats.TryAdd(name, floats[present]);
            }
            ModelIO.Load(model.Module, floats, source);
            return new LoadedQuantizedModel(model, extra, info) { PackedWeights = packed };
        }
        catch
        {
            model?.Module.Dispose();
            throw;
        }
        finally
        {
            foreach (var t in tensors.Values.Distinct<Tensor>(ReferenceEqualityComparer.Instance)) t.Dispose();
        }
    }

    /// <summary>Parses and checks <c>scalegrow.quantization</c>; the per-layer checks against the model happen
    /// while dequantizing.</summary>
    internal static QuantizedCheckpointInfo ParseInfo(string json, string source)
    {
        QuantizedCheckpointInfo? info;
        try
        {
            info = JsonSerializer.Deserialize(json, QuantizedCheckpointJson.Default.QuantizedCheckpointInfo);
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException
                                      or ArgumentException or OverflowException)
        {
            throw Error(source, $"'{CheckpointMetadata.QuantizationKey}' is not valid {InfoDescription}: " +
                                e.Message.ReplaceLineEndings(" "));
        }
        string key = CheckpointMetadata.QuantizationKey;
        if (info is null) throw Error(source, $"'{key}' is null");
        if (!QuantizationMethods.All.Contains(info.Method))
            throw Error(source, $"'{key}': method {Quote(info.Method)} is not one of " +
                                string.Join(", ", QuantizationMethods.All));
        CheckBits(info.Bits, $"'{key}'", source);
        CheckGroupSize(info.GroupSize, $"'{key}'", source);
        if (!Enum.IsDefined(info.ScaleFormat))
            throw Error(source, $"'{key}': scaleFormat must be F32 or F16");
        if (info.CalibrationSamples < 0)
            throw Error(source, $"'{key}': calibrationSamples must be non-negative, got {info.CalibrationSamples}");
        if (info.Layers.Count == 0) throw Error(source, $"'{key}' lists no quantized layers");
        foreach (var (name, layer) in info.Layers)
            if (layer is null) throw Error(source, $"'{key}': layer {Quote(name)} is null");
        return info;
    }

    private static Tensor StoredScales(QuantizedLayer layer, ScaleFormat format)
    {
        if (format == ScaleFormat.F32) return layer.Scales.to(ScalarType.Float32).cpu();
        var half = layer.Scales.to(ScalarType.Float16).cpu();
        // Scales are positive float32 values; binary16 holds 6e-8..65504 (normal from 6.1e-5).
        if (!half.isfinite().all().item<bool>() || !half.gt(0).all().item<bool>())
            throw new InvalidSpecException($"layer '{layer.Name}': scales outside the F16 range " +
                                           $"[{layer.Scales.min().item<float>():G3}, " +
                                           $"{layer.Scales.max().item<float>():G3}]; store F32 scales");
        return half;
    }

    /// <summary>Checks one listed layer against the model and its tensors, removes its packed tensors from
    /// <paramref name="tensors"/> and returns its float32 weight.</summary>
    private static Tensor DequantizeLayer(string name, QuantizedLayerInfo layer, ScaleFormat scaleFormat,
        Dictionary<string, Tensor> tensors, Dictionary<string, nn.Module> modules, string source,
        IDictionary<string, QuantizedWeight>? packed)
    {
        string where = $"layer {Quote(name)}";
        if (!modules.TryGetValue(name, out var module) || module is not (Conv2d or Linear))
            throw Error(source, $"{where} is listed as quantized but is not a Conv2d or Linear module of the " +
                                "architecture spec");
        var (kind, weightShape, convGroups) = module switch
        {
            Conv2d conv => (LayerKind.Conv2d, conv.weight.shape, conv.groups),
            Linear linear => (LayerKind.Linear, linear.weight.shape, 1L),
            _ => throw new InvalidOperationException(),
        };
        if (layer.Kind != kind) throw Error(source, $"{where} is a {kind}, the file says {layer.Kind}");
        if (layer.Shape is null || !layer.Shape.SequenceEqual(weightShape))
            throw Error(source, $"{where}: shape {Shape(layer.Shape ?? [])} does not match the spec's weight " +
                                Shape(weightShape));
        if (layer.ConvGroups != convGroups)
            throw Error(source, $"{where}: convGroups {layer.ConvGroups}, the spec's layer has {convGroups}");
        CheckBits(layer.Bits, where, source);
        CheckGroupSize(layer.GroupSize, where, source);
        if (layer.Permuted && layer.GroupSize == 0)
            throw Error(source, $"{where}: permuted groups need a groupSize > 0");

        long rows = weightShape[0], columns = weightShape.Skip(1).Aggregate(1L, (a, b) => a * b);
        long rowsPerGroup = rows / convGroups;
        long groupWidth = layer.GroupSize == 0 ? columns : Math.Min(layer.GroupSize, columns);
        long grids = (columns + groupWidth - 1) / groupWidth;
        int bits = layer.Bits;

        var codes = Unpacked(Take(tensors, name + CodesSuffix, where, source), rows * columns, bits,
            $"{name}{CodesSuffix}", $"{bits}-bit codes of a {Shape(weightShape)} weight", source);

        var scaleType = scaleFormat == ScaleFormat.F16 ? ScalarType.Float16 : ScalarType.Float32;
        var scales = Take(tensors, name + ScalesSuffix, where, source);
        if (scales.dtype != scaleType || !scales.shape.SequenceEqual([rows, grids]))
            throw Error(source, $"tensor '{name}{ScalesSuffix}' must be {scaleFormat} [{rows},{grids}], got " +
                                $"{scales.dtype} {Shape(scales.shape)}");
        if (!scales.isfinite().all().item<bool>() || !scales.gt(0).all().item<bool>())
            throw Error(source, $"tensor '{name}{ScalesSuffix}' holds a scale that is not positive and finite");

        Tensor zeros;
        if (layer.Symmetric)
        {
            if (tensors.ContainsKey(name + ZerosSuffix))
                throw Error(source, $"{where} is symmetric but has zero points '{name}{ZerosSuffix}'");
            zeros = torch.full(rows, grids, 1 << (bits - 1), ScalarType.Byte);
        }
        else
        {
            zeros = Unpacked(Take(tensors, name + ZerosSuffix, where, source), rows * grids, bits,
                $"{name}{ZerosSuffix}", $"{bits}-bit zero points of [{rows},{grids}] grids", source);
        }

        Tensor groupIndex;
        var natural = torch.arange(columns, dtype: ScalarType.Int64)
            .div(groupWidth, rounding_mode: RoundingMode.floor);
        if (layer.Permuted)
        {
            var perm = Take(tensors, name + PermutationSuffix, where, source);
            if (perm.dtype != ScalarType.Int32 || !perm.shape.SequenceEqual([convGroups, columns]))
                throw Error(source, $"tensor '{name}{PermutationSuffix}' must be Int32 [{convGroups},{columns}], " +
                                    $"got {perm.dtype} {Shape(perm.shape)}");
            var asLong = perm.to(ScalarType.Int64);
            var sorted = asLong.sort(1).Values;
            if (!sorted.eq(torch.arange(columns, dtype: ScalarType.Int64).unsqueeze(0)).all().item<bool>())
                throw Error(source, $"tensor '{name}{PermutationSuffix}' is not a permutation of 0..{columns - 1} " +
                                    "in every row");
            // Column perm[g][k] was quantized k-th and uses grid k / groupSize.
            groupIndex = torch.zeros(convGroups, columns, ScalarType.Int64)
                .scatter_(1, asLong, natural.unsqueeze(0).expand(convGroups, columns));
        }
        else
        {
            if (tensors.ContainsKey(name + PermutationSuffix))
                throw Error(source, $"{where} is not permuted but has '{name}{PermutationSuffix}'");
            groupIndex = natural.unsqueeze(0).expand(convGroups, columns);
        }

        if (packed is not null)
            packed[name] = new QuantizedWeight
            {
                Name = name, WeightShape = weightShape, ConvGroups = convGroups, Bits = bits, GroupWidth = groupWidth,
                Codes = codes.data<byte>().ToArray(), Scales = scales.to(ScalarType.Float32).data<float>().ToArray(),
                Zeros = zeros.contiguous().data<byte>().ToArray(),
                GroupIndex = layer.Permuted ? groupIndex.contiguous().data<long>().ToArray() : null,
            };
        var weight = UniformQuantizer.DequantizeCodes(codes.reshape(convGroups, rowsPerGroup, columns),
            scales.reshape(convGroups, rowsPerGroup, grids), zeros.reshape(convGroups, rowsPerGroup, grids),
            groupIndex);
        return weight.reshape(weightShape);
    }

    private static Tensor Take(Dictionary<string, Tensor> tensors, string name, string where, string source)
    {
        if (!tensors.Remove(name, out var tensor))
            throw Error(source, $"{where} is listed as quantized but tensor {Quote(name)} is missing");
        return tensor;
    }

    /// <summary>Unpacks a U8 bitstream of <paramref name="count"/> codes into a uint8 tensor.</summary>
    private static Tensor Unpacked(Tensor packed, long count, int bits, string name, string what, string source)
    {
        long needed = BitPacking.PackedLength(count, bits);
        if (packed.dtype != ScalarType.Byte || packed.dim() != 1 || packed.shape[0] != needed)
            throw Error(source, $"tensor {Quote(name)} must be U8 [{needed}] for {what}, got {packed.dtype} " +
                                Shape(packed.shape));
        if (count > Array.MaxLength) throw Error(source, $"tensor {Quote(name)}: {count} codes are too many");
        try
        {
            return torch.tensor(BitPacking.Unpack(packed.data<byte>().ToArray(), bits, (int)count, Quote(name)));
        }
        catch (CheckpointFormatException e)
        {
            throw Error(source, $"tensor {e.Message}");
        }
    }

    private static void CheckBits(int bits, string where, string source)
    {
        if (bits is < 2 or > 8) throw Error(source, $"{where}: bits must be in 2..8, got {bits}");
    }

    private static void CheckGroupSize(int groupSize, string where, string source)
    {
        if (groupSize != 0 && groupSize is < 2 or > 65536)
            throw Error(source, $"{where}: groupSize must be 0 (per output channel) or in 2..65536, got {groupSize}");
    }
}

using System.Text.Json;
using TorchSharp;
using static ScaleGrow.Checkpoints.CheckpointText;
using static TorchSharp.torch;

namespace ScaleGrow.Checkpoints;

/// <summary>
/// Saves and loads ScaleGrow's checkpoints: safetensors files whose <c>__metadata__</c> says what they hold
/// (<c>scalegrow.kind</c>, <c>scalegrow.format-version</c>), carry the JSON that gives the tensors meaning (the
/// architecture spec, or the optimizer's scalars) and list weight-shared names once (<c>scalegrow.aliases</c>).
/// Each growth step of a run writes one of each (<c>steps/{step}/model.safetensors</c>, <c>optim.safetensors</c>;
/// docs/architecture.md, "A run's life"). Loading is safe on uploads: every problem is a
/// <see cref="CheckpointFormatException"/>.
/// </summary>
public static class CheckpointCodec
{
    // Spec and optimizer JSON are small records; deeper nesting can only be an attack on the parser.
    private const int MaxPayloadJsonDepth = 64;

    public static void SaveModel(Stream destination, ModelCheckpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        Save(destination, CheckpointMetadata.ModelKind, CheckpointMetadata.SpecKey, checkpoint.SpecJson,
            checkpoint.Tensors, checkpoint.Metadata, tensorNameProblem: null);
    }

    /// <param name="sourceName">The file or blob name used in error messages.</param>
    public static ModelCheckpoint LoadModel(Stream source, string sourceName, SafeTensorsReadOptions? options = null)
    {
        var (spec, tensors, extra) = Load(source, sourceName, options, CheckpointMetadata.ModelKind,
            CheckpointMetadata.SpecKey, "architecture spec", tensorNameProblem: null);
        return new ModelCheckpoint(spec, tensors) { Metadata = extra };
    }

    public static void SaveOptimizer(Stream destination, OptimizerCheckpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        Save(destination, CheckpointMetadata.OptimizerKind, CheckpointMetadata.OptimizerStateKey,
            checkpoint.StateJson, checkpoint.Moments, checkpoint.Metadata, OptimizerCheckpoint.MomentKeyProblem);
    }

    /// <param name="sourceName">The file or blob name used in error messages.</param>
    public static OptimizerCheckpoint LoadOptimizer(
        Stream source, string sourceName, SafeTensorsReadOptions? options = null)
    {
        var (state, moments, extra) = Load(source, sourceName, options, CheckpointMetadata.OptimizerKind,
            CheckpointMetadata.OptimizerStateKey, "optimizer state", OptimizerCheckpoint.MomentKeyProblem);
        return new OptimizerCheckpoint(state, moments) { Metadata = extra };
    }

    /// <summary>Writes a checkpoint of any kind (the quantized-model kind builds on this).
    /// <paramref name="ownedPayloads"/>: further reserved keys this kind writes (JSON values), e.g.
    /// <see cref="CheckpointMetadata.QuantizationKey"/>.</summary>
    internal static void Save(
        Stream destination, string kind, string payloadKey, string payloadJson,
        IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string> extra,
        Func<string, string?>? tensorNameProblem, IReadOnlyDictionary<string, string>? ownedPayloads = null)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(payloadJson);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(extra);
        if (!IsJson(payloadJson))
            throw new ArgumentException($"the {payloadKey} payload is not valid JSON", nameof(payloadJson));
        foreach (var key in extra.Keys)
            if (CheckpointMetadata.ReservedKeys.Contains(key))
                throw new ArgumentException($"metadata key '{key}' is reserved for the codec", nameof(extra));
        if (tensorNameProblem is not null)
            foreach (var name in tensors.Keys)
                if (tensorNameProblem(name) is { } problem)
                    throw new ArgumentException($"tensor name '{name}' {problem}", nameof(tensors));

        var (stored, aliases) = TensorAliases.Split(tensors);
        var metadata = new Dictionary<string, string>(extra, StringComparer.Ordinal)
        {
            [CheckpointMetadata.KindKey] = kind,
            [CheckpointMetadata.FormatVersionKey] = CheckpointMetadata.FormatVersion,
            [payloadKey] = payloadJson,
        };
        if (aliases.Count > 0) metadata[CheckpointMetadata.AliasesKey] = TensorAliases.ToJson(aliases);
        foreach (var (key, json) in ownedPayloads ?? new Dictionary<string, string>())
        {
            if (!CheckpointMetadata.ReservedKeys.Contains(key) || metadata.ContainsKey(key))
                throw new ArgumentException($"'{key}' is not a free reserved key", nameof(ownedPayloads));
            if (!IsJson(json))
                throw new ArgumentException($"the {key} payload is not valid JSON", nameof(ownedPayloads));
            metadata[key] = json;
        }
        SafeTensorsWriter.Write(destination, stored, metadata);
    }

    /// <summary>Reads a checkpoint that must be of <paramref name="expectedKind"/>. Reserved keys named in
    /// <paramref name="ownedPayloads"/> (key → description) belong to this kind: each must be present and valid JSON,
    /// and is returned among the extra metadata.</summary>
    internal static (string Payload, IReadOnlyDictionary<string, Tensor> Tensors,
        IReadOnlyDictionary<string, string> Extra) Load(
        Stream source, string sourceName, SafeTensorsReadOptions? options, string expectedKind, string payloadKey,
        string payloadDescription, Func<string, string?>? tensorNameProblem,
        IReadOnlyDictionary<string, string>? ownedPayloads = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(sourceName);
        options ??= SafeTensorsReadOptions.Default;
        // Everything read is disposed if the file turns out wrong; only a checked result leaves this scope.
        using var scope = torch.NewDisposeScope();
        var file = SafeTensorsReader.Read(source, sourceName, options);
        var metadata = file.Metadata;

        if (!metadata.TryGetValue(CheckpointMetadata.KindKey, out var kind))
            throw Error(sourceName,
                $"is not a ScaleGrow checkpoint: __metadata__ has no '{CheckpointMetadata.KindKey}'");
        if (kind != expectedKind)
            throw Error(sourceName, $"is a checkpoint of kind {Quote(kind)}, expected kind '{expectedKind}'");
        if (!metadata.TryGetValue(CheckpointMetadata.FormatVersionKey, out var version))
            throw Error(sourceName, $"__metadata__ has no '{CheckpointMetadata.FormatVersionKey}'");
        if (version != CheckpointMetadata.FormatVersion)
            throw Error(sourceName, $"format version {Quote(version)} is not supported (this build reads version " +
                                    $"{CheckpointMetadata.FormatVersion})");
        if (!metadata.TryGetValue(payloadKey, out var payload))
            throw Error(sourceName, $"__metadata__ has no '{payloadKey}' ({payloadDescription})");
        if (!IsJson(payload))
            throw Error(sourceName, $"'{payloadKey}' ({payloadDescription}) is not valid JSON");

        foreach (var (key, description) in ownedPayloads ?? new Dictionary<string, string>())
        {
            if (!metadata.TryGetValue(key, out var owned))
                throw Error(sourceName, $"__metadata__ has no '{key}' ({description})");
            if (!IsJson(owned)) throw Error(sourceName, $"'{key}' ({description}) is not valid JSON");
        }

        var tensors = new Dictionary<string, Tensor>(file.Tensors, StringComparer.Ordinal);
        if (metadata.TryGetValue(CheckpointMetadata.AliasesKey, out var aliases))
            TensorAliases.Resolve(aliases, tensors, sourceName, options);
        if (tensorNameProblem is not null)
            foreach (var name in tensors.Keys.Order(StringComparer.Ordinal))
                if (tensorNameProblem(name) is { } problem)
                    throw Error(sourceName, $"tensor {Quote(name)} {problem}");

        var handled = new HashSet<string>(StringComparer.Ordinal)
            { CheckpointMetadata.KindKey, CheckpointMetadata.FormatVersionKey, CheckpointMetadata.AliasesKey,
              payloadKey };
        var extra = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in metadata)
        {
            if (handled.Contains(key)) continue;
            if (CheckpointMetadata.ReservedKeys.Contains(key) && ownedPayloads?.ContainsKey(key) != true)
                throw Error(sourceName, $"a '{expectedKind}' checkpoint must not carry '{key}'");
            extra.Add(key, value);
        }

        foreach (var tensor in file.Tensors.Values) tensor.MoveToOuterDisposeScope();
        return (payload, tensors, extra);
    }

    /// <summary>
    /// The <c>scalegrow.kind</c> of a checkpoint held in memory, read from its header alone (the header is fully
    /// validated, the tensors are not read); null when the file has no kind. Lets a loader pick the codec for a file
    /// before decoding it.
    /// </summary>
    public static string? ReadKind(ReadOnlySpan<byte> file, string sourceName, SafeTensorsReadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(sourceName);
        options ??= SafeTensorsReadOptions.Default;
        options.Validate();
        if (file.Length < 8) throw Error(sourceName, $"file is {file.Length} bytes long, too short for the 8-byte " +
                                                     "header length");
        ulong declared = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(file);
        if (declared > (ulong)options.MaxHeaderBytes)
            throw Error(sourceName, $"header length {declared} exceeds the limit of {options.MaxHeaderBytes} bytes");
        if ((long)declared > file.Length - 8)
            throw Error(sourceName, $"header length {declared} exceeds the {file.Length - 8} bytes that follow " +
                                    "the length field");
        var header = SafeTensorsHeader.Parse(file.Slice(8, (int)declared), sourceName, options,
            file.Length - 8 - (long)declared);
        return header.Metadata.GetValueOrDefault(CheckpointMetadata.KindKey);
    }

    /// <summary>
    /// The <c>scalegrow.kind</c> of a checkpoint read from the start of a seekable <paramref name="stream"/>: only the
    /// length field and the header are read (at most <see cref="SafeTensorsReadOptions.MaxHeaderBytes"/>, checked
    /// before anything is allocated), the header is validated against the stream's length, and the stream is left at
    /// the position it had, so a loader can look at an upload's kind before reading its tensors.
    /// </summary>
    public static string? ReadKind(Stream stream, string sourceName, SafeTensorsReadOptions? options = null) =>
        ReadMetadata(stream, sourceName, options).GetValueOrDefault(CheckpointMetadata.KindKey);

    /// <summary>The header's <c>__metadata__</c>, read like <see cref="ReadKind(Stream, string,
    /// SafeTensorsReadOptions?)"/> (header only, bounded, stream position kept).</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(Stream stream, string sourceName,
        SafeTensorsReadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(sourceName);
        if (!stream.CanSeek) throw new ArgumentException("the stream must be seekable", nameof(stream));
        options ??= SafeTensorsReadOptions.Default;
        options.Validate();
        long start = stream.Position;
        long total = stream.Length - start;
        Span<byte> lengthField = stackalloc byte[8];
        int got = stream.ReadAtLeast(lengthField, 8, throwOnEndOfStream: false);
        if (got < 8) throw Error(sourceName, $"file is {got} bytes long, too short for the 8-byte header length");
        ulong declared = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(lengthField);
        if (declared > (ulong)options.MaxHeaderBytes)
            throw Error(sourceName, $"header length {declared} exceeds the limit of {options.MaxHeaderBytes} bytes");
        if ((long)declared > total - 8)
            throw Error(sourceName, $"header length {declared} exceeds the {total - 8} bytes that follow " +
                                    "the length field");
        var json = new byte[(int)declared];
        got = stream.ReadAtLeast(json, json.Length, throwOnEndOfStream: false);
        if (got < json.Length)
            throw Error(sourceName, $"file ends after {got} of the {json.Length} bytes of its header");
        var header = SafeTensorsHeader.Parse(json, sourceName, options, total - 8 - (long)declared);
        stream.Position = start;
        return header.Metadata;
    }

    private static bool IsJson(string text)
    {
        try
        {
            using var _ = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = MaxPayloadJsonDepth });
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}

using ScaleGrow.Models;
using ScaleGrow.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Checkpoints;

/// <summary>
/// Models and optimizer states to and from checkpoint bytes. A model is rebuilt from the spec stored in the file,
/// then its tensors are loaded — a file whose tensors do not match its spec (missing, unexpected, wrong shape or
/// dtype) is rejected with one clear error naming the tensor, before anything uses it.
/// </summary>
public static class ModelIO
{
    public const string OverlapKey = "scalegrow.overlap";

    public static byte[] SaveModel(IScaleGrowModel model, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var extra = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (metadata is not null) foreach (var (k, v) in metadata) extra[k] = v;
        AddOverlapMaps(model.Spec, extra);
        using var ms = new MemoryStream();
        using var scope = torch.NewDisposeScope();
        var tensors = AsStored(model.Module.state_dict());
        CheckpointCodec.SaveModel(ms, new ModelCheckpoint(model.Spec.ToJson(), tensors) { Metadata = extra });
        return ms.ToArray();
    }

    /// <summary>
    /// A model's tensors as a checkpoint holds them: floating tensors in float32 (the writer copies each to the CPU),
    /// whatever type they compute in. Float32 tensors are passed through as they are, so their aliasing (ScaleNet's
    /// shared layers) is what the writer sees; a converted tensor is converted once however many names it has.
    /// </summary>
    internal static Dictionary<string, Tensor> AsStored(Dictionary<string, Tensor> tensors)
    {
        if (tensors.Values.All(t => !t.is_floating_point() || t.dtype == ScalarType.Float32)) return tensors;
        var converted = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);
        return tensors.ToDictionary(kv => kv.Key, kv =>
            !kv.Value.is_floating_point() || kv.Value.dtype == ScalarType.Float32 ? kv.Value
            : converted.TryGetValue(kv.Value, out var c) ? c
            : converted[kv.Value] = kv.Value.detach().to(ScalarType.Float32));
    }

    /// <summary>The length <see cref="SaveModel"/> would return, counted while writing to nowhere (a report's size
    /// figure should not cost a second copy of the model in memory).</summary>
    public static long SavedLength(IScaleGrowModel model, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var extra = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (metadata is not null) foreach (var (k, v) in metadata) extra[k] = v;
        AddOverlapMaps(model.Spec, extra);
        using var counter = new LengthCountingStream();
        using var scope = torch.NewDisposeScope();
        CheckpointCodec.SaveModel(counter, new ModelCheckpoint(model.Spec.ToJson(), AsStored(model.Module.state_dict()))
        { Metadata = extra });
        return counter.Length;
    }

    /// <summary>A checkpoint carries the overlap maps its family declares (fused CNN kernels, thesis 4.2), unless the
    /// caller's metadata already holds them.</summary>
    private static void AddOverlapMaps(ArchitectureSpec spec, SortedDictionary<string, string> extra)
    {
        if (!extra.ContainsKey(OverlapKey) && ModelFamilies.For(spec).OverlapMaps(spec) is { } maps)
            extra[OverlapKey] = OverlapJson(maps);
    }

    private sealed class LengthCountingStream : Stream
    {
        private long _length;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _length; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => _length += count;
        public override void Write(ReadOnlySpan<byte> buffer) => _length += buffer.Length;
    }

    /// <summary>
    /// Rebuilds a model from a checkpoint of kind <c>model</c>, or of another kind whose owner registered a loader
    /// (<see cref="RegisterModelLoader"/>): Quantization registers <c>quantized-model</c>, dequantized into a float
    /// model of its spec, whose metadata then includes <see cref="CheckpointMetadata.QuantizationKey"/>.
    /// </summary>
    public static (IScaleGrowModel Model, IReadOnlyDictionary<string, string> Metadata) LoadModel(byte[] bytes,
        string source)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (CheckpointCodec.ReadKind(bytes, source) is { } kind && ModelLoaders.TryGetValue(kind, out var load))
            return load(bytes, source);
        using var ms = new MemoryStream(bytes, writable: false);
        return FromCheckpoint(CheckpointCodec.LoadModel(ms, source), source);
    }

    /// <summary>
    /// Adds the loader of a model checkpoint kind other than <c>model</c>. The kind's owner registers it (the
    /// quantized checkpoint lives in Quantization, which builds on Checkpoints, not the other way round); a kind
    /// registered twice throws.
    /// </summary>
    public static void RegisterModelLoader(string kind, ModelLoader load)
    {
        ArgumentNullException.ThrowIfNull(load);
        if (kind == CheckpointMetadata.ModelKind || !ModelLoaders.TryAdd(kind, load))
            throw new InvalidOperationException($"a loader for checkpoint kind '{kind}' is already registered");
    }

    /// <summary>Reads a model checkpoint of a registered kind from its bytes.</summary>
    public delegate (IScaleGrowModel Model, IReadOnlyDictionary<string, string> Metadata) ModelLoader(byte[] bytes,
        string source);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, ModelLoader> ModelLoaders =
        new(StringComparer.Ordinal);

    /// <summary>
    /// Rebuilds a float model from a checkpoint of kind <c>model</c> read from a seekable stream, without holding the
    /// file in memory: the header is checked first, then each tensor is read from the stream straight into tensor
    /// memory (quantize-on-upload reads a blob this way, in chunks, at one pinned version).
    /// </summary>
    public static (IScaleGrowModel Model, IReadOnlyDictionary<string, string> Metadata) LoadModel(Stream stream,
        string source)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek) throw new ArgumentException("the stream must be seekable", nameof(stream));
        return FromCheckpoint(CheckpointCodec.LoadModel(stream, source), source);
    }

    private static (IScaleGrowModel Model, IReadOnlyDictionary<string, string> Metadata) FromCheckpoint(
        ModelCheckpoint checkpoint, string source)
    {
        try
        {
            ArchitectureSpec spec;
            try
            {
                spec = ArchitectureSpec.FromJson(checkpoint.SpecJson, source);
            }
            catch (InvalidSpecException e)
            {
                throw new CheckpointFormatException($"{source}: {e.Message}");
            }
            EnsureSpecFitsFile(spec, checkpoint.Tensors, source, valuesPerByte: null);
            var model = ModelFactory.Create(spec);
            Load(model.Module, checkpoint.Tensors, source);
            return (model, checkpoint.Metadata);
        }
        finally
        {
            // Aliased names hold the same object; Tensor's own Equals reads the (by then disposed) handle.
            foreach (var t in checkpoint.Tensors.Values.Distinct<Tensor>(ReferenceEqualityComparer.Instance))
                t.Dispose();
        }
    }

    /// <summary>
    /// Checks a checkpoint's spec against its file before the model is built — building allocates every parameter,
    /// so a small file whose spec claims a huge model (a 122 KB file claiming width 8,192 took 9.4 GB in
    /// <c>inspect</c>, issue 16) must be refused first: the spec must stay within the model memory limit
    /// (<see cref="ModelMemory"/>), and its parameter count must not exceed what the file can hold — its values, or
    /// for a packed quantized file <paramref name="valuesPerByte"/> values a byte. Names and shapes are then compared
    /// one by one after building (<see cref="Load"/>), which by then costs no more than the file itself. Twice the
    /// file's values are allowed, so that no counting convention for shared weights can refuse a real file.
    /// </summary>
    internal static void EnsureSpecFitsFile(ArchitectureSpec spec, IReadOnlyDictionary<string, Tensor> tensors,
        string source, double? valuesPerByte)
    {
        ModelMemory memory;
        try
        {
            memory = ModelMemory.EnsureWithinLimit(spec, batchSize: 1, source);
        }
        catch (InvalidSpecException e)
        {
            throw new CheckpointFormatException(e.Message);
        }
        var distinct = tensors.Values.Distinct<Tensor>(ReferenceEqualityComparer.Instance).ToList();
        double capacity = valuesPerByte is { } perByte
            ? distinct.Sum(t => (double)t.NumberOfElements * t.ElementSize) * perByte
            : distinct.Sum(t => (double)t.NumberOfElements);
        if (memory.Parameters > 2 * capacity)
            throw new CheckpointFormatException(
                $"{source}: the architecture spec ({spec.ArchString}) has {memory.Parameters:N0} parameters, but the " +
                $"file's {distinct.Count:N0} tensors hold {capacity:N0} values; the spec does not describe these " +
                "weights");
    }

    /// <summary>Copies tensors into a freshly built model; the names and shapes must match exactly.</summary>
    public static void Load(nn.Module model, IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        var target = model.state_dict();
        var missing = target.Keys.Where(k => !tensors.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
        if (missing.Count > 0)
            throw new CheckpointFormatException(
                $"{source}: tensor '{missing[0]}' required by the architecture spec is missing" +
                (missing.Count > 1 ? $" (and {missing.Count - 1} more)" : ""));
        var unexpected = tensors.Keys.Where(k => !target.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
        if (unexpected.Count > 0)
            throw new CheckpointFormatException(
                $"{source}: tensor '{unexpected[0]}' is not part of the architecture spec" +
                (unexpected.Count > 1 ? $" (and {unexpected.Count - 1} more)" : ""));
        using var noGrad = torch.no_grad();
        foreach (var (name, t) in target)
        {
            var value = tensors[name];
            if (!value.shape.SequenceEqual(t.shape))
                throw new CheckpointFormatException(
                    $"{source}: tensor '{name}' has shape [{string.Join(",", value.shape)}], the spec needs " +
                    $"[{string.Join(",", t.shape)}]");
            if (value.dtype != t.dtype)
                throw new CheckpointFormatException(
                    $"{source}: tensor '{name}' is {value.dtype}, the spec needs {t.dtype}");
            if (value.is_floating_point() && !value.isfinite().all().item<bool>())
                throw new CheckpointFormatException($"{source}: tensor '{name}' holds NaN or infinite values");
            t.copy_(value);
        }
    }

    public static byte[] SaveOptimizer(NamedOptimizerState state)
    {
        using var ms = new MemoryStream();
        using var scope = torch.NewDisposeScope();
        CheckpointCodec.SaveOptimizer(ms, new OptimizerCheckpoint(state.Scalars.ToJson(),
            AsStored(state.Moments.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal))));
        return ms.ToArray();
    }

    public static NamedOptimizerState LoadOptimizer(byte[] bytes, string source)
    {
        using var ms = new MemoryStream(bytes, writable: false);
        var checkpoint = CheckpointCodec.LoadOptimizer(ms, source);
        return new NamedOptimizerState(OptimizerScalars.FromJson(checkpoint.StateJson, source), checkpoint.Moments);
    }

    public static string OverlapJson(IReadOnlyDictionary<string, int[,]> maps) =>
        System.Text.Json.JsonSerializer.Serialize(maps.ToDictionary(kv => kv.Key, kv =>
            Enumerable.Range(0, kv.Value.GetLength(0)).Select(r =>
                Enumerable.Range(0, kv.Value.GetLength(1)).Select(c => kv.Value[r, c]).ToArray()).ToArray()));
}

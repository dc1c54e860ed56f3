using Microsoft.ML.OnnxRuntime;
using ScaleGrow.Checkpoints;
using ScaleGrow.Models;
using TorchSharp;
using static TorchSharp.torch;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace ScaleGrow.Export;

/// <summary>
/// An exported ONNX file run by ONNX Runtime (CPU), behind the same <see cref="IScaleGrowModel"/> face as a
/// checkpoint, so <c>eval</c> and <c>predict</c> (<see cref="Runs.Evaluation"/>) score it with the same data
/// pipeline: the spec, input normalisation and tokenizer come from the file's metadata. The module's forward copies
/// nothing in: ORT reads the input tensor's memory; the logits are copied out into a TorchSharp tensor. A file with a
/// fixed batch size is run in chunks of that size (the last one zero-padded).
/// </summary>
public sealed class OnnxRuntimeModel : IScaleGrowModel, IDisposable
{
    private readonly OnnxRuntimeModule _module;

    private OnnxRuntimeModel(OnnxRuntimeModule module, ArchitectureSpec spec,
        IReadOnlyDictionary<string, string> metadata)
    {
        _module = module;
        Spec = spec;
        Metadata = metadata;
    }

    public ArchitectureSpec Spec { get; }
    public nn.Module<Tensor, Tensor> Module => _module;

    /// <summary>The ONNX file's metadata (the checkpoint's keys: spec, input, tokenizer, quantization, export).
    /// </summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>True when <paramref name="path"/> names an ONNX file (by extension).</summary>
    public static bool IsOnnxPath(string path) => path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase);

    /// <summary>Opens an exported file. <paramref name="threads"/>: intra-op threads (default: TorchSharp's count,
    /// so timings compare like with like). <paramref name="optimizedModelPath"/>: where ORT should save the graph as
    /// it optimised it (to see what it folded; bench only).</summary>
    public static OnnxRuntimeModel Load(string path, int? threads = null, string? optimizedModelPath = null)
    {
        if (!File.Exists(path)) throw new CheckpointFormatException($"{path}: no such file");
        var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = threads ?? torch.get_num_threads(), InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        if (optimizedModelPath is not null) options.OptimizedModelFilePath = optimizedModelPath;
        InferenceSession session;
        try
        {
            session = new InferenceSession(path, options);
        }
        catch (OnnxRuntimeException e)
        {
            options.Dispose();
            throw new CheckpointFormatException($"{path}: ONNX Runtime cannot load it: " +
                                                e.Message.ReplaceLineEndings(" "));
        }
        try
        {
            var metadata = session.ModelMetadata.CustomMetadataMap;
            if (!metadata.TryGetValue(CheckpointMetadata.SpecKey, out var specJson))
                throw new CheckpointFormatException(
                    $"{path}: not a ScaleGrow export (no '{CheckpointMetadata.SpecKey}' in its metadata)");
            ArchitectureSpec spec;
            try
            {
                spec = ArchitectureSpec.FromJson(specJson, path);
            }
            catch (InvalidSpecException e)
            {
                throw new CheckpointFormatException($"{path}: {e.Message}");
            }
            return new OnnxRuntimeModel(new OnnxRuntimeModule(session, options), spec,
                new Dictionary<string, string>(metadata, StringComparer.Ordinal));
        }
        catch
        {
            session.Dispose();
            options.Dispose();
            throw;
        }
    }

    public void Dispose() => _module.Dispose();
}

/// <summary>The session as a TorchSharp module: (B, …) input → logits, in eval mode only.</summary>
internal sealed class OnnxRuntimeModule : nn.Module<Tensor, Tensor>
{
    private readonly InferenceSession _session;
    private readonly SessionOptions _options;
    private readonly string _input, _output;
    private readonly long? _fixedBatch;
    private readonly TensorElementType _inputType;

    public OnnxRuntimeModule(InferenceSession session, SessionOptions options) : base("onnx")
    {
        _session = session;
        _options = options;
        var input = session.InputMetadata.Single();
        _input = input.Key;
        _inputType = input.Value.ElementDataType;
        _output = session.OutputMetadata.First().Key;
        long first = input.Value.Dimensions[0];
        _fixedBatch = first > 0 ? first : null;
    }

    public override Tensor forward(Tensor x)
    {
        long batch = x.shape[0];
        if (_fixedBatch is not { } n || n == batch) return Run(x);
        using var scope = torch.NewDisposeScope();
        var parts = new List<Tensor>();
        for (long start = 0; start < batch; start += n)
        {
            long count = Math.Min(n, batch - start);
            var chunk = x.narrow(0, start, count);
            if (count < n)
            {
                var padded = torch.zeros([n, .. x.shape[1..]], x.dtype);
                padded.narrow(0, 0, count).copy_(chunk);
                chunk = padded;
            }
            parts.Add(Run(chunk).narrow(0, 0, count));
        }
        return torch.cat(parts, 0).MoveToOuterDisposeScope();
    }

    private unsafe Tensor Run(Tensor x)
    {
        var wanted = _inputType == TensorElementType.Int64 ? ScalarType.Int64 : ScalarType.Float32;
        using var input = x.to(wanted).cpu().contiguous();
        long bytes = input.NumberOfElements * input.ElementSize;
        using var value = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, _inputType, input.shape,
            TensorMemory.DataPointer(input), bytes);
        using var runOptions = new RunOptions();
        using var outputs = _session.Run(runOptions, [_input], [value], [_output]);
        var result = outputs[0];
        var shape = result.GetTensorTypeAndShape().Shape;
        var logits = torch.empty(shape, ScalarType.Float32);
        result.GetTensorDataAsSpan<float>().CopyTo(
            new Span<float>((void*)TensorMemory.DataPointer(logits), checked((int)logits.NumberOfElements)));
        return logits;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _session.Dispose();
            _options.Dispose();
        }
        base.Dispose(disposing);
    }
}

using System.Collections.Concurrent;
using System.Text.Json;
using ScaleGrow.Data;
using ScaleGrow.Data.Text;
using ScaleGrow.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Runs;

/// <summary>
/// The data a run trains and evaluates on — images (Fashion-MNIST, CIFAR) or labelled text (fortunes, a user's
/// label&lt;TAB&gt;text file) — behind one interface, so the run steps and the orchestration do not care which.
/// Batches are created lazily inside the caller's dispose scope (see the loaders).
/// </summary>
public interface IRunData
{
    string Name { get; }
    int NumClasses { get; }
    int TrainBatchCount(int batchSize);
    IEnumerable<(Tensor X, Tensor Y)> TrainEpoch(int batchSize, long seed, int epoch);
    IEnumerable<(Tensor X, Tensor Y)> ValidationBatches(int batchSize);
    IEnumerable<(Tensor X, Tensor Y)> TestBatches(int batchSize);

    /// <summary>The run's starting architecture for this data.</summary>
    ArchitectureSpec BuildArchitecture(ModelRequest request);

    /// <summary>Metadata every checkpoint of the run carries (the text tokenizer, so inference needs nothing else).</summary>
    IReadOnlyDictionary<string, string> CheckpointMetadata { get; }

    /// <summary>A random input batch of the model's input shape, for latency measurements.</summary>
    Tensor SampleInput(int batch);
}

/// <summary>Loads (and caches per process) the data of a run spec.</summary>
public static class RunData
{
    private static readonly ConcurrentDictionary<string, Lazy<IRunData>> Cache = new();

    public static IRunData For(RunSpec spec)
    {
        string key = spec.TextData is { } text
            ? "text:" + JsonSerializer.Serialize(text, RunStepsJson.Default.TextDatasetSpec)
            : "image:" + JsonSerializer.Serialize(spec.Data, RunStepsJson.Default.DatasetSpec);
        var lazy = Cache.GetOrAdd(key, _ => new Lazy<IRunData>(() => spec.TextData is { } t
            ? new TextRunData(TextDataLoader.Load(t))
            : new ImageRunData(DatasetLoader.Load(spec.Data))));
        try
        {
            return lazy.Value;
        }
        catch
        {
            Cache.TryRemove(key, out _); // a missing file today may be there tomorrow
            throw;
        }
    }
}

public sealed class ImageRunData(DataSplits data) : IRunData
{
    public DataSplits Splits => data;
    public string Name => data.Spec.Name;
    public int NumClasses => data.NumClasses;
    public int TrainBatchCount(int batchSize) => data.TrainBatches(batchSize, 0).BatchCount;
    public IEnumerable<(Tensor X, Tensor Y)> TrainEpoch(int batchSize, long seed, int epoch) =>
        data.TrainBatches(batchSize, seed).Epoch(epoch);
    public IEnumerable<(Tensor X, Tensor Y)> ValidationBatches(int batchSize) =>
        data.EvalBatches(data.Validation, batchSize).Epoch(0);
    public IEnumerable<(Tensor X, Tensor Y)> TestBatches(int batchSize) => data.EvalBatches(data.Test, batchSize).Epoch(0);
    public ArchitectureSpec BuildArchitecture(ModelRequest request) =>
        request.Build(data.Channels, data.Height, data.NumClasses);
    public IReadOnlyDictionary<string, string> CheckpointMetadata { get; } = new Dictionary<string, string>();
    public Tensor SampleInput(int batch) => torch.randn(batch, data.Channels, data.Height, data.Width);
}

public sealed class TextRunData(TextDataSplits data) : IRunData
{
    public TextDataSplits Splits => data;
    public string Name => data.Spec.Name;
    public int NumClasses => data.NumClasses;
    public int TrainBatchCount(int batchSize) => data.TrainBatches(batchSize, 0).BatchCount;
    public IEnumerable<(Tensor X, Tensor Y)> TrainEpoch(int batchSize, long seed, int epoch) =>
        data.TrainBatches(batchSize, seed).Epoch(epoch);
    public IEnumerable<(Tensor X, Tensor Y)> ValidationBatches(int batchSize) =>
        TextDataSplits.EvalBatches(data.Validation, batchSize).Epoch(0);
    public IEnumerable<(Tensor X, Tensor Y)> TestBatches(int batchSize) =>
        TextDataSplits.EvalBatches(data.Test, batchSize).Epoch(0);
    public ArchitectureSpec BuildArchitecture(ModelRequest request) =>
        request.Build(1, 1, data.NumClasses, data.Tokenizer.VocabSize, data.SequenceLength);
    public IReadOnlyDictionary<string, string> CheckpointMetadata => new Dictionary<string, string>
    {
        [TextTokenizer.MetadataKey] = data.Tokenizer.Save(),
        [MetadataKey] = JsonSerializer.Serialize(data.Spec, RunStepsJson.Default.TextDatasetSpec),
    };

    /// <summary>Checkpoint metadata key of the text dataset spec the model was trained on (for <c>eval</c>).</summary>
    public const string MetadataKey = "scalegrow.textData";

    /// <summary>
    /// The data a text checkpoint is evaluated on: the text data spec it recorded (with <paramref name="userFile"/>,
    /// a label&lt;TAB&gt;text file split the same way, instead), encoded with the tokenizer it carries, so the ids
    /// mean what they meant in training.
    /// </summary>
    public static TextRunData ForCheckpoint(IReadOnlyDictionary<string, string> metadata, string? userFile,
        string source)
    {
        if (!metadata.TryGetValue(TextTokenizer.MetadataKey, out var tokenizerJson))
            throw new InvalidSpecException($"{source}: a text model without '{TextTokenizer.MetadataKey}' metadata");
        var tokenizer = TextTokenizer.Load(tokenizerJson, source);
        TextDatasetSpec spec = new();
        if (metadata.TryGetValue(MetadataKey, out var specJson))
        {
            try
            {
                spec = JsonSerializer.Deserialize(specJson, RunStepsJson.Default.TextDatasetSpec) ?? spec;
            }
            catch (JsonException e)
            {
                throw new InvalidSpecException($"{source}: '{MetadataKey}' metadata is not a text dataset spec: {e.Message}");
            }
        }
        else if (userFile is null)
            throw new InvalidSpecException($"{source}: no '{MetadataKey}' metadata; pass --data FILE (label<TAB>text)");
        if (userFile is not null) spec = spec with { Name = TextDatasetSpec.LabelledText, Path = userFile };
        return new TextRunData(TextDataLoader.Load(spec, tokenizer));
    }
    public Tensor SampleInput(int batch) =>
        torch.randint(5, data.Tokenizer.VocabSize, new long[] { batch, data.SequenceLength });
}

using System.Collections.Concurrent;
using System.Text.Json;
using ScaleGrow.Data;
using ScaleGrow.Data.Text;
using ScaleGrow.Models;
using ScaleGrow.Scaling;
using ScaleGrow.Training;
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

    /// <summary>The training and evaluation loss: classification, or next-token prediction for language models.</summary>
    LossFunction Loss(double labelSmoothing) => Losses.Classification(labelSmoothing);

    /// <summary>Language models report perplexity (exp of the mean next-token loss) next to token accuracy.</summary>
    bool IsLanguageModel => false;
}

/// <summary>
/// Loads the data of a run spec and shares it: the steps of a run (and of other runs on the same data) that run in
/// one process, at the same time or one after another, use one loaded copy. Callers lease it for the length of a
/// step. At most <see cref="Capacity"/> datasets stay loaded while no step uses them; beyond that the least recently
/// used is dropped and its tensors freed, so a long-lived worker (the Functions app) that serves runs on many
/// different data specs does not keep every dataset it ever loaded.
/// </summary>
public static class RunData
{
    private static readonly object Gate = new();
    private static readonly Dictionary<string, Entry> Entries = new(StringComparer.Ordinal);
    private static long _clock;

    /// <summary>Datasets kept loaded while unused (default 2: a run's data and one more).</summary>
    public static int Capacity
    {
        get { lock (Gate) return _capacity; }
        set
        {
            if (value < 0) throw new ArgumentOutOfRangeException(nameof(value), value, "capacity must be >= 0");
            List<IRunData> evicted;
            lock (Gate)
            {
                _capacity = value;
                evicted = EvictIdle();
            }
            DisposeAll(evicted);
        }
    }

    private static int _capacity = 2;

    /// <summary>How many datasets are loaded now (leased or idle).</summary>
    public static int Loaded
    {
        get { lock (Gate) return Entries.Count; }
    }

    /// <summary>The spec's data, loaded once; dispose the lease when the step is done with it.</summary>
    public static RunDataLease Lease(RunSpec spec)
    {
        string key = spec.TextData is { } text
            ? "text:" + JsonSerializer.Serialize(text, RunStepsJson.Default.TextDatasetSpec)
            : "image:" + JsonSerializer.Serialize(spec.Data, RunStepsJson.Default.DatasetSpec);
        Entry entry;
        lock (Gate)
        {
            if (!Entries.TryGetValue(key, out entry!))
                Entries[key] = entry = new Entry(new Lazy<IRunData>(() => Load(spec)));
            entry.Leases++;
            entry.LastUsed = ++_clock;
        }
        try
        {
            return new RunDataLease(entry.Data.Value, () => Release(entry));
        }
        catch
        {
            lock (Gate)
            {
                entry.Leases--;
                // A missing file today may be there tomorrow: do not keep the failure.
                if (Entries.TryGetValue(key, out var current) && ReferenceEquals(current, entry)) Entries.Remove(key);
            }
            throw;
        }
    }

    private static IRunData Load(RunSpec spec) => spec.TextData switch
    {
        { IsLanguageModel: true } lm => new LanguageModelRunData(LanguageModelDataLoader.Load(lm)),
        { } t => new TextRunData(TextDataLoader.Load(t)),
        null => new ImageRunData(DatasetLoader.Load(spec.Data)),
    };

    private static void Release(Entry entry)
    {
        List<IRunData> evicted;
        lock (Gate)
        {
            entry.Leases--;
            evicted = EvictIdle();
        }
        DisposeAll(evicted);
    }

    /// <summary>Drops the least recently used idle datasets beyond the capacity (caller holds the gate).</summary>
    private static List<IRunData> EvictIdle()
    {
        var evicted = new List<IRunData>();
        int idle = Entries.Count(e => e.Value.Leases == 0);
        foreach (var (key, entry) in Entries.Where(e => e.Value.Leases == 0).OrderBy(e => e.Value.LastUsed).ToList())
        {
            if (idle-- <= _capacity) break;
            Entries.Remove(key);
            if (entry.Data.IsValueCreated) evicted.Add(entry.Data.Value);
        }
        return evicted;
    }

    private static void DisposeAll(List<IRunData> evicted)
    {
        foreach (var data in evicted) (data as IDisposable)?.Dispose();
    }

    private sealed class Entry(Lazy<IRunData> data)
    {
        public Lazy<IRunData> Data { get; } = data;
        public int Leases { get; set; }
        public long LastUsed { get; set; }
    }
}

/// <summary>A step's use of a run's shared data (<see cref="RunData.Lease"/>); disposing it returns the data.</summary>
public sealed class RunDataLease(IRunData data, Action release) : IDisposable
{
    private int _released;
    public IRunData Data { get; } = data;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0) release();
    }
}

/// <summary>
/// What image and text classification data share: train, validation and test splits read through batch loaders,
/// seeded and shuffled for training, in order for evaluation. Each kind says how to make its loaders.
/// </summary>
public abstract class ClassificationRunData(string name, int numClasses)
{
    public string Name => name;
    public int NumClasses => numClasses;
    public int TrainBatchCount(int batchSize) => TrainLoader(batchSize, 0).BatchCount;
    public IEnumerable<(Tensor X, Tensor Y)> TrainEpoch(int batchSize, long seed, int epoch) =>
        TrainLoader(batchSize, seed).Epoch(epoch);
    public IEnumerable<(Tensor X, Tensor Y)> ValidationBatches(int batchSize) => ValidationLoader(batchSize).Epoch(0);
    public IEnumerable<(Tensor X, Tensor Y)> TestBatches(int batchSize) => TestLoader(batchSize).Epoch(0);

    protected abstract IBatchLoader TrainLoader(int batchSize, long seed);
    protected abstract IBatchLoader ValidationLoader(int batchSize);
    protected abstract IBatchLoader TestLoader(int batchSize);
}

public sealed class ImageRunData(DataSplits data)
    : ClassificationRunData(data.Spec.Name, data.NumClasses), IRunData, IDisposable
{
    public DataSplits Splits => data;
    protected override IBatchLoader TrainLoader(int batchSize, long seed) => data.TrainBatches(batchSize, seed);
    protected override IBatchLoader ValidationLoader(int batchSize) => data.EvalBatches(data.Validation, batchSize);
    protected override IBatchLoader TestLoader(int batchSize) => data.EvalBatches(data.Test, batchSize);
    public ArchitectureSpec BuildArchitecture(ModelRequest request) =>
        request.Build(data.Channels, data.Height, data.NumClasses);
    /// <summary>The input pipeline (normalisation statistics, input shape, dataset), so a checkpoint can be evaluated
    /// on any copy of the data exactly as it was trained.</summary>
    public IReadOnlyDictionary<string, string> CheckpointMetadata { get; } = new Dictionary<string, string>
    {
        [InputNormalization.MetadataKey] = InputNormalization.Of(data).ToJson(),
    };
    public Tensor SampleInput(int batch) => torch.randn(batch, data.Channels, data.Height, data.Width); // host: placed by its user

    /// <summary>
    /// The evaluation data of an image checkpoint: <paramref name="spec"/>'s images (its dataset name defaults to the
    /// one the checkpoint recorded), normalised with the statistics the checkpoint recorded. A checkpoint written
    /// before they were recorded falls back to the statistics of <paramref name="spec"/>'s training split; the
    /// returned note says so (the caller shows it on stderr or in its report).
    /// </summary>
    public static (ImageRunData Data, string? Note) ForCheckpoint(IReadOnlyDictionary<string, string> metadata,
        DatasetSpec spec, string source)
    {
        var recorded = InputNormalization.FromMetadata(metadata, source);
        var splits = DatasetLoader.Load(spec, recorded);
        string? note = recorded is null
            ? $"{source} does not record its input normalisation (written before it was stored); normalising with " +
              $"the statistics of this {spec.Name} training split (mean {Format(splits.Mean)}, std " +
              $"{Format(splits.Std)}), which can differ from training's"
            : null;
        return (new ImageRunData(splits), note);
    }

    private static string Format(double[] values) =>
        string.Join("/", values.Select(v => v.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture)));
    public void Dispose() => data.Dispose();
}

public sealed class TextRunData(TextDataSplits data)
    : ClassificationRunData(data.Spec.Name, data.NumClasses), IRunData, IDisposable
{
    public TextDataSplits Splits => data;
    protected override IBatchLoader TrainLoader(int batchSize, long seed) => data.TrainBatches(batchSize, seed);
    protected override IBatchLoader ValidationLoader(int batchSize) =>
        TextDataSplits.EvalBatches(data.Validation, batchSize);
    protected override IBatchLoader TestLoader(int batchSize) => TextDataSplits.EvalBatches(data.Test, batchSize);
    public ArchitectureSpec BuildArchitecture(ModelRequest request) =>
        request.Build(1, 1, data.NumClasses, data.Tokenizer.VocabSize, data.SequenceLength);
    public IReadOnlyDictionary<string, string> CheckpointMetadata => new Dictionary<string, string>
    {
        [TextTokenizer.MetadataKey] = data.Tokenizer.Save(),
        [MetadataKey] = JsonSerializer.Serialize(data.Spec, RunStepsJson.Default.TextDatasetSpec),
    };

    /// <summary>Checkpoint metadata key of the text dataset spec the model was trained on (for <c>eval</c>).</summary>
    public const string MetadataKey = TextDatasetSpec.MetadataKey;

    /// <summary>
    /// The data a text checkpoint is evaluated on: the text data spec it recorded (with <paramref name="userFile"/>,
    /// a label&lt;TAB&gt;text file split the same way, instead), encoded with the tokenizer it carries, so the ids
    /// mean what they meant in training.
    /// </summary>
    public static IRunData ForCheckpoint(IReadOnlyDictionary<string, string> metadata, string? userFile,
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
        if (spec.IsLanguageModel)
        {
            if (userFile is not null) spec = spec with { Name = TextDatasetSpec.TextFile, Path = userFile };
            return new LanguageModelRunData(LanguageModelDataLoader.Load(spec, tokenizer));
        }
        if (userFile is not null) spec = spec with { Name = TextDatasetSpec.LabelledText, Path = userFile };
        return new TextRunData(TextDataLoader.Load(spec, tokenizer));
    }
    public Tensor SampleInput(int batch) =>
        torch.randint(5, data.Tokenizer.VocabSize, new long[] { batch, data.SequenceLength }); // host: placed by its user
    public void Dispose() => data.Dispose();
}

/// <summary>
/// Next-token data for decoders (<see cref="LanguageModelSplits"/>). An epoch is as many random windows of
/// <c>context + 1</c> tokens as cover the training stream once, drawn from a seed derived from (run seed, epoch), so a
/// resumed epoch replays the same windows. Validation and test tile their streams with non-overlapping windows
/// (<see cref="LanguageModeling"/>); at most <see cref="MaxEvalWindows"/> windows per batch, because the logits of one
/// batch hold windows × context × vocabulary floats.
/// </summary>
public sealed class LanguageModelRunData(LanguageModelSplits data) : IRunData
{
    public const int MaxEvalWindows = 32;

    public LanguageModelSplits Splits => data;
    public string Name => data.Spec.Name + " (language model)";
    public int NumClasses => data.Tokenizer.VocabSize;
    public bool IsLanguageModel => true;
    public LossFunction Loss(double labelSmoothing) => Losses.NextToken();

    public int TrainBatchCount(int batchSize) =>
        Math.Max(1, data.Train.Count / (Math.Max(1, batchSize) * data.Context));

    public IEnumerable<(Tensor X, Tensor Y)> TrainEpoch(int batchSize, long seed, int epoch) =>
        LanguageModeling.TrainingBatches(data.Train, data.Context, batchSize, TrainBatchCount(batchSize),
            Seeds.Derive(seed, "lm-windows", epoch));

    public IEnumerable<(Tensor X, Tensor Y)> ValidationBatches(int batchSize) =>
        LanguageModeling.EvaluationBatches(data.Validation, data.Context, Math.Min(batchSize, MaxEvalWindows));

    public IEnumerable<(Tensor X, Tensor Y)> TestBatches(int batchSize) =>
        LanguageModeling.EvaluationBatches(data.Test, data.Context, Math.Min(batchSize, MaxEvalWindows));

    public ArchitectureSpec BuildArchitecture(ModelRequest request) =>
        request.Build(1, 1, data.Tokenizer.VocabSize, data.Tokenizer.VocabSize, data.Context);

    public IReadOnlyDictionary<string, string> CheckpointMetadata => new Dictionary<string, string>
    {
        [TextTokenizer.MetadataKey] = data.Tokenizer.Save(),
        [TextRunData.MetadataKey] = JsonSerializer.Serialize(data.Spec, RunStepsJson.Default.TextDatasetSpec),
    };

    public Tensor SampleInput(int batch) =>
        torch.randint(5, data.Tokenizer.VocabSize, new long[] { batch, data.Context }); // host: placed by its user
}

using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Data.Text;

/// <summary>
/// A labelled text set encoded for a Transformer classifier: int64 token ids (N, T) — each row [CLS], pieces, [SEP],
/// [PAD]… as <see cref="TextTokenizer.Encode"/> makes it — and int64 labels (N), with the class names. Like
/// <see cref="ImageDataset"/>, it owns its two tensors (detached from any dispose scope) and frees them on
/// <see cref="Dispose"/>; <see cref="TextBatchLoader"/> cuts batches from them.
/// </summary>
public sealed class TextDataset : IDisposable
{
    private readonly Tensor _tokens;
    private readonly Tensor _labels;
    private bool _disposed;

    /// <summary>Takes ownership of <paramref name="tokens"/> (int64 N,T) and <paramref name="labels"/> (int64 N).
    /// </summary>
    public TextDataset(string name, Tensor tokens, Tensor labels, IReadOnlyList<string> classNames, int padId = 0)
    {
        if (tokens.dtype != ScalarType.Int64 || tokens.dim() != 2)
            throw new ArgumentException($"{name}: tokens must be int64 (N, T), got {tokens.dtype} " +
                                        $"[{string.Join(", ", tokens.shape)}]", nameof(tokens));
        if (labels.dtype != ScalarType.Int64 || labels.dim() != 1 || labels.shape[0] != tokens.shape[0])
            throw new ArgumentException($"{name}: labels must be int64 ({tokens.shape[0]}), got {labels.dtype} " +
                                        $"[{string.Join(", ", labels.shape)}]", nameof(labels));
        if (classNames.Count < 1) throw new ArgumentException($"{name}: no classes", nameof(classNames));
        Name = name;
        ClassNames = classNames;
        PadId = padId;
        Count = checked((int)tokens.shape[0]);
        SequenceLength = checked((int)tokens.shape[1]);
        _tokens = Own(tokens);
        _labels = Own(labels);
    }

    /// <summary>
    /// Encodes <paramref name="samples"/> with <paramref name="tokenizer"/> into rows of
    /// <paramref name="sequenceLength"/> ids (texts with more pieces are cut, shorter ones padded).
    /// </summary>
    public static TextDataset Encode(string name, IReadOnlyList<LabelledText> samples,
        IReadOnlyList<string> classNames, TextTokenizer tokenizer, int sequenceLength)
    {
        if (sequenceLength < 2)
            throw new InvalidSpecException($"{name}: sequence length must be at least 2 ([CLS] and [SEP]), " +
                                           $"got {sequenceLength}");
        var ids = new long[(long)samples.Count * sequenceLength];
        var labels = new long[samples.Count];
        for (int i = 0; i < samples.Count; i++)
        {
            if (samples[i].Label < 0 || samples[i].Label >= classNames.Count)
                throw new ArgumentException($"{name}: sample {i} has label {samples[i].Label}, outside 0.." +
                                            $"{classNames.Count - 1}", nameof(samples));
            tokenizer.EncodeInto(samples[i].Text, ids.AsSpan(i * sequenceLength, sequenceLength));
            labels[i] = samples[i].Label;
        }
        using var scope = torch.NewDisposeScope();
        return new TextDataset(name, torch.tensor(ids, new long[] { samples.Count, sequenceLength }),
            torch.tensor(labels, new long[] { samples.Count }), classNames, tokenizer.PadId);
    }

    /// <summary>The dataset name with its split, e.g. <c>fortunes/train</c>.</summary>
    public string Name { get; }

    /// <summary>Class id → name.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    public int NumClasses => ClassNames.Count;
    public int Count { get; }

    /// <summary>T, the number of ids per row.</summary>
    public int SequenceLength { get; }

    /// <summary>The id that fills rows past their text (what an attention mask hides).</summary>
    public int PadId { get; }

    /// <summary>The int64 token ids (N, T); owned by this dataset, do not dispose.</summary>
    public Tensor Tokens => Alive(_tokens);

    /// <summary>The int64 labels (N); owned by this dataset, do not dispose.</summary>
    public Tensor Labels => Alive(_labels);

    /// <summary>How many samples each class has (index = class id).</summary>
    public long[] ClassCounts()
    {
        using var scope = torch.NewDisposeScope();
        return torch.bincount(Labels, minlength: NumClasses).data<long>().ToArray();
    }

    /// <summary>How many non-[PAD] ids each row has (for statistics and truncation checks).</summary>
    public long[] Lengths()
    {
        using var scope = torch.NewDisposeScope();
        return Tokens.ne(PadId).sum(1).data<long>().ToArray();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _tokens.Dispose();
        _labels.Dispose();
    }

    private static Tensor Own(Tensor t) => TensorOwnership.Own(t);

    private Tensor Alive(Tensor t) => _disposed ? throw new ObjectDisposedException(Name) : t;
}

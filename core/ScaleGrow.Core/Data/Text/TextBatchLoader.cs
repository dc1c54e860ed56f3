using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Data.Text;

/// <summary>How a <see cref="TextBatchLoader"/> walks its dataset.</summary>
/// <param name="BatchSize">Samples per batch; 32, the usual BERT fine-tuning batch (the thesis states none for its
/// text tasks).</param>
/// <param name="Shuffle">A new seeded order every epoch (training); false: dataset order (evaluation).</param>
/// <param name="DropLast">Skip a last batch smaller than <see cref="BatchSize"/>.</param>
/// <param name="Seed">Seed of the batch order; each epoch derives its own from it.</param>
/// <param name="TrimPadding">Cut each batch's trailing columns that are [PAD] in every row, so short texts cost
/// short sequences. Only for models that mask [PAD] (their output then does not depend on it).</param>
public sealed record TextBatchOptions(
    int BatchSize = 32,
    bool Shuffle = true,
    bool DropLast = false,
    long Seed = 0,
    bool TrimPadding = false)
{
    /// <summary>Dataset order, every sample once.</summary>
    public static TextBatchOptions Evaluation(int batchSize) => new(BatchSize: batchSize, Shuffle: false);
}

/// <summary>
/// Yields (ids, labels) batches of a <see cref="TextDataset"/>: ids int64 (B, T), labels int64 (B). The order of an
/// epoch comes from a seed derived from (seed, epoch) — the same derivation as the image <see cref="BatchLoader"/>
/// — so a resumed epoch replays identically. Batches are made lazily: each MoveNext builds one batch in a private
/// dispose scope and moves only ids and labels out, into the scope current at that moment (the caller's step).
/// </summary>
public sealed class TextBatchLoader : IBatchLoader
{
    private readonly TextDataset _data;
    private readonly long[]? _lengths;

    public TextBatchLoader(TextDataset data, TextBatchOptions options)
    {
        if (options.BatchSize < 1)
            throw new InvalidSpecException($"text batch loader: batchSize must be positive, got {options.BatchSize}");
        _data = data;
        Options = options;
        if (options.TrimPadding) _lengths = data.Lengths();
    }

    public TextBatchOptions Options { get; }
    public TextDataset Dataset => _data;

    /// <summary>Batches per epoch.</summary>
    public int BatchCount => Options.DropLast
        ? _data.Count / Options.BatchSize
        : (_data.Count + Options.BatchSize - 1) / Options.BatchSize;

    /// <summary>The sample order of one epoch (dataset order when not shuffling).</summary>
    public long[] Order(int epoch)
    {
        if (Options.Shuffle)
            return new SampleRandom(Seeds.Derive(Options.Seed, "batch-order", epoch)).Permutation(_data.Count);
        var order = new long[_data.Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        return order;
    }

    /// <summary>The batches of one epoch; enumerate inside the step's dispose scope.</summary>
    public IEnumerable<(Tensor Ids, Tensor Labels)> Epoch(int epoch)
    {
        var order = Order(epoch);
        int batchSize = Options.BatchSize;
        for (int start = 0; start < order.Length; start += batchSize)
        {
            int size = Math.Min(batchSize, order.Length - start);
            if (size < batchSize && Options.DropLast) yield break;
            yield return MakeBatch(order.AsSpan(start, size).ToArray());
        }
    }

    IEnumerable<(Tensor X, Tensor Y)> IBatchLoader.Epoch(int epoch) => Epoch(epoch);

    private (Tensor Ids, Tensor Labels) MakeBatch(long[] indices)
    {
        using var scope = torch.NewDisposeScope();
        var index = torch.tensor(indices, new long[] { indices.Length });
        var ids = _data.Tokens.index_select(0, index); // (B, T)
        var labels = _data.Labels.index_select(0, index); // (B)
        if (_lengths is not null)
        {
            // Rows are [CLS], pieces, [SEP], then only [PAD]: the longest row's length is the width needed.
            long used = 1;
            foreach (long i in indices) used = Math.Max(used, _lengths[i]);
            if (used < ids.shape[1]) ids = ids.narrow(1, 0, used).contiguous();
        }
        return (ids.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope());
    }
}

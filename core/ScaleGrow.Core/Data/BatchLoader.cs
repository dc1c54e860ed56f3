using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Data;

/// <summary>How a <see cref="BatchLoader"/> walks its dataset.</summary>
public sealed record BatchOptions
{
    /// <summary>
    /// 128, the common batch size for these small-image sets; table 3-18 of the thesis states none, and this matches
    /// <c>TrainingOptions.BatchSize</c>.
    /// </summary>
    public int BatchSize { get; init; } = 128;
    public bool Shuffle { get; init; } = true;
    public AugmentSpec Augment { get; init; } = AugmentSpec.None;

    /// <summary>Skip a last batch smaller than <see cref="BatchSize"/>.</summary>
    public bool DropLast { get; init; }

    /// <summary>Seed of the batch order and the augmentation; each epoch derives its own from it.</summary>
    public long Seed { get; init; }

    /// <summary>Dataset order, no augmentation, every sample once.</summary>
    public static BatchOptions Evaluation(int batchSize) => new() { BatchSize = batchSize, Shuffle = false };
}

/// <summary>
/// Yields (x, y) batches of an <see cref="ImageDataset"/>: x float32 (B, C, H, W) normalised per channel, y int64 (B).
/// Sample order and augmentation draws come from a seed derived from (seed, epoch), so an epoch replays identically
/// after a resume. Augmentation works on the uint8 batch: one zero-padded copy of the batch, then a single gather
/// whose row and column indices encode each sample's crop offset and flip, so its cost does not grow with the number
/// of distinct offsets. Each batch is built inside its own dispose scope; only x and y leave it, moved to the
/// caller's scope (the trainer opens one per step), so nothing the loader makes outlives the step that used it.
/// </summary>
public sealed class BatchLoader : IBatchLoader
{
    private readonly ImageDataset _data;
    private readonly float[] _scale;
    private readonly float[] _shift;

    /// <param name="mean">Per-channel mean in [0, 1] pixel units (see <see cref="DataSplits.Mean"/>).</param>
    /// <param name="std">Per-channel standard deviation in the same units.</param>
    public BatchLoader(ImageDataset data, double[] mean, double[] std, BatchOptions options)
    {
        if (options.BatchSize < 1)
            throw new InvalidSpecException($"batch loader: batchSize must be positive, got {options.BatchSize}");
        options.Augment.Validate();
        if (mean.Length != data.Channels || std.Length != data.Channels)
            throw new ArgumentException(
                $"{data.Name}: {data.Channels} channels, but {mean.Length} means and {std.Length} standard deviations");
        if (std.Any(s => !(s > 0) || !double.IsFinite(s)))
            throw new ArgumentException($"{data.Name}: standard deviations must be positive", nameof(std));
        _data = data;
        Options = options;
        // x = (pixel / 255 - mean) / std, folded into one multiply-add per element.
        _scale = std.Select(s => (float)(1.0 / (255.0 * s))).ToArray();
        _shift = mean.Zip(std, (m, s) => (float)(-m / s)).ToArray();
    }

    public BatchOptions Options { get; }
    public ImageDataset Dataset => _data;

    /// <summary>Batches per epoch.</summary>
    public int BatchCount => Options.DropLast
        ? _data.Count / Options.BatchSize
        : (_data.Count + Options.BatchSize - 1) / Options.BatchSize;

    /// <summary>
    /// The batches of one epoch. Enumerate it lazily inside the step's dispose scope: each MoveNext builds one batch
    /// whose tensors belong to the scope that is current at that moment.
    /// </summary>
    public IEnumerable<(Tensor X, Tensor Y)> Epoch(int epoch)
    {
        int count = _data.Count;
        int batchSize = Options.BatchSize;
        long[] order;
        if (Options.Shuffle)
            order = new SampleRandom(Seeds.Derive(Options.Seed, "batch-order", epoch)).Permutation(count);
        else
        {
            order = new long[count];
            for (int i = 0; i < count; i++) order[i] = i;
        }
        var augmentRandom = new SampleRandom(Seeds.Derive(Options.Seed, "augment", epoch));
        for (int start = 0; start < count; start += batchSize)
        {
            int size = Math.Min(batchSize, count - start);
            if (size < batchSize && Options.DropLast) yield break;
            yield return MakeBatch(order.AsSpan(start, size), ref augmentRandom);
        }
    }

    /// <summary>Builds one batch in a private scope and hands only x and y to the caller's scope.</summary>
    private (Tensor X, Tensor Y) MakeBatch(ReadOnlySpan<long> indices, ref SampleRandom random)
    {
        int b = indices.Length;
        var augment = Options.Augment;
        // Draws happen before any tensor work so the sequence per epoch is fixed by the seed alone.
        int[]? rowStart = null, columnStart = null;
        bool[]? flip = null;
        if (!augment.IsNone)
        {
            int offsets = 2 * augment.CropPadding + 1;
            rowStart = new int[b];
            columnStart = new int[b];
            flip = new bool[b];
            for (int i = 0; i < b; i++)
            {
                rowStart[i] = random.NextInt(offsets);
                columnStart[i] = random.NextInt(offsets);
                flip[i] = augment.HorizontalFlip && random.NextBool();
            }
        }
        using var scope = torch.NewDisposeScope();
        var index = torch.tensor(indices.ToArray(), new long[] { b });
        var pixels = _data.Images.index_select(0, index); // (B, C, H, W) uint8
        var y = _data.Labels.index_select(0, index); // (B)
        if (rowStart is not null) pixels = CropAndFlip(pixels, augment.CropPadding, rowStart, columnStart!, flip!);
        var x = pixels.to(ScalarType.Float32);
        if (_data.Channels == 1) x.mul_(_scale[0]).add_(_shift[0]);
        else
        {
            var shape = new long[] { 1, _data.Channels, 1, 1 };
            x.mul_(torch.tensor(_scale, shape)).add_(torch.tensor(_shift, shape));
        }
        return (x.MoveToOuterDisposeScope(), y.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Random crops of the zero-padded images and optional horizontal flips, as one gather:
    /// out[i, c, r, k] = padded[i, c, rowStart[i] + r, flip[i] ? columnStart[i] + W - 1 - k : columnStart[i] + k].
    /// </summary>
    internal static Tensor CropAndFlip(Tensor pixels, int padding, int[] rowStart, int[] columnStart, bool[] flip)
    {
        long b = pixels.shape[0], c = pixels.shape[1], h = pixels.shape[2], w = pixels.shape[3];
        var padded = padding > 0
            ? nn.functional.pad(pixels, new long[] { padding, padding, padding, padding }, PaddingModes.Constant, 0)
            : pixels; // (B, C, H + 2p, W + 2p)
        var rows = new long[b * h];
        var columns = new long[b * w];
        for (int i = 0; i < b; i++)
        {
            for (int r = 0; r < h; r++) rows[i * h + r] = rowStart[i] + r;
            for (int k = 0; k < w; k++) columns[i * w + k] = columnStart[i] + (flip[i] ? w - 1 - k : k);
        }
        var sampleIndex = torch.arange(b, dtype: ScalarType.Int64).view(b, 1, 1, 1);
        var channelIndex = torch.arange(c, dtype: ScalarType.Int64).view(1, c, 1, 1);
        var rowIndex = torch.tensor(rows, new long[] { b, 1, h, 1 });
        var columnIndex = torch.tensor(columns, new long[] { b, 1, 1, w });
        return padded.index(sampleIndex, channelIndex, rowIndex, columnIndex); // (B, C, H, W)
    }
}

using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Data;

/// <summary>
/// A labelled image set held in memory as compact uint8 pixels (N, C, H, W) and int64 labels (N); conversion to
/// float and normalisation happen per batch in <see cref="BatchLoader"/>, so a 60k-image set costs ~47 MB, not 188.
/// The dataset owns its two tensors: they are detached from any dispose scope and freed by <see cref="Dispose"/>.
/// </summary>
public sealed class ImageDataset : IDisposable
{
    private readonly Tensor _images;
    private readonly Tensor _labels;
    private bool _disposed;

    /// <summary>Takes ownership of <paramref name="images"/> (uint8 N,C,H,W) and <paramref name="labels"/> (int64
    /// N).</summary>
    public ImageDataset(string name, Tensor images, Tensor labels, int numClasses)
    {
        if (images.dtype != ScalarType.Byte || images.dim() != 4)
            throw new ArgumentException($"{name}: images must be uint8 (N, C, H, W), got {images.dtype} " +
                                        $"[{string.Join(", ", images.shape)}]", nameof(images));
        if (labels.dtype != ScalarType.Int64 || labels.dim() != 1 || labels.shape[0] != images.shape[0])
            throw new ArgumentException($"{name}: labels must be int64 ({images.shape[0]}), got {labels.dtype} " +
                                        $"[{string.Join(", ", labels.shape)}]", nameof(labels));
        if (numClasses < 1) throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "must be >= 1");
        if (images.shape[0] > int.MaxValue) throw new ArgumentException($"{name}: too many images", nameof(images));
        Name = name;
        NumClasses = numClasses;
        _images = Own(images);
        _labels = Own(labels);
        Count = (int)images.shape[0];
        Channels = (int)images.shape[1];
        Height = (int)images.shape[2];
        Width = (int)images.shape[3];
    }

    /// <summary>The dataset name with its split, e.g. <c>fashion-mnist/train</c>.</summary>
    public string Name { get; }
    public int NumClasses { get; }
    public int Count { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }

    /// <summary>The uint8 pixels (N, C, H, W); owned by this dataset, do not dispose.</summary>
    public Tensor Images => Alive(_images);

    /// <summary>The int64 labels (N); owned by this dataset, do not dispose.</summary>
    public Tensor Labels => Alive(_labels);

    /// <summary>A new dataset with copies of the samples at <paramref name="indices"/>, in that order.</summary>
    public ImageDataset Subset(long[] indices, string? name = null)
    {
        foreach (long i in indices)
            if (i < 0 || i >= Count)
                throw new ArgumentOutOfRangeException(nameof(indices), i, $"{Name}: index outside 0..{Count - 1}");
        using var scope = torch.NewDisposeScope();
        var index = torch.tensor(indices, new long[] { indices.Length });
        return new ImageDataset(name ?? Name, Images.index_select(0, index), Labels.index_select(0, index),
            NumClasses);
    }

    /// <summary>A new dataset with copies of the first <paramref name="n"/> samples (all of them if fewer).</summary>
    public ImageDataset Take(int n, string? name = null)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "must be non-negative");
        var first = new long[Math.Min(n, Count)];
        for (int i = 0; i < first.Length; i++) first[i] = i;
        return Subset(first, name);
    }

    /// <summary>How many samples each class has (index = label).</summary>
    public long[] ClassCounts()
    {
        using var scope = torch.NewDisposeScope();
        var counts = torch.bincount(Labels, minlength: NumClasses).data<long>().ToArray();
        return counts;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _images.Dispose();
        _labels.Dispose();
    }

    private static Tensor Own(Tensor t) => TensorOwnership.Own(t);

    private Tensor Alive(Tensor t) => _disposed ? throw new ObjectDisposedException(Name) : t;
}

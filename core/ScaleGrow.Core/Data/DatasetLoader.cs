using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Data;

/// <summary>
/// The prepared splits of one dataset and the per-channel normalisation they were prepared with. Mean and Std are
/// in units of [0, 1] pixels, measured on <see cref="Train"/> — or, when a model is evaluated, the ones its checkpoint
/// recorded (<see cref="InputNormalization"/>), so inference normalises its inputs exactly as training did.
/// Disposing the splits frees their tensors.
/// </summary>
public sealed class DataSplits : IDisposable
{
    public DataSplits(DatasetSpec spec, ImageDataset train, ImageDataset validation, ImageDataset test,
        double[] mean, double[] std, long[]? testIndices = null)
    {
        if (testIndices is not null && testIndices.Length != test.Count)
            throw new ArgumentException($"{test.Name}: {testIndices.Length} test indices for {test.Count} samples",
                nameof(testIndices));
        Spec = spec;
        Train = train;
        Validation = validation;
        Test = test;
        Mean = mean;
        Std = std;
        TestIndices = testIndices ?? Enumerable.Range(0, test.Count).Select(i => (long)i).ToArray();
    }

    public DatasetSpec Spec { get; }
    public ImageDataset Train { get; }
    public ImageDataset Validation { get; }
    public ImageDataset Test { get; }

    /// <summary>Per-channel mean of the training pixels (0 for each channel when normalisation is off).</summary>
    public double[] Mean { get; }

    /// <summary>Per-channel standard deviation of the training pixels (1 when normalisation is off).</summary>
    public double[] Std { get; }

    /// <summary>For each sample of <see cref="Test"/>, its index in the dataset's full test set (a seeded
    /// <c>testLimit</c> subset keeps file order, so these ascend).</summary>
    public IReadOnlyList<long> TestIndices { get; }

    public int NumClasses => Train.NumClasses;
    public int Channels => Train.Channels;
    public int Height => Train.Height;
    public int Width => Train.Width;

    /// <summary>Shuffled training batches with the spec's augmentation and this split's normalisation.</summary>
    public BatchLoader TrainBatches(int batchSize, long seed, bool dropLast = false) =>
        new(Train, Mean, Std, new BatchOptions
        {
            BatchSize = batchSize, Shuffle = true, Augment = Spec.EffectiveAugment, DropLast = dropLast, Seed = seed,
        });

    /// <summary>Batches of <paramref name="set"/> in order, unaugmented, with this split's normalisation.</summary>
    public BatchLoader EvalBatches(ImageDataset set, int batchSize) =>
        new(set, Mean, Std, BatchOptions.Evaluation(batchSize));

    public void Dispose()
    {
        Train.Dispose();
        Validation.Dispose();
        Test.Dispose();
    }
}

/// <summary>
/// Turns a <see cref="DatasetSpec"/> into <see cref="DataSplits"/>: finds and reads the files, takes the seeded
/// limits and validation split, and measures the normalisation statistics on the training split.
/// </summary>
public static class DatasetLoader
{
    /// <summary>Where Debian's dataset-fashion-mnist package installs the four .gz IDX files.</summary>
    public const string FashionMnistDefaultDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>Used for MNIST when it exists (same layout as Fashion-MNIST).</summary>
    public const string MnistDefaultDirectory = "/usr/share/datasets/mnist";

    /// <summary>Validates the spec, reads the data and prepares the splits.</summary>
    /// <param name="normalization">A model's recorded input pipeline: its statistics replace the ones measured on
    /// this data's training split, and its input shape must match the data's.</param>
    public static DataSplits Load(DatasetSpec spec, InputNormalization? normalization = null)
    {
        spec.Validate();
        string directory = ResolveDirectory(spec);
        int numClasses = NumClassesOf(spec);
        ImageDataset? train = null, validation = null, test = null;
        long[] testIndices;
        try
        {
            using (var full = Read(spec, directory, train: true, numClasses))
            {
                var pool = SeededSubset(full.Count, spec.TrainLimit, Seeds.Derive(spec.Seed, "data-train", 0));
                // At least one training sample stays, whatever the fraction rounds to.
                int validationCount = Math.Min((int)Math.Floor(spec.ValidationFraction * pool.Length + 0.5),
                    pool.Length - 1);
                validation = full.Subset(Sorted(pool[..validationCount]), $"{spec.Name}/validation");
                train = full.Subset(Sorted(pool[validationCount..]), $"{spec.Name}/train");
            }
            using (var fullTest = Read(spec, directory, train: false, numClasses))
            {
                var chosen = SeededSubset(fullTest.Count, spec.TestLimit, Seeds.Derive(spec.Seed, "data-test", 0));
                testIndices = Sorted(chosen);
                test = fullTest.Subset(testIndices, $"{spec.Name}/test");
            }
            if (test.Channels != train.Channels || test.Height != train.Height || test.Width != train.Width)
                throw new DataFormatException($"{directory}: test images are {test.Channels}x{test.Height}x" +
                    $"{test.Width}, training images {train.Channels}x{train.Height}x{train.Width}");
            if (normalization is { } n && (n.Channels, n.Height, n.Width) != (test.Channels, test.Height, test.Width))
                throw new InvalidSpecException($"{directory}: {spec.Name} images are {test.Channels}x{test.Height}x" +
                    $"{test.Width}, the model was trained on {n.Channels}x{n.Height}x{n.Width} ({n.Dataset})");
            var (mean, std) = normalization is { } recorded
                ? (recorded.Mean.ToArray(), recorded.Std.ToArray())
                : spec.Normalize
                    ? ChannelStatistics(train)
                    : (Enumerable.Repeat(0.0, train.Channels).ToArray(),
                        Enumerable.Repeat(1.0, train.Channels).ToArray());
            return new DataSplits(spec, train, validation, test, mean, std, testIndices);
        }
        catch
        {
            train?.Dispose();
            validation?.Dispose();
            test?.Dispose();
            throw;
        }
    }

    /// <summary>The spec's directory or the dataset's default; says how to get the data when there is none.</summary>
    public static string ResolveDirectory(DatasetSpec spec)
    {
        if (spec.Directory is { } given)
            return Directory.Exists(given) ? given
                : throw new DataFormatException($"{given}: data directory does not exist");
        return spec.Name switch
        {
            DatasetSpec.FashionMnist => Directory.Exists(FashionMnistDefaultDirectory)
                ? FashionMnistDefaultDirectory
                : throw new DataFormatException($"{FashionMnistDefaultDirectory}: Fashion-MNIST not found; install " +
                                                "it with 'apt-get install dataset-fashion-mnist' or pass --data DIR"),
            DatasetSpec.Mnist => Directory.Exists(MnistDefaultDirectory)
                ? MnistDefaultDirectory
                : throw new InvalidSpecException($"dataset: mnist has no data here ({MnistDefaultDirectory} does not " +
                                                 "exist); pass --data DIR with the MNIST IDX files"),
            _ => throw new InvalidSpecException($"dataset: {spec.Name} has no default data directory; pass " +
                                                $"--data DIR (the folder with the {spec.Name} binary-version files)"),
        };
    }

    /// <summary>
    /// Every file a run on <paramref name="spec"/> reads, found the way loading finds them; throws the error loading
    /// would (a missing folder or file) without reading any of them. Hosts call it before registering a run.
    /// </summary>
    public static IReadOnlyList<string> RequiredFiles(DatasetSpec spec)
    {
        string directory = ResolveDirectory(spec);
        var files = spec.Name switch
        {
            DatasetSpec.Cifar10 => CifarReader.Cifar10Files(directory, true).Concat(CifarReader.Cifar10Files(directory, false)).ToList(),
            DatasetSpec.Cifar100 => [CifarReader.Cifar100File(directory, true), CifarReader.Cifar100File(directory, false)],
            _ => [FindIdxFile(directory, true, true), FindIdxFile(directory, true, false),
                FindIdxFile(directory, false, true), FindIdxFile(directory, false, false)],
        };
        foreach (var file in files)
            if (!File.Exists(file)) throw new DataFormatException($"{file}: file not found");
        return files;
    }

    /// <summary>
    /// The IDX file of one split and kind in <paramref name="directory"/>, accepting the usual names: train- or
    /// t10k-/test- prefixes, <c>-idx3-ubyte</c> or <c>.idx3-ubyte</c>, with or without <c>.gz</c>.
    /// </summary>
    public static string FindIdxFile(string directory, bool train, bool images)
    {
        string[] prefixes = train ? new[] { "train" } : new[] { "t10k", "test" };
        string kind = images ? "images" : "labels";
        string rank = images ? "idx3" : "idx1";
        var candidates = new List<string>();
        foreach (var prefix in prefixes)
            foreach (var separator in new[] { "-", "." })
                foreach (var suffix in new[] { ".gz", "" })
                    candidates.Add($"{prefix}-{kind}{separator}{rank}-ubyte{suffix}");
        foreach (var name in candidates)
        {
            string path = Path.Combine(directory, name);
            if (File.Exists(path)) return path;
        }
        throw new DataFormatException($"{directory}: no {(train ? "training" : "test")} {kind} file " +
                                      $"(looked for {candidates[0]}, {string.Join(", ", candidates.Skip(1))})");
    }

    /// <summary>
    /// Per-channel mean and standard deviation of the pixels, in [0, 1] units, computed exactly from one 256-bin
    /// histogram per channel (no float copy of the whole set is made).
    /// </summary>
    public static (double[] Mean, double[] Std) ChannelStatistics(ImageDataset data)
    {
        var mean = new double[data.Channels];
        var std = new double[data.Channels];
        using var scope = torch.NewDisposeScope();
        for (int c = 0; c < data.Channels; c++)
        {
            var histogram = torch.bincount(data.Images.select(1, c).flatten(), minlength: 256).data<long>().ToArray();
            double n = 0, sum = 0, squares = 0;
            for (int v = 0; v < histogram.Length; v++)
            {
                n += histogram[v];
                sum += (double)v * histogram[v];
                squares += (double)v * v * histogram[v];
            }
            if (n == 0) (mean[c], std[c]) = (0, 1);
            else
            {
                double m = sum / n;
                double sd = Math.Sqrt(Math.Max(squares / n - m * m, 0));
                mean[c] = m / 255;
                // A constant channel would divide by zero; leave its scale alone instead.
                std[c] = sd < 1e-6 ? 1 : sd / 255;
            }
        }
        return (mean, std);
    }

    private static int NumClassesOf(DatasetSpec spec) => spec.Name switch
    {
        DatasetSpec.Cifar100 => spec.CoarseLabels ? CifarReader.Cifar100CoarseClasses : CifarReader.Cifar100FineClasses,
        _ => 10,
    };

    private static ImageDataset Read(DatasetSpec spec, string directory, bool train, int numClasses)
    {
        using var scope = torch.NewDisposeScope();
        string split = train ? "train" : "test";
        if (spec.Name is DatasetSpec.Cifar10 or DatasetSpec.Cifar100)
        {
            var read = spec.Name == DatasetSpec.Cifar10
                ? CifarReader.ReadCifar10(directory, train)
                : CifarReader.ReadCifar100(directory, train, spec.CoarseLabels);
            return new ImageDataset($"{spec.Name}/{split}-all", read.Images, read.Labels, numClasses);
        }
        string imagesPath = FindIdxFile(directory, train, images: true);
        string labelsPath = FindIdxFile(directory, train, images: false);
        var images = IdxReader.ReadImages(imagesPath);
        var labels = IdxReader.ReadLabels(labelsPath);
        if (images.shape[0] != labels.shape[0])
            throw new DataFormatException(
                $"{labelsPath}: {labels.shape[0]} labels, but {imagesPath} has {images.shape[0]} images");
        var outOfRange = labels.ge(numClasses).nonzero();
        if (outOfRange.shape[0] > 0)
        {
            long at = outOfRange[0, 0].item<long>();
            throw new DataFormatException(
                $"{labelsPath}: label {labels[at].item<long>()} at index {at}, expected 0..{numClasses - 1}");
        }
        return new ImageDataset($"{spec.Name}/{split}-all", images, labels, numClasses);
    }

    /// <summary>The first <paramref name="limit"/> indices of a seeded permutation (all, shuffled, if null).</summary>
    private static long[] SeededSubset(int count, int? limit, long seed)
    {
        var permutation = new SampleRandom(seed).Permutation(count);
        return limit is { } n && n < count ? permutation[..n] : permutation;
    }

    /// <summary>Subsets keep file order: ascending reads are cache-friendly and evaluation order is stable.</summary>
    private static long[] Sorted(long[] indices)
    {
        Array.Sort(indices);
        return indices;
    }
}

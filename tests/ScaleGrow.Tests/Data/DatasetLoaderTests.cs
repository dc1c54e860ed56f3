using ScaleGrow.Data;
using TorchSharp;

namespace ScaleGrow.Tests.Data;

public sealed class DatasetLoaderTests : IDisposable
{
    private readonly DataFileWriter _files = new();

    public void Dispose() => _files.Dispose();

    /// <summary>The sample ids (see <see cref="DataFileWriter.WriteIdxSplit"/>) of a dataset, in its order.</summary>
    internal static int[] SampleIds(ImageDataset data)
    {
        var pixels = data.Images.data<byte>().ToArray();
        int size = data.Channels * data.Height * data.Width;
        return Enumerable.Range(0, data.Count)
            .Select(i => DataFileWriter.SampleIdOf(pixels[i * size], pixels[i * size + 1])).ToArray();
    }

    private DatasetSpec Spec(long seed = 7) => new() { Directory = _files.Root, Seed = seed };

    [Fact]
    public void Load_SplitsTrainingSetDisjointlyAndCompletely_SameSplitForSameSeed()
    {
        _files.WriteIdxSplit("train", 300);
        _files.WriteIdxSplit("t10k", 40);

        using var a = DatasetLoader.Load(Spec());
        using var b = DatasetLoader.Load(Spec());
        using var other = DatasetLoader.Load(Spec(seed: 8));

        Assert.Equal((270, 30, 40), (a.Train.Count, a.Validation.Count, a.Test.Count));
        var train = SampleIds(a.Train);
        var validation = SampleIds(a.Validation);
        Assert.Empty(train.Intersect(validation));
        Assert.Equal(Enumerable.Range(0, 300), train.Concat(validation).Order());
        Assert.Equal(train, SampleIds(b.Train));
        Assert.Equal(validation, SampleIds(b.Validation));
        Assert.NotEqual(validation, SampleIds(other.Validation));
        Assert.Equal(Enumerable.Range(0, 40), SampleIds(a.Test));
        // Labels travel with their images: label = id % 10 in the written files.
        Assert.Equal(train.Select(id => (long)(id % 10)), a.Train.Labels.data<long>().ToArray());
        Assert.Equal("fashion-mnist/validation", a.Validation.Name);
        Assert.Equal((10, 1, 6, 5), (a.NumClasses, a.Channels, a.Height, a.Width));
    }

    [Fact]
    public void Load_WithLimits_TakesSeededSubsetsThatKeepEveryClass()
    {
        _files.WriteIdxSplit("train", 1000);
        _files.WriteIdxSplit("t10k", 500);

        using var splits = DatasetLoader.Load(Spec() with { TrainLimit = 200, TestLimit = 50 });

        Assert.Equal((180, 20, 50), (splits.Train.Count, splits.Validation.Count, splits.Test.Count));
        var counts = splits.Train.ClassCounts();
        Assert.All(counts, c => Assert.InRange(c, 5, 40));
        Assert.NotEqual(Enumerable.Range(0, 50), SampleIds(splits.Test));
        Assert.All(splits.Test.ClassCounts(), c => Assert.True(c > 0));
    }

    [Fact]
    public void Load_MeasuresPerChannelMeanAndStdOnTheTrainingSplit()
    {
        _files.WriteIdxSplit("train", 120);
        _files.WriteIdxSplit("t10k", 10);

        using var splits = DatasetLoader.Load(Spec());

        var pixels = splits.Train.Images.data<byte>().ToArray().Select(p => p / 255.0).ToArray();
        double mean = pixels.Average();
        double std = Math.Sqrt(pixels.Select(p => (p - mean) * (p - mean)).Average());
        Assert.Equal(mean, Assert.Single(splits.Mean), 12);
        Assert.Equal(std, Assert.Single(splits.Std), 12);
    }

    [Fact]
    public void Load_WithNormalizeOff_RecordsIdentityStatistics()
    {
        _files.WriteIdxSplit("train", 50);
        _files.WriteIdxSplit("t10k", 10);

        using var splits = DatasetLoader.Load(Spec() with { Normalize = false });

        Assert.Equal(new[] { 0.0 }, splits.Mean);
        Assert.Equal(new[] { 1.0 }, splits.Std);
    }

    [Fact]
    public void Load_AcceptsUncompressedFilesAndTestPrefixAndDottedNames()
    {
        _files.WriteIdxSplit("train", 30, gzip: false, separator: ".");
        _files.WriteIdxSplit("test", 12, gzip: false);

        using var splits = DatasetLoader.Load(Spec() with { Name = DatasetSpec.Mnist, ValidationFraction = 0 });

        Assert.Equal((30, 0, 12), (splits.Train.Count, splits.Validation.Count, splits.Test.Count));
        Assert.Equal("mnist/train", splits.Train.Name);
    }

    [Fact]
    public void Load_ReadsCifar10AndCifar100Folders()
    {
        for (int b = 1; b <= 5; b++)
            _files.WriteCifar($"c10/cifar-10-batches-bin/data_batch_{b}.bin",
                Enumerable.Range(0, 4).Select(i => new[] { (byte)((b + i) % 10) }).ToArray());
        _files.WriteCifar("c10/cifar-10-batches-bin/test_batch.bin", new[] { new byte[] { 3 } });
        _files.WriteCifar("c100/train.bin", Enumerable.Range(0, 10).Select(i => new[] { (byte)i, (byte)(50 + i) })
            .ToArray());
        _files.WriteCifar("c100/test.bin", new[] { new byte[] { 1, 2 } });

        using var c10 = DatasetLoader.Load(new DatasetSpec
        { Name = DatasetSpec.Cifar10, Directory = _files.PathOf("c10"), ValidationFraction = 0.25 });
        using var c100 = DatasetLoader.Load(new DatasetSpec
        { Name = DatasetSpec.Cifar100, Directory = _files.PathOf("c100"), CoarseLabels = true });

        Assert.Equal((15, 5, 1), (c10.Train.Count, c10.Validation.Count, c10.Test.Count));
        Assert.Equal((3, 32, 32, 10), (c10.Channels, c10.Height, c10.Width, c10.NumClasses));
        Assert.Equal(3, c10.Mean.Length);
        Assert.Equal(20, c100.NumClasses);
        Assert.Equal(new long[] { 1 }, c100.Test.Labels.data<long>().ToArray());
        Assert.Equal(new AugmentSpec { CropPadding = 4, HorizontalFlip = true }, c10.Spec.EffectiveAugment);
    }

    [Fact]
    public void Load_WithMismatchedImageAndLabelCounts_NamesBothFiles()
    {
        _files.WriteIdxSplit("train", 30);
        _files.WriteIdxSplit("t10k", 10);
        string labels = _files.Write("t10k-labels-idx1-ubyte.gz", DataFileWriter.Gzip(
            DataFileWriter.IdxBytes(IdxReader.LabelsMagic, new[] { 9 }, new byte[9])));

        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(Spec()));

        Assert.Equal($"{labels}: 9 labels, but {_files.PathOf("t10k-images-idx3-ubyte.gz")} has 10 images", e.Message);
    }

    [Fact]
    public void Load_WithALabelOutOfRange_NamesFileAndIndex()
    {
        _files.WriteIdxSplit("train", 30, label: i => (byte)(i == 17 ? 12 : 1));
        _files.WriteIdxSplit("t10k", 10);

        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(Spec()));

        Assert.Equal($"{_files.PathOf("train-labels-idx1-ubyte.gz")}: label 12 at index 17, expected 0..9", e.Message);
    }

    [Fact]
    public void Load_WithoutTestFiles_SaysWhichNamesWereTried()
    {
        _files.WriteIdxSplit("train", 30);

        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(Spec()));

        Assert.StartsWith($"{_files.Root}: no test images file (looked for t10k-images-idx3-ubyte.gz", e.Message);
        Assert.Contains("test-images-idx3-ubyte", e.Message);
    }

    [Fact]
    public void Load_FromAMissingDirectory_IsADataFormatError()
    {
        string missing = _files.PathOf("absent");

        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(new DatasetSpec { Directory = missing }));

        Assert.Equal($"{missing}: data directory does not exist", e.Message);
    }

    [Theory]
    [InlineData(DatasetSpec.Cifar10)]
    [InlineData(DatasetSpec.Cifar100)]
    public void Load_CifarWithoutDirectory_TellsTheUserToPassData(string name)
    {
        var e = Assert.Throws<InvalidSpecException>(() => DatasetLoader.Load(new DatasetSpec { Name = name }));

        Assert.Contains("pass --data DIR", e.Message);
    }

    public static TheoryData<DatasetSpec, string> InvalidSpecs => new()
    {
        { new DatasetSpec { Name = "imagenet" }, "unknown name 'imagenet'" },
        { new DatasetSpec { ValidationFraction = 0.6 }, "validationFraction must be in [0, 0.5], got 0.6" },
        { new DatasetSpec { ValidationFraction = -0.1 }, "validationFraction must be in [0, 0.5], got -0.1" },
        { new DatasetSpec { TrainLimit = -5 }, "trainLimit must be at least 10 (images to train and to validate on), got -5" },
        { new DatasetSpec { TestLimit = 0 }, "testLimit must be positive, got 0" },
        { new DatasetSpec { CoarseLabels = true }, "coarseLabels applies to cifar100 only" },
        { new DatasetSpec { Augment = new AugmentSpec { CropPadding = -1 } }, "augment.cropPadding must be in 0..16" },
    };

    [Theory]
    [MemberData(nameof(InvalidSpecs))]
    public void Load_RejectsInvalidSpecsBeforeReadingAnything(DatasetSpec spec, string expected)
    {
        var e = Assert.Throws<InvalidSpecException>(() => DatasetLoader.Load(spec));

        Assert.StartsWith("dataset: ", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Spec_RoundTripsThroughJson_AndRejectsUnknownFields()
    {
        var spec = new DatasetSpec
        {
            Name = DatasetSpec.Cifar100, Directory = "/d", TrainLimit = 5000, ValidationFraction = 0.2, Seed = 3,
            Augment = new AugmentSpec { CropPadding = 2 }, Normalize = false, CoarseLabels = true,
        };

        Assert.Equal(spec, DatasetSpec.FromJson(spec.ToJson()));
        Assert.Equal(new DatasetSpec(), DatasetSpec.FromJson("{}"));
        var e = Assert.Throws<InvalidSpecException>(() => DatasetSpec.FromJson("{\"trainlimit\": 5}", "run.json"));
        Assert.StartsWith("run.json: not a valid dataset spec", e.Message);
    }

    [Fact]
    public void DefaultAugmentation_FlipsGarmentsAndCifarButNotDigits()
    {
        Assert.Equal(new AugmentSpec { CropPadding = 2, HorizontalFlip = true }, new DatasetSpec().EffectiveAugment);
        Assert.Equal(new AugmentSpec { CropPadding = 2 }, new DatasetSpec { Name = "mnist" }.EffectiveAugment);
        Assert.Equal(AugmentSpec.None, new DatasetSpec { Augment = AugmentSpec.None }.EffectiveAugment);
    }
}

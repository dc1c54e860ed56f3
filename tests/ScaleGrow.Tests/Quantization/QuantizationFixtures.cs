using System.Collections.Concurrent;
using ScaleGrow.Checkpoints;
using ScaleGrow.Data;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Quantization;
using ScaleGrow.Tests.Data;
using ScaleGrow.Tests.Models;
using ScaleGrow.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Quantization;

/// <summary>Small grown-looking CNNs, a learnable image set written as IDX files, and a few seconds of training.
/// </summary>
internal static class QuantizationFixtures
{
    public const int ImageSize = 12;

    /// <summary>Classes the models predict: the Fashion-MNIST reader's 10 (the learnable set uses the first
    /// <see cref="PatternClasses"/>).</summary>
    public const int Classes = 10;

    public const int PatternClasses = 4;

    /// <summary>A ResNet with two blocks whose every unit carries every branch that fits (as width growth adds
    /// them), so fusion produces uneven overlap maps.</summary>
    public static CnnSpec GrownSpec() => CnnFusionTests.WithEveryFittingBranch(
        CnnSpecs.Fixed(CnnFamily.ResNet, Classes, [1, 1], imageSize: ImageSize, stageWidths: [8, 16]));

    /// <summary>A fused grown CNN with random, realistic-scale weights (no training).</summary>
    public static CnnModel RandomFusedCnn(int seed = 5)
    {
        torch.manual_seed(seed);
        using var model = new CnnModel(GrownSpec());
        CnnFusionTests.RandomizeNorms(model, channels: 1, size: ImageSize);
        model.eval();
        return CnnFusion.Fuse(model);
    }

    /// <summary>
    /// The fixture model quantized with <paramref name="options"/>, computed once per options and shared by the
    /// tests: the quantized checkpoint with F32 and with F16 scales, and the float checkpoint of the model holding the
    /// dequantized weights the quantizer produced (what a bit-exact load must give back).
    /// </summary>
    public static QuantizedFixture Quantized(QuantizationOptions options) =>
        Cache.GetOrAdd(options.ToJson(), _ => new Lazy<QuantizedFixture>(() => Quantize(options))).Value;

    private static readonly ConcurrentDictionary<string, Lazy<QuantizedFixture>> Cache = new();

    private static QuantizedFixture Quantize(QuantizationOptions options)
    {
        // A private scope: the cached bytes outlive whichever test asked first, the tensors do not.
        using var scope = torch.NewDisposeScope();
        using var model = RandomFusedCnn();
        var calibration = Batches(1, 16, 9);
        using var result = new ModelQuantizer(options).Quantize(model, calibration,
            overlapMaps: CnnFusion.OverlapMaps(model.Spec));
        return new QuantizedFixture(QuantizedCheckpoint.Save(model, result),
            QuantizedCheckpoint.Save(model, result, new QuantizedCheckpointOptions { Scales = ScaleFormat.F16 }),
            ModelIO.SaveModel(model), result.Layers.Select(l => l.Name).ToList());
    }

    /// <summary>Random model-ready batches of the fixture's input shape.</summary>
    public static List<Tensor> Batches(int count, int size, ulong seed)
    {
        var generator = new Generator(seed);
        return Enumerable.Range(0, count)
            .Select(_ => QuantizationTestData.CorrelatedImages(size, 1, ImageSize, generator)).ToList();
    }

    /// <summary>
    /// Fashion-MNIST-style IDX files of <see cref="PatternClasses"/> classes that a small CNN learns in seconds:
    /// class k is a bright bar in quadrant k over noise. The two files are drawn with different seeds, so no test
    /// image equals a training image.
    /// </summary>
    public static void WriteLearnableDataset(DataFileWriter files, int train = 800, int test = 400)
    {
        void Split(string prefix, int count, int seed)
        {
            var random = new Random(seed);
            int pixelsPerImage = ImageSize * ImageSize;
            var pixels = new byte[count * pixelsPerImage];
            var labels = new byte[count];
            for (int i = 0; i < count; i++)
            {
                int label = random.Next(PatternClasses);
                labels[i] = (byte)label;
                int top = label / 2 * (ImageSize / 2), left = label % 2 * (ImageSize / 2);
                for (int y = 0; y < ImageSize; y++)
                    for (int x = 0; x < ImageSize; x++)
                    {
                        bool bar = y >= top + 2 && y < top + 4 && x >= left + 1 && x < left + ImageSize / 2 - 1;
                        pixels[i * pixelsPerImage + y * ImageSize + x] =
                            (byte)Math.Clamp((bar ? 170 : 40) + random.Next(-40, 41), 0, 255);
                    }
            }
            files.Write($"{prefix}-images-idx3-ubyte.gz", DataFileWriter.Gzip(DataFileWriter.IdxBytes(
                IdxReader.ImagesMagic, [count, ImageSize, ImageSize], pixels)));
            files.Write($"{prefix}-labels-idx1-ubyte.gz", DataFileWriter.Gzip(DataFileWriter.IdxBytes(
                IdxReader.LabelsMagic, [count], labels)));
        }
        Split("train", train, 1);
        Split("t10k", test, 2);
    }

    /// <summary>The learnable dataset as splits (read as Fashion-MNIST); no augmentation.</summary>
    public static DataSplits LoadLearnable(string directory) =>
        DatasetLoader.Load(new DatasetSpec(Directory: directory, ValidationFraction: 0.1,
            Augment: AugmentSpec.None));

    /// <summary>Trains the grown CNN for a few epochs (about a second here) and returns its float checkpoint,
    /// unfused.</summary>
    public static byte[] TrainedCheckpoint(DataSplits data, int epochs = 3)
    {
        torch.manual_seed(11);
        using var model = new CnnModel(GrownSpec());
        var options = new TrainingOptions { LearningRate = 0.05, BatchSize = 32 };
        using var optimizer = new NamedOptimizer(model.named_parameters(), options);
        var loader = data.TrainBatches(options.BatchSize, seed: 3);
        var schedule = LearningRateSchedule.For(options, loader.BatchCount, epochs);
        for (int epoch = 0; epoch < epochs; epoch++)
            Trainer.TrainEpoch(model, optimizer, schedule, loader.Epoch(epoch));
        return ModelIO.SaveModel(model);
    }
}

/// <summary>One cached quantization of the fixture model (see <see cref="QuantizationFixtures.Quantized"/>).</summary>
internal sealed record QuantizedFixture(byte[] Checkpoint, byte[] CheckpointF16, byte[] DequantizedFloat,
    IReadOnlyList<string> Layers);

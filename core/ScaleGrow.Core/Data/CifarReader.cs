using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Data;

/// <summary>The images and labels read from data files: uint8 (N, C, H, W) and int64 (N).</summary>
public sealed record LabeledImages(Tensor Images, Tensor Labels);

/// <summary>
/// Reads the binary versions of CIFAR-10 and CIFAR-100 (benchmarks of the thesis, section 3.5.1, table 3-17). Each
/// record is the label byte(s) followed by 3072 pixel bytes: 1024 red, then 1024 green, then 1024 blue, each plane
/// row-major 32x32 — already channel-first, so a record's pixels are copied to (3, 32, 32) as they are.
/// CIFAR-10 records carry one label byte (0..9); CIFAR-100 records carry a coarse (0..19) then a fine (0..99) byte.
/// </summary>
public static class CifarReader
{
    public const int ImageBytes = 3 * 32 * 32;
    public const string Cifar10Folder = "cifar-10-batches-bin";
    public const string Cifar100Folder = "cifar-100-binary";
    public const int Cifar100CoarseClasses = 20;
    public const int Cifar100FineClasses = 100;

    /// <summary>The CIFAR-10 training (data_batch_1..5.bin) or test (test_batch.bin) set.</summary>
    /// <param name="directory">The folder holding the .bin files, or its parent holding cifar-10-batches-bin.</param>
    public static LabeledImages ReadCifar10(string directory, bool train) =>
        ReadFiles(Cifar10Files(directory, train), labelBytes: 1, labelOffset: 0, numClasses: 10);

    /// <summary>The files <see cref="ReadCifar10"/> reads (not checked for existence).</summary>
    public static string[] Cifar10Files(string directory, bool train)
    {
        string folder = ResolveFolder(directory, Cifar10Folder, "data_batch_1.bin", "test_batch.bin");
        return train
            ? Enumerable.Range(1, 5).Select(i => Path.Combine(folder, $"data_batch_{i}.bin")).ToArray()
            : new[] { Path.Combine(folder, "test_batch.bin") };
    }

    /// <summary>The file <see cref="ReadCifar100"/> reads (not checked for existence).</summary>
    public static string Cifar100File(string directory, bool train) =>
        Path.Combine(ResolveFolder(directory, Cifar100Folder, "train.bin", "test.bin"), train ? "train.bin" : "test.bin");

    /// <summary>The CIFAR-100 training (train.bin) or test (test.bin) set, fine (default) or coarse labels.</summary>
    /// <param name="directory">The folder holding train.bin/test.bin, or its parent holding cifar-100-binary.</param>
    public static LabeledImages ReadCifar100(string directory, bool train, bool coarseLabels = false)
    {
        return ReadFiles(new[] { Cifar100File(directory, train) }, labelBytes: 2, labelOffset: coarseLabels ? 0 : 1,
            numClasses: coarseLabels ? Cifar100CoarseClasses : Cifar100FineClasses);
    }

    /// <summary>
    /// Reads and concatenates CIFAR-style record files. Each record is <paramref name="labelBytes"/> label bytes and
    /// <see cref="ImageBytes"/> pixel bytes; the label used is the byte at <paramref name="labelOffset"/>.
    /// </summary>
    public static LabeledImages ReadFiles(IReadOnlyList<string> files, int labelBytes, int labelOffset, int numClasses)
    {
        if (files.Count == 0) throw new ArgumentException("no CIFAR files given", nameof(files));
        if (labelOffset < 0 || labelOffset >= labelBytes)
            throw new ArgumentOutOfRangeException(nameof(labelOffset), labelOffset, "must index a label byte");
        int recordBytes = labelBytes + ImageBytes;
        // Sizes first, so every file is checked before anything large is allocated and one pixel buffer holds all.
        var counts = new int[files.Count];
        long total = 0;
        for (int f = 0; f < files.Count; f++)
        {
            long length = FileLength(files[f]);
            if (length == 0 || length % recordBytes != 0)
                throw new DataFormatException(
                    $"{files[f]}: {length} bytes is not a positive multiple of the {recordBytes}-byte record " +
                    $"({labelBytes} label byte{(labelBytes > 1 ? "s" : "")} + {ImageBytes} pixels)");
            counts[f] = (int)Math.Min(length / recordBytes, int.MaxValue);
            total += counts[f];
            if (total * ImageBytes > IdxReader.MaxDataBytes)
                throw new DataFormatException($"{files[f]}: the files hold more than {IdxReader.MaxDataBytes} bytes");
        }
        var pixels = GC.AllocateUninitializedArray<byte>((int)(total * ImageBytes));
        var labels = new long[total];
        var record = new byte[recordBytes];
        long n = 0;
        foreach (var (path, count) in files.Zip(counts))
        {
            using var file = DataFiles.Open(path);
            if (file.Gzip)
                throw new DataFormatException($"{path}: gzip-compressed; CIFAR binary files must be extracted");
            for (int r = 0; r < count; r++, n++)
            {
                if (DataFiles.ReadFully(path, file.Stream, record) < recordBytes)
                    throw new DataFormatException($"{path}: truncated inside record {r}");
                int label = record[labelOffset];
                if (label >= numClasses)
                    throw new DataFormatException(
                        $"{path}: record {r} has label {label}, expected 0..{numClasses - 1}");
                labels[n] = label;
                record.AsSpan(labelBytes).CopyTo(pixels.AsSpan((int)(n * ImageBytes), ImageBytes));
            }
        }
        var images = torch.tensor(pixels, new long[] { total, 3, 32, 32 }, ScalarType.Byte);
        return new LabeledImages(images, torch.tensor(labels, new long[] { total }));
    }

    /// <summary>The named sub-folder of <paramref name="directory"/> if there is one, else the directory.</summary>
    private static string ResolveFolder(string directory, string subFolder, string trainProbe, string testProbe)
    {
        if (!Directory.Exists(directory))
            throw new DataFormatException($"{directory}: data directory does not exist");
        string nested = Path.Combine(directory, subFolder);
        if (Directory.Exists(nested)) return nested;
        if (File.Exists(Path.Combine(directory, trainProbe)) || File.Exists(Path.Combine(directory, testProbe)))
            return directory;
        throw new DataFormatException(
            $"{directory}: no {subFolder} folder and no {trainProbe} or {testProbe} here " +
            "(CIFAR binary version expected)");
    }

    private static long FileLength(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists) throw new DataFormatException($"{path}: file not found");
            return info.Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException($"{path}: cannot read: {DataFiles.OneLine(e.Message)}", e);
        }
    }
}

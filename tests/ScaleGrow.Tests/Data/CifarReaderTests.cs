using ScaleGrow.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Data;

public sealed class CifarReaderTests : IDisposable
{
    private readonly DataFileWriter _files = new();

    public void Dispose() => _files.Dispose();

    private static byte[][] Labels(params int[] labels) => labels.Select(l => new[] { (byte)l }).ToArray();

    private void WriteCifar10(string folder, int recordsPerBatch = 2)
    {
        for (int b = 1; b <= 5; b++)
            _files.WriteCifar(Path.Combine(folder, $"data_batch_{b}.bin"),
                Labels(Enumerable.Range(0, recordsPerBatch).Select(i => (b * 3 + i) % 10).ToArray()));
        _files.WriteCifar(Path.Combine(folder, "test_batch.bin"), Labels(7, 1, 4));
    }

    /// <summary>Pixel (c, r, k) of record i must be byte 1 + c*1024 + r*32 + k of that record: channel-first.</summary>
    private static void AssertPixelsAreChannelFirst(Tensor images, int first, string file, int records)
    {
        var all = images.data<byte>().ToArray();
        for (int i = 0; i < records; i++)
            for (int c = 0; c < 3; c++)
                for (int r = 0; r < 32; r += 7)
                    for (int k = 0; k < 32; k += 5)
                        Assert.Equal(DataFileWriter.CifarPixel(file, i, c, r, k),
                            all[(first + i) * 3072 + c * 1024 + r * 32 + k]);
        Assert.Equal(DataFileWriter.CifarPixel(file, 1, 2, 31, 30), images[first + 1, 2, 31, 30].item<byte>());
    }

    [Fact]
    public void ReadCifar10_ConcatenatesTheFiveBatchesInOrder_WithLabelsAndChwPixels()
    {
        WriteCifar10(CifarReader.Cifar10Folder);

        var (images, labels) = CifarReader.ReadCifar10(_files.Root, train: true);
        using var _ = images;
        using var __ = labels;

        Assert.Equal(new long[] { 10, 3, 32, 32 }, images.shape);
        Assert.Equal(ScalarType.Byte, images.dtype);
        Assert.Equal(ScalarType.Int64, labels.dtype);
        Assert.Equal(new long[] { 3, 4, 6, 7, 9, 0, 2, 3, 5, 6 }, labels.data<long>().ToArray());
        for (int b = 1; b <= 5; b++)
            AssertPixelsAreChannelFirst(images, 2 * (b - 1),
                Path.Combine(CifarReader.Cifar10Folder, $"data_batch_{b}.bin"), 2);
    }

    [Fact]
    public void ReadCifar10_FindsFilesDirectlyInTheGivenDirectory()
    {
        WriteCifar10("");

        var (images, labels) = CifarReader.ReadCifar10(_files.Root, train: false);
        using var _ = images;
        using var __ = labels;

        Assert.Equal(new long[] { 3, 3, 32, 32 }, images.shape);
        Assert.Equal(new long[] { 7, 1, 4 }, labels.data<long>().ToArray());
        AssertPixelsAreChannelFirst(images, 0, "test_batch.bin", 3);
    }

    [Theory]
    [InlineData(false, new long[] { 42, 99, 0 })]
    [InlineData(true, new long[] { 3, 19, 0 })]
    public void ReadCifar100_PicksFineOrCoarseLabels(bool coarse, long[] expected)
    {
        string file = Path.Combine(CifarReader.Cifar100Folder, "train.bin");
        _files.WriteCifar(file, new[] { new byte[] { 3, 42 }, new byte[] { 19, 99 }, new byte[] { 0, 0 } });

        var (images, labels) = CifarReader.ReadCifar100(_files.Root, train: true, coarseLabels: coarse);
        using var _ = images;
        using var __ = labels;

        Assert.Equal(expected, labels.data<long>().ToArray());
        Assert.Equal(new long[] { 3, 3, 32, 32 }, images.shape);
        AssertPixelsAreChannelFirst(images, 0, file, 3);
    }

    [Fact]
    public void ReadCifar10_WithAFileNotAMultipleOfTheRecordSize_NamesTheFile()
    {
        WriteCifar10("");
        string path = _files.Write("data_batch_4.bin", new byte[3073 * 2 + 100]);

        var e = Assert.Throws<DataFormatException>(() => CifarReader.ReadCifar10(_files.Root, train: true));

        Assert.Equal($"{path}: 6246 bytes is not a positive multiple of the 3073-byte record " +
                     "(1 label byte + 3072 pixels)", e.Message);
    }

    [Fact]
    public void ReadCifar100_ReadAsCifar10SizedRecords_IsARecordSizeMismatch()
    {
        _files.WriteCifar("train.bin", new[] { new byte[] { 1, 2 }, new byte[] { 3, 4 } });

        var e = Assert.Throws<DataFormatException>(() =>
            CifarReader.ReadFiles(new[] { _files.PathOf("train.bin") }, labelBytes: 1, labelOffset: 0, numClasses: 10));

        Assert.Contains("not a positive multiple of the 3073-byte record", e.Message);
    }

    [Fact]
    public void ReadCifar10_WithALabelOutOfRange_NamesFileAndRecord()
    {
        WriteCifar10("");
        string path = _files.WriteCifar("test_batch.bin", Labels(1, 10));

        var e = Assert.Throws<DataFormatException>(() => CifarReader.ReadCifar10(_files.Root, train: false));

        Assert.Equal($"{path}: record 1 has label 10, expected 0..9", e.Message);
    }

    [Fact]
    public void ReadCifar10_WithAMissingBatch_NamesTheMissingFile()
    {
        WriteCifar10(CifarReader.Cifar10Folder);
        string missing = _files.PathOf(Path.Combine(CifarReader.Cifar10Folder, "data_batch_3.bin"));
        File.Delete(missing);

        var e = Assert.Throws<DataFormatException>(() => CifarReader.ReadCifar10(_files.Root, train: true));

        Assert.Equal($"{missing}: file not found", e.Message);
    }

    [Fact]
    public void ReadCifar10_FromAFolderWithoutCifarFiles_SaysWhatWasExpected()
    {
        var e = Assert.Throws<DataFormatException>(() => CifarReader.ReadCifar10(_files.Root, train: true));

        Assert.StartsWith($"{_files.Root}: no cifar-10-batches-bin folder", e.Message);
    }
}

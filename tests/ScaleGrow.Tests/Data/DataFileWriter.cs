using System.Buffers.Binary;
using System.IO.Compression;
using ScaleGrow.Data;

namespace ScaleGrow.Tests.Data;

/// <summary>Writes small IDX and CIFAR files into a temporary folder that is deleted with the fixture.</summary>
public sealed class DataFileWriter : IDisposable
{
    public DataFileWriter()
    {
        Root = Path.Combine(Path.GetTempPath(), "scalegrow-data-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    public string PathOf(string name) => Path.Combine(Root, name);

    /// <summary>The bytes of an IDX file: magic, big-endian dims, then data.</summary>
    public static byte[] IdxBytes(int magic, int[] dims, byte[] data)
    {
        var bytes = new byte[4 + 4 * dims.Length + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int i = 0; i < dims.Length; i++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * i), dims[i]);
        data.CopyTo(bytes, 4 + 4 * dims.Length);
        return bytes;
    }

    public static byte[] Gzip(byte[] bytes)
    {
        using var output = new MemoryStream();
        using (var gz = new GZipStream(output, CompressionLevel.Fastest)) gz.Write(bytes);
        return output.ToArray();
    }

    public string Write(string name, byte[] bytes)
    {
        string path = PathOf(name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>
    /// A Fashion-MNIST-style pair of files for one split: image i has pixel (0,0) = i % 256 and (0,1) = i / 256 so a
    /// test can tell which sample it is looking at; the rest of the pixels follow a fixed pattern; label = i % 10.
    /// </summary>
    public void WriteIdxSplit(string prefix, int count, int height = 6, int width = 5, bool gzip = true,
        string separator = "-", Func<int, byte>? label = null)
    {
        WriteIdx($"{prefix}-images{separator}idx3-ubyte", IndexedPixels(count, height, width),
            new[] { count, height, width }, IdxReader.ImagesMagic, gzip);
        var labels = new byte[count];
        for (int i = 0; i < count; i++) labels[i] = label?.Invoke(i) ?? (byte)(i % 10);
        WriteIdx($"{prefix}-labels{separator}idx1-ubyte", labels, new[] { count }, IdxReader.LabelsMagic, gzip);
    }

    public static byte[] IndexedPixels(int count, int height, int width)
    {
        var pixels = new byte[count * height * width];
        for (int i = 0; i < count; i++)
            for (int p = 0; p < height * width; p++)
                pixels[i * height * width + p] = p switch
                {
                    0 => (byte)(i % 256),
                    1 => (byte)(i / 256),
                    _ => (byte)((p * 37 + i * 11) % 256),
                };
        return pixels;
    }

    public static int SampleIdOf(byte first, byte second) => first + 256 * second;

    private void WriteIdx(string name, byte[] data, int[] dims, int magic, bool gzip)
    {
        var bytes = IdxBytes(magic, dims, data);
        Write(gzip ? name + ".gz" : name, gzip ? Gzip(bytes) : bytes);
    }

    /// <summary>A CIFAR record file; pixel (c, r, k) of record i is <see cref="CifarPixel"/>.</summary>
    public string WriteCifar(string name, byte[][] labelBytes)
    {
        int labelCount = labelBytes[0].Length;
        var bytes = new byte[labelBytes.Length * (labelCount + 3072)];
        for (int i = 0; i < labelBytes.Length; i++)
        {
            int at = i * (labelCount + 3072);
            labelBytes[i].CopyTo(bytes, at);
            for (int c = 0; c < 3; c++)
                for (int r = 0; r < 32; r++)
                    for (int k = 0; k < 32; k++)
                        bytes[at + labelCount + c * 1024 + r * 32 + k] = CifarPixel(name, i, c, r, k);
        }
        return Write(name, bytes);
    }

    public static byte CifarPixel(string file, int record, int c, int r, int k) =>
        (byte)((file.Length * 13 + record * 7 + c * 89 + r * 5 + k) % 256);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A temp folder left behind is harmless; a failing Dispose would hide the test's own result.
        }
    }
}

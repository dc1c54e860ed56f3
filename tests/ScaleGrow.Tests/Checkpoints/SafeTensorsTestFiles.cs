using System.Buffers.Binary;
using System.Text;
using ScaleGrow.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Checkpoints;

/// <summary>Builds safetensors files byte by byte and tensors bit by bit, independently of the code under test.
/// </summary>
internal static class SafeTensorsTestFiles
{
    public const string Source = "upload.safetensors";

    /// <summary>8-byte length (the header's, unless <paramref name="declaredLength"/>), header, data.</summary>
    public static byte[] Raw(string headerJson, byte[]? data = null, ulong? declaredLength = null) =>
        Raw(Encoding.UTF8.GetBytes(headerJson), data, declaredLength);

    public static byte[] Raw(byte[] header, byte[]? data = null, ulong? declaredLength = null)
    {
        data ??= [];
        var file = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, declaredLength ?? (ulong)header.Length);
        header.CopyTo(file, 8);
        data.CopyTo(file, 8 + header.Length);
        return file;
    }

    /// <summary>A tensor whose bytes are exactly <paramref name="bytes"/> (set through TorchSharp's own API).</summary>
    public static Tensor FromBytes(byte[] bytes, ScalarType dtype, params long[] shape)
    {
        var t = torch.empty(shape, dtype);
        t.bytes = bytes;
        return t;
    }

    /// <summary>Random bit patterns: for floats this covers NaNs with payloads, infinities, denormals and -0.</summary>
    public static Tensor RandomBits(Random random, ScalarType dtype, params long[] shape)
    {
        using var probe = torch.empty([1], dtype);
        long count = shape.Aggregate(1L, (a, b) => a * b);
        var bytes = new byte[count * probe.ElementSize];
        random.NextBytes(bytes);
        if (dtype == ScalarType.Bool)
            for (int i = 0; i < bytes.Length; i++) bytes[i] &= 1;
        return FromBytes(bytes, dtype, shape);
    }

    /// <summary>F32 values every codec must keep bit for bit.</summary>
    public static Tensor SpecialFloats()
    {
        uint[] bits =
        [
            0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FBFFFFF, 0xFFFFFFFF, // quiet/signalling NaNs with payloads
            0x7F800000, 0xFF800000, // +-Inf
            0x00000001, 0x807FFFFF, 0x00400000, // denormals
            0x00000000, 0x80000000, // +-0
            0x7F7FFFFF, 0x3F800000,
        ];
        var bytes = new byte[bits.Length * 4];
        for (int i = 0; i < bits.Length; i++) BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4 * i), bits[i]);
        return FromBytes(bytes, ScalarType.Float32, bits.Length);
    }

    public static byte[] BytesOf(Tensor t)
    {
        using var scope = torch.NewDisposeScope();
        return t.detach().cpu().contiguous().bytes.ToArray();
    }

    public static void AssertSameTensor(Tensor expected, Tensor actual, string name)
    {
        Assert.True(expected.dtype == actual.dtype, $"{name}: dtype {actual.dtype}, expected {expected.dtype}");
        Assert.True(expected.shape.SequenceEqual(actual.shape),
            $"{name}: shape [{string.Join(",", actual.shape)}], expected [{string.Join(",", expected.shape)}]");
        Assert.True(BytesOf(expected).AsSpan().SequenceEqual(BytesOf(actual)), $"{name}: bytes differ");
    }

    public static byte[] Write(
        IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? meta = null)
    {
        using var stream = new MemoryStream();
        SafeTensorsWriter.Write(stream, tensors, meta);
        return stream.ToArray();
    }
}

using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using ScaleGrow.Checkpoints;
using ScaleGrow.Tests.Infrastructure;
using TorchSharp;
using static ScaleGrow.Tests.Checkpoints.SafeTensorsTestFiles;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Checkpoints;

public class SafeTensorsRoundTripTests
{
    private static readonly ScalarType[] AllDTypes =
    [
        ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16, ScalarType.Float64, ScalarType.Int64,
        ScalarType.Int32, ScalarType.Int16, ScalarType.Int8, ScalarType.Byte, ScalarType.Bool,
    ];

    private static Dictionary<string, Tensor> EveryDType(int seed)
    {
        var random = new Random(seed);
        var tensors = new Dictionary<string, Tensor>();
        foreach (var dtype in AllDTypes)
            tensors[$"t.{dtype}"] = RandomBits(random, dtype, 3, 5, 2);
        tensors["special.f32"] = SpecialFloats();
        tensors["scalar"] = RandomBits(random, ScalarType.Float64);
        tensors["empty"] = torch.empty([0, 7], ScalarType.Float32);
        return tensors;
    }

    [Fact]
    public void EveryDTypeRoundTripsBitExactThroughSpanSeekableAndNonSeekableReads()
    {
        using var scope = torch.NewDisposeScope();
        var tensors = EveryDType(seed: 1);
        var meta = new Dictionary<string, string> { ["note"] = "héllo \"quoted\"\n", ["empty"] = "" };
        var file = Write(tensors, meta);

        var reads = new[]
        {
            SafeTensorsReader.Read(file, Source),
            SafeTensorsReader.Read(new MemoryStream(file), Source),
            SafeTensorsReader.Read(new NonSeekableStream(file), Source),
        };
        foreach (var read in reads)
        {
            Assert.Equal(tensors.Keys.Order(), read.Tensors.Keys.Order());
            foreach (var (name, expected) in tensors) AssertSameTensor(expected, read.Tensors[name], name);
            Assert.Equal(meta.OrderBy(m => m.Key), read.Metadata.OrderBy(m => m.Key));
        }
    }

    [Fact]
    public void NonContiguousAndGradientTrackingTensorsAreWrittenAsTheirValues()
    {
        using var scope = torch.NewDisposeScope();
        var matrix = torch.arange(12, dtype: ScalarType.Float32).reshape(3, 4);
        var transposed = matrix.t();
        var strided = matrix[.., TensorIndex.Slice(0, 4, 2)];
        var parameter = new TorchSharp.Modules.Parameter(torch.ones(2, 2));
        var read = SafeTensorsReader.Read(
            Write(new Dictionary<string, Tensor> { ["t"] = transposed, ["s"] = strided, ["p"] = parameter }), Source);

        AssertSameTensor(transposed.contiguous(), read.Tensors["t"], "t");
        AssertSameTensor(strided.contiguous(), read.Tensors["s"], "s");
        AssertSameTensor(parameter.detach(), read.Tensors["p"], "p");
        Assert.False(read.Tensors["p"].requires_grad);
    }

    [Fact]
    public void WritingIsDeterministicWhateverTheInsertionOrder()
    {
        using var scope = torch.NewDisposeScope();
        var tensors = EveryDType(seed: 2);
        var meta = new Dictionary<string, string> { ["b"] = "2", ["a"] = "1" };
        var reversed = tensors.Reverse().ToDictionary(kv => kv.Key, kv => kv.Value);
        var reversedMeta = meta.Reverse().ToDictionary(kv => kv.Key, kv => kv.Value);

        var first = Write(tensors, meta);
        Assert.Equal(first, Write(tensors, meta));
        Assert.Equal(first, Write(reversed, reversedMeta));
    }

    [Fact]
    public void LayoutIsSortedContiguousAndAlignsEveryTensorToItsElementSize()
    {
        using var scope = torch.NewDisposeScope();
        var tensors = EveryDType(seed: 3);
        tensors["odd.u8"] = torch.ones(3, ScalarType.Byte); // would misalign whatever follows it in name order
        var file = Write(tensors, new Dictionary<string, string> { ["k"] = "v" });
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(file);
        Assert.Equal(0, headerLength % 8);
        var headerText = Encoding.UTF8.GetString(file, 8, (int)headerLength);
        Assert.True(headerText.Length - headerText.TrimEnd(' ').Length < 8, "padding is more than 7 spaces");
        using var header = JsonDocument.Parse(headerText);
        var names = header.RootElement.EnumerateObject().Select(p => p.Name).ToList();
        Assert.Equal("__metadata__", names[0]);
        Assert.Equal(names.Skip(1).Order(StringComparer.Ordinal), names.Skip(1));

        var spans = header.RootElement.EnumerateObject().Skip(1)
            .Select(e => (Name: e.Name, Offsets: e.Value.GetProperty("data_offsets").EnumerateArray()
                .Select(o => o.GetInt64()).ToArray()))
            .OrderBy(e => e.Offsets[0]).ThenBy(e => e.Offsets[1]).ToList();
        long expected = 0;
        foreach (var (name, offsets) in spans)
        {
            Assert.Equal(expected, offsets[0]);
            long elementSize = tensors[name].ElementSize;
            Assert.True((8 + headerLength + offsets[0]) % elementSize == 0, $"{name} is not {elementSize}-aligned");
            expected = offsets[1];
        }
        Assert.Equal(file.Length, 8 + headerLength + expected);
    }

    [Fact]
    public void FiftyMegabytesWriteAndReadWellUnderASecond()
    {
        using var scope = torch.NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>
        {
            ["big"] = torch.randn(12 * 1024 * 1024),
            ["mid.f16"] = torch.randn(512 * 1024).to(ScalarType.Float16),
            ["ids"] = torch.arange(128 * 1024, dtype: ScalarType.Int64),
        };
        using var stream = new MemoryStream(capacity: 60 * 1024 * 1024);
        var write = Stopwatch.StartNew();
        SafeTensorsWriter.Write(stream, tensors);
        write.Stop();
        Assert.True(stream.Length > 50_000_000, $"file is {stream.Length} bytes");

        stream.Position = 0;
        var read = Stopwatch.StartNew();
        var file = SafeTensorsReader.Read(stream, "big.safetensors");
        read.Stop();
        Assert.Equal(BytesOf(tensors["big"]), BytesOf(file.Tensors["big"]));
        Assert.True(write.ElapsedMilliseconds < 1000, $"write took {write.ElapsedMilliseconds} ms");
        Assert.True(read.ElapsedMilliseconds < 1000, $"read took {read.ElapsedMilliseconds} ms");
    }

    [Fact]
    public void ReaderStartsAtTheStreamsCurrentPosition()
    {
        using var scope = torch.NewDisposeScope();
        var file = Write(new Dictionary<string, Tensor> { ["x"] = torch.ones(3) });
        using var stream = new MemoryStream();
        stream.Write("prefix"u8);
        stream.Write(file);
        stream.Position = 6;
        var read = SafeTensorsReader.Read(stream, Source);
        Assert.Equal(BytesOf(torch.ones(3)), BytesOf(read.Tensors["x"]));
    }

    [Fact]
    public void LoadedTensorsJoinTheCallersDisposeScope()
    {
        var file = Write(new Dictionary<string, Tensor> { ["x"] = torch.ones(3) });
        Tensor loaded;
        using (torch.NewDisposeScope())
        {
            loaded = SafeTensorsReader.Read(file, Source).Tensors["x"];
            Assert.False(loaded.IsInvalid);
        }
        Assert.True(loaded.IsInvalid);
    }

    [Theory]
    [InlineData("", "is empty")]
    [InlineData("__metadata__", "reserved")]
    public void WriterRefusesNamesReadersWouldReject(string name, string expected)
    {
        using var scope = torch.NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() =>
            Write(new Dictionary<string, Tensor> { [name] = torch.ones(1) }));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void WriterRefusesDTypesSafetensorsCannotHoldHere()
    {
        using var scope = torch.NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() =>
            Write(new Dictionary<string, Tensor> { ["c"] = torch.zeros(2, ScalarType.ComplexFloat32) }));
        Assert.Contains("'c' has dtype ComplexFloat32", e.Message);
    }
}

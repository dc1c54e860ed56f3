using System.Text;
using ScaleGrow.Checkpoints;
using ScaleGrow.Tests.Infrastructure;
using static ScaleGrow.Tests.Checkpoints.SafeTensorsTestFiles;

namespace ScaleGrow.Tests.Checkpoints;

/// <summary>One test per rule of the hostile-input reader, each checking the one-line message it gives.</summary>
public class SafeTensorsValidationTests
{
    private const string A24 = """ "a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]} """;

    /// <summary>Every read path must refuse <paramref name="file"/> with one line naming the source.</summary>
    private static void AssertRejected(byte[] file, string expected, SafeTensorsReadOptions? options = null)
    {
        AssertMessage(Assert.Throws<CheckpointFormatException>(() => SafeTensorsReader.Read(file, Source, options)),
            expected);
        AssertMessage(Assert.Throws<CheckpointFormatException>(() =>
            SafeTensorsReader.Read(new MemoryStream(file), Source, options)), expected);
        AssertMessage(Assert.Throws<CheckpointFormatException>(() =>
            SafeTensorsReader.Read(new NonSeekableStream(file), Source, options)), expected);
    }

    private static void AssertMessage(CheckpointFormatException e, string expected)
    {
        Assert.StartsWith(Source + ": ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.DoesNotContain('\r', e.Message);
    }

    [Theory]
    [InlineData("not JSON", "{", "header is not valid JSON")]
    [InlineData("not an object", "[1,2]", "header is not a JSON object")]
    [InlineData("trailing content", "{} {}", "header is not valid JSON")]
    [InlineData("comment", "{/* hi */}", "header is not valid JSON")]
    [InlineData("entry not an object", """{"a":[1]}""", "tensor 'a': entry is an array, expected an object")]
    [InlineData("unknown dtype", """{"a":{"dtype":"F8","shape":[],"data_offsets":[0,1]}}""",
        "tensor 'a': unknown dtype 'F8'")]
    [InlineData("lower-case dtype", """{"a":{"dtype":"f32","shape":[],"data_offsets":[0,4]}}""",
        "tensor 'a': unknown dtype 'f32'")]
    [InlineData("dtype not a string", """{"a":{"dtype":4,"shape":[],"data_offsets":[0,4]}}""",
        "tensor 'a': dtype is a number, expected a string")]
    [InlineData("negative dimension", """{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}""",
        "tensor 'a': shape holds '-1', expected a non-negative 64-bit integer")]
    [InlineData("fractional dimension", """{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}""",
        "tensor 'a': shape holds '1.5'")]
    [InlineData("dimension beyond 64 bits",
        """{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}""",
        "tensor 'a': shape holds '99999999999999999999'")]
    [InlineData("string dimension", """{"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}""",
        "tensor 'a': shape holds a string, expected integers")]
    [InlineData("negative offset", """{"a":{"dtype":"F32","shape":[],"data_offsets":[-4,0]}}""",
        "tensor 'a': data_offsets holds '-4'")]
    [InlineData("three offsets", """{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4,8]}}""",
        "tensor 'a': data_offsets has more than 2 numbers")]
    [InlineData("one offset", """{"a":{"dtype":"F32","shape":[],"data_offsets":[0]}}""",
        "tensor 'a': data_offsets has 1 numbers, expected [begin, end]")]
    [InlineData("size mismatch", """{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}""",
        "tensor 'a': shape [2,3] of F32 needs 24 bytes, data_offsets [0, 20] span 20")]
    [InlineData("element count overflow",
        """{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}""",
        "tensor 'a': shape [4294967296,4294967296] is too large")]
    [InlineData("byte size overflow", """{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}""",
        "tensor 'a': shape [2305843009213693952] is too large")]
    [InlineData("empty but huge strides",
        """{"a":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}}""",
        "tensor 'a': shape [0,4294967296,4294967296] is too large")]
    [InlineData("reversed offsets", """{"a":{"dtype":"F32","shape":[],"data_offsets":[8,4]}}""",
        "tensor 'a': data_offsets [8, 4] end before they begin")]
    [InlineData("missing dtype", """{"a":{"shape":[],"data_offsets":[0,4]}}""", "tensor 'a': missing field 'dtype'")]
    [InlineData("missing shape", """{"a":{"dtype":"F32","data_offsets":[0,4]}}""", "tensor 'a': missing field 'shape'")]
    [InlineData("missing offsets", """{"a":{"dtype":"F32","shape":[]}}""", "tensor 'a': missing field 'data_offsets'")]
    [InlineData("unknown field", """{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4],"x":1}}""",
        "tensor 'a': unknown field 'x'")]
    [InlineData("duplicate field", """{"a":{"dtype":"F32","dtype":"F32","shape":[],"data_offsets":[0,4]}}""",
        "tensor 'a': field 'dtype' appears twice")]
    [InlineData("duplicate tensor",
        """{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}""",
        "tensor 'a' appears twice")]
    [InlineData("empty name", """{"":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}""", "a tensor name is empty")]
    [InlineData("metadata not an object", """{"__metadata__":[],"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}""",
        "__metadata__ is an array, expected an object of strings")]
    [InlineData("metadata value not a string", """{"__metadata__":{"k":1}}""",
        "__metadata__ entry 'k' is a number, expected a string")]
    [InlineData("metadata value an object", """{"__metadata__":{"k":{"x":"y"}}}""",
        "__metadata__ entry 'k' is an object, expected a string")]
    [InlineData("metadata twice", """{"__metadata__":{},"__metadata__":{}}""", "__metadata__ appears twice")]
    [InlineData("metadata key twice", """{"__metadata__":{"k":"1","k":"2"}}""", "__metadata__ entry 'k' appears twice")]
    [InlineData("too deep", """{"a":{"dtype":"F32","shape":[[[1]]],"data_offsets":[0,4]}}""",
        "tensor 'a': shape holds an array, expected integers")]
    [InlineData("lone surrogate", """{"\uD800":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}""",
        "header holds an invalid string")]
    public void MalformedHeaderIsRejected(string rule, string header, string expected)
    {
        Assert.NotEmpty(rule);
        // Give every case the data its header would need if it were valid, so only the rule under test fails.
        AssertRejected(Raw(header, new byte[DeclaredEnd(header)]), expected);
    }

    private static int DeclaredEnd(string header)
    {
        int at = header.LastIndexOf("data_offsets\":[", StringComparison.Ordinal);
        if (at < 0) return 0;
        var numbers = header[(at + 15)..].Split(']')[0].Split(',');
        return int.TryParse(numbers[^1], out int end) && end is > 0 and < 1 << 20 ? end : 0;
    }

    [Fact]
    public void DeepNestingIsRejectedAtTheFirstLevelTheHeaderDoesNotAllow()
    {
        var deep = new string('[', 100_000) + new string(']', 100_000);
        AssertRejected(Raw("{\"__metadata__\":{\"k\":" + deep + "}}"),
            "__metadata__ entry 'k' is an array, expected a string");
        AssertRejected(Raw(deep), "header is not a JSON object");
    }

    [Fact]
    public void InvalidUtf8IsRejected()
    {
        var header = Encoding.UTF8.GetBytes("""{"__metadata__":{"k":"?"}}""");
        header[Array.IndexOf(header, (byte)'?')] = 0xC3; // a lead byte with no continuation
        AssertRejected(Raw(header), "header is not valid UTF-8");
    }

    [Fact]
    public void OverlappingTensorsAreRejected()
    {
        var header = """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},""" +
                     """ "b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""";
        AssertRejected(Raw(header, new byte[12]),
            "tensor 'b': data_offsets [4, 12] overlap tensor 'a', whose data ends at 8");
    }

    [Fact]
    public void TwoNamesOnTheSameBytesAreRejected()
    {
        var header = """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},""" +
                     """ "b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}""";
        AssertRejected(Raw(header, new byte[8]), "tensor 'b': data_offsets [0, 8] overlap tensor 'a'");
    }

    [Fact]
    public void GapsBetweenTensorsAreRejected()
    {
        var header = """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},""" +
                     """ "b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}""";
        AssertRejected(Raw(header, new byte[16]), "tensor 'b': data_offsets [12, 16] leave a gap of 4 bytes");
    }

    [Fact]
    public void DataNotStartingAtZeroIsAGap()
    {
        AssertRejected(Raw("""{"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}""", new byte[8]),
            "tensor 'a': data_offsets [4, 8] leave a gap of 4 bytes");
    }

    [Fact]
    public void NamesLongerThanTheLimitAreRejected()
    {
        var name = new string('n', 40);
        var header = "{\"" + name + "\":" + """{"dtype":"F32","shape":[],"data_offsets":[0,4]}}""";
        AssertRejected(Raw(header, new byte[4]), $"tensor name '{name}' is longer than 32 characters",
            new SafeTensorsReadOptions { MaxNameLength = 32 });
    }

    [Fact]
    public void MoreTensorsThanTheLimitAreRejected()
    {
        var header = "{" + string.Join(",", Enumerable.Range(0, 5).Select(i =>
            $"\"t{i}\":" + "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[" + $"{i},{i + 1}]}}")) + "}";
        AssertRejected(Raw(header, new byte[5]), "header has more than 4 tensors",
            new SafeTensorsReadOptions { MaxTensorCount = 4 });
    }

    [Fact]
    public void MoreDimensionsThanTheRankLimitAreRejected()
    {
        var shape = string.Join(",", Enumerable.Repeat(1, 65));
        AssertRejected(Raw("""{"a":{"dtype":"U8","shape":[""" + shape + """],"data_offsets":[0,1]}}""", new byte[1]),
            "tensor 'a': shape has more than 64 numbers");
    }

    [Fact]
    public void BoolBytesOtherThanZeroOrOneAreRejected()
    {
        AssertRejected(Raw("""{"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}}""", [1, 0, 2]),
            "tensor 'm': BOOL data holds a byte other than 0 or 1");
    }

    [Fact]
    public void FilesShorterThanTheLengthFieldAreRejected()
    {
        AssertRejected([1, 2, 3], "file is 3 bytes long, too short for the 8-byte header length");
    }

    [Theory]
    [InlineData(101UL)]
    [InlineData(ulong.MaxValue)]
    [InlineData(1UL << 63)]
    public void HeaderLengthOverTheLimitIsRejectedBeforeAllocating(ulong declared)
    {
        var file = Raw("{}", declaredLength: declared);
        long before = GC.GetAllocatedBytesForCurrentThread();
        AssertRejected(file, $"header length {declared} exceeds the limit of 100 bytes",
            new SafeTensorsReadOptions { MaxHeaderBytes = 100 });
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "allocated for a rejected header");
    }

    [Fact]
    public void DefaultHeaderLimitIsTheReferenceImplementations()
    {
        AssertRejected(Raw("{}", declaredLength: 100_000_001),
            "header length 100000001 exceeds the limit of 100000000 bytes");
    }

    [Fact]
    public void HeaderLengthBeyondTheFileIsRejected()
    {
        var file = Raw("{}", declaredLength: 90_000_000);
        const string expected = "header length 90000000 exceeds the 2 bytes that follow the length field";
        AssertMessage(Assert.Throws<CheckpointFormatException>(() => SafeTensorsReader.Read(file, Source)), expected);
        AssertMessage(Assert.Throws<CheckpointFormatException>(() =>
            SafeTensorsReader.Read(new MemoryStream(file), Source)), expected);
        // A stream of unknown length is read as far as it goes; its buffer grows with what arrives, not the claim.
        long before = GC.GetAllocatedBytesForCurrentThread();
        AssertMessage(Assert.Throws<CheckpointFormatException>(() =>
            SafeTensorsReader.Read(new NonSeekableStream(file), Source)), "file ends after 2 of the 90000000 bytes");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "allocated for a claimed header");
    }

    [Fact]
    public void TenGigabytesDeclaredInATinyFileFailFastWithoutAllocating()
    {
        var file = Raw("""{"w":{"dtype":"F32","shape":[2500000000],"data_offsets":[0,10000000000]}}""", new byte[1000]);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long before = GC.GetAllocatedBytesForCurrentThread();
        AssertMessage(Assert.Throws<CheckpointFormatException>(() => SafeTensorsReader.Read(file, Source)),
            "tensor 'w': data_offsets [0, 10000000000] exceed the 1000 bytes of data in the file");
        AssertMessage(Assert.Throws<CheckpointFormatException>(() =>
            SafeTensorsReader.Read(new MemoryStream(file), Source)), "exceed the 1000 bytes of data in the file");
        AssertMessage(Assert.Throws<CheckpointFormatException>(() =>
            SafeTensorsReader.Read(new NonSeekableStream(file), Source)), "header declares 10000000000 bytes of data");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "allocated for claimed data");
        Assert.True(clock.ElapsedMilliseconds < 1000, $"took {clock.ElapsedMilliseconds} ms");
    }

    [Fact]
    public void DeclaredDataMissingFromAStreamOfUnknownLengthIsRejectedAsItRunsOut()
    {
        var file = Raw("""{"w":{"dtype":"F32","shape":[250000000],"data_offsets":[0,1000000000]}}""", new byte[1000]);
        long before = GC.GetAllocatedBytesForCurrentThread();
        AssertMessage(Assert.Throws<CheckpointFormatException>(() =>
            SafeTensorsReader.Read(new NonSeekableStream(file), Source)),
            "file ends after 1000 of the 1000000000 bytes");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "allocated for claimed data");
    }

    [Fact]
    public void BytesAfterTheLastTensorAreRejected()
    {
        var file = Raw("{" + A24 + "}", new byte[28]);
        const string expected =
            "4 bytes follow the last tensor's data (header declares 24 bytes of data, the file has 28)";
        AssertMessage(Assert.Throws<CheckpointFormatException>(() => SafeTensorsReader.Read(file, Source)), expected);
        AssertMessage(Assert.Throws<CheckpointFormatException>(() =>
            SafeTensorsReader.Read(new MemoryStream(file), Source)), expected);
        AssertMessage(Assert.Throws<CheckpointFormatException>(() =>
            SafeTensorsReader.Read(new NonSeekableStream(file), Source)), "data continues past the 24 bytes");
    }

    [Fact]
    public void TruncatedDataIsRejected()
    {
        var file = Raw("{" + A24 + "}", new byte[20]);
        AssertMessage(Assert.Throws<CheckpointFormatException>(() => SafeTensorsReader.Read(file, Source)),
            "tensor 'a': data_offsets [0, 24] exceed the 20 bytes of data in the file");
        AssertMessage(Assert.Throws<CheckpointFormatException>(() =>
            SafeTensorsReader.Read(new NonSeekableStream(file), Source)),
            "file ends after 20 of the 24 bytes of its data");
    }

    [Fact]
    public void AStreamShorterThanItsReportedLengthIsRejected()
    {
        var file = Raw("{" + A24 + "}", new byte[24]);
        AssertMessage(Assert.Throws<CheckpointFormatException>(() =>
            SafeTensorsReader.Read(new LyingLengthStream(file, file.Length - 8), Source)),
            "tensor 'a': file ends inside its data (data_offsets [0, 24])");
    }

    [Fact]
    public void HostileNamesAreQuotedOnOneBoundedLine()
    {
        var name = "evil\nname\u0007" + new string('x', 500);
        var escaped = name.Replace("\n", "\\n").Replace("\u0007", "\\u0007");
        var header = "{\"" + escaped + "\":" + """{"dtype":"F8","shape":[],"data_offsets":[0,1]}}""";
        var e = Assert.Throws<CheckpointFormatException>(() => SafeTensorsReader.Read(Raw(header, [0]), "up\nload"));
        Assert.StartsWith("up\\u000aload: tensor 'evil\\u000aname\\u0007xxx", e.Message);
        Assert.Contains("…': unknown dtype 'F8'", e.Message);
        Assert.True(e.Message.Length < 300, e.Message);
    }

    [Fact]
    public void AnEmptyObjectIsAValidFileWithNoTensors()
    {
        var read = SafeTensorsReader.Read(Raw("{}        "), Source);
        Assert.Empty(read.Tensors);
        Assert.Empty(read.Metadata);
    }

    [Fact]
    public void ZeroSizedTensorsMaySitAtAnyBoundary()
    {
        var header = """{"e":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},""" +
                     """ "a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},""" +
                     """ "z":{"dtype":"I64","shape":[0],"data_offsets":[0,0]}}""";
        var read = SafeTensorsReader.Read(Raw(header, new byte[4]), Source);
        Assert.Equal([0L, 3L], read.Tensors["e"].shape);
        Assert.Equal(0, read.Tensors["z"].NumberOfElements);
    }

    /// <summary>Seekable, but claims more bytes than it holds (a truncated blob that kept its length).</summary>
    private sealed class LyingLengthStream(byte[] data, int truncateTo) : Stream
    {
        private readonly MemoryStream _inner = new(data, 0, truncateTo);
        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => data.Length;
        public override long Position { get => _inner.Position; set => _inner.Position = value; }
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => _inner.Seek(offset, origin);
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

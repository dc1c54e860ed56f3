using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using ScaleGrow.Checkpoints;
using ScaleGrow.Tests.Infrastructure;
using TorchSharp;
using static ScaleGrow.Tests.Checkpoints.SafeTensorsTestFiles;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Checkpoints;

/// <summary>
/// Our files must be readable by tools that know only the safetensors layout. Debian's Python (json + struct, and
/// numpy when installed) plays such a tool: it checks the layout rules itself and decodes every tensor.
/// </summary>
public class PythonInteropTests
{
    private const string Python = DebianPython.Executable;

    // Decodes a safetensors file with the standard library only; numpy, when present, must decode the same values.
    private const string ReaderScript = """
        import json, math, struct, sys
        try:
            import numpy
        except ImportError:
            numpy = None
        raw = open(sys.argv[1], 'rb').read()
        (n,) = struct.unpack('<Q', raw[:8])
        assert (8 + n) % 8 == 0, 'data section is not 8-byte aligned'
        header = json.loads(raw[8:8 + n].decode('utf-8'))
        meta = header.pop('__metadata__', {})
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
        body = raw[8 + n:]
        codes = {'F64': 'd', 'F32': 'f', 'F16': 'e', 'BF16': 'H', 'I64': 'q', 'I32': 'i', 'I16': 'h',
                 'I8': 'b', 'U8': 'B', 'BOOL': '?'}
        np_types = {'F64': '<f8', 'F32': '<f4', 'F16': '<f2', 'I64': '<i8', 'I32': '<i4', 'I16': '<i2',
                    'I8': 'i1', 'U8': 'u1', 'BOOL': '?'}
        def text(v):
            if isinstance(v, bool) or isinstance(v, int):
                return str(int(v))
            if math.isnan(v):
                return 'NaN'
            if math.isinf(v):
                return 'Infinity' if v > 0 else '-Infinity'
            return repr(v)
        def same(a, b):
            return a == b or (a != a and b != b)
        end = 0
        tensors = {}
        for name, info in sorted(header.items(), key=lambda kv: (kv[1]['data_offsets'], kv[0])):
            begin, stop = info['data_offsets']
            assert begin == end, name + ' does not start where the previous tensor ends'
            end = stop
            count = 1
            for d in info['shape']:
                count *= d
            code = codes[info['dtype']]
            assert stop - begin == count * struct.calcsize('<' + code), name + ' has the wrong byte size'
            assert (8 + n + begin) % struct.calcsize('<' + code) == 0, name + ' is not aligned to its element size'
            values = list(struct.unpack('<%d%s' % (count, code), body[begin:stop]))
            if info['dtype'] == 'BF16':
                values = [struct.unpack('<f', struct.pack('<I', v << 16))[0] for v in values]
            elif numpy is not None:
                decoded = numpy.frombuffer(body[begin:stop], dtype=np_types[info['dtype']]).tolist()
                assert all(same(a, b) for a, b in zip(values, decoded)), name + ': numpy disagrees with struct'
            tensors[name] = {'dtype': info['dtype'], 'shape': info['shape'], 'values': [text(v) for v in values]}
        assert end == len(body), 'bytes after the last tensor'
        print(json.dumps({'metadata': meta, 'tensors': tensors, 'numpy': numpy is not None}))
        """;

    [Fact]
    public void DebianPythonReadsOurCheckpointWithOnlyJsonAndStruct()
    {
        Assert.True(File.Exists(Python), $"{Python} is missing: apt-get install python3");
        using var scope = torch.NewDisposeScope();
        var random = new Random(17);
        var shared = torch.randn(3, 4);
        var tensors = new Dictionary<string, Tensor>
        {
            ["blocks.0.conv.weight"] = shared,
            ["blocks.1.conv.weight"] = shared,
            ["special.f32"] = SpecialFloats(),
            ["bits.f16"] = RandomBits(random, ScalarType.Float16, 2, 8),
            ["bits.bf16"] = RandomBits(random, ScalarType.BFloat16, 2, 8),
            ["bits.f64"] = RandomBits(random, ScalarType.Float64, 5),
            ["ids.i64"] = torch.tensor(new[] { long.MinValue, -1L, 0L, long.MaxValue }),
            ["ids.i32"] = torch.tensor(new[] { int.MinValue, 7, int.MaxValue }),
            ["ids.i16"] = RandomBits(random, ScalarType.Int16, 6),
            ["ids.i8"] = RandomBits(random, ScalarType.Int8, 6),
            ["codes.u8"] = RandomBits(random, ScalarType.Byte, 3),
            ["mask.bool"] = RandomBits(random, ScalarType.Bool, 7),
            ["scalar"] = torch.tensor(2.5),
            ["empty"] = torch.empty([0, 3]),
        };
        const string spec = """{"family":"resnet","blocks":[1,1]}""";
        var extra = new Dictionary<string, string> { ["scalegrow.overlap"] = "{}", ["note"] = "ünïcode ✓" };
        var path = Path.Combine(Path.GetTempPath(), $"scalegrow-interop-{Guid.NewGuid():N}.safetensors");
        try
        {
            using (var file = File.Create(path))
                CheckpointCodec.SaveModel(file, new ModelCheckpoint(spec, tensors) { Metadata = extra });
            using var output = JsonDocument.Parse(DebianPython.Run(ReaderScript, path));
            var root = output.RootElement;

            var meta = root.GetProperty("metadata").EnumerateObject()
                .ToDictionary(p => p.Name, p => p.Value.GetString());
            Assert.Equal("model", meta["scalegrow.kind"]);
            Assert.Equal("1", meta["scalegrow.format-version"]);
            Assert.Equal(spec, meta["scalegrow.spec"]);
            Assert.Equal("{}", meta["scalegrow.overlap"]);
            Assert.Equal("ünïcode ✓", meta["note"]);
            Assert.Equal("""{"blocks.1.conv.weight":"blocks.0.conv.weight"}""", meta["scalegrow.aliases"]);

            var seen = root.GetProperty("tensors");
            Assert.Equal(tensors.Keys.Where(k => k != "blocks.1.conv.weight").Order(),
                seen.EnumerateObject().Select(p => p.Name).Order());
            foreach (var entry in seen.EnumerateObject())
                AssertDecodedAs(tensors[entry.Name], entry.Name, entry.Value);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static void AssertDecodedAs(Tensor expected, string name, JsonElement decoded)
    {
        SafeTensorsDTypesForTest(expected.dtype, out var dtypeName, out bool integral);
        Assert.Equal(dtypeName, decoded.GetProperty("dtype").GetString());
        Assert.Equal(expected.shape, decoded.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
        var values = decoded.GetProperty("values").EnumerateArray().Select(v => v.GetString()!).ToArray();
        Assert.Equal(expected.NumberOfElements, values.Length);
        if (values.Length == 0) return;
        using var scope = torch.NewDisposeScope();
        if (integral)
        {
            var want = expected.to(ScalarType.Int64).contiguous().data<long>().ToArray();
            for (int i = 0; i < want.Length; i++)
                Assert.True(want[i] == long.Parse(values[i], CultureInfo.InvariantCulture),
                    $"{name}[{i}]: python read {values[i]}, expected {want[i]}");
            return;
        }
        // Widening F16/BF16/F32 to F64 is exact, so values compare bit for bit (any NaN matches any NaN).
        var wantFloat = expected.to(ScalarType.Float64).contiguous().data<double>().ToArray();
        for (int i = 0; i < wantFloat.Length; i++)
        {
            double got = double.Parse(values[i], CultureInfo.InvariantCulture);
            bool same = double.IsNaN(wantFloat[i])
                ? double.IsNaN(got)
                : BitConverter.DoubleToInt64Bits(wantFloat[i]) == BitConverter.DoubleToInt64Bits(got);
            Assert.True(same, $"{name}[{i}]: python read {values[i]}, expected {wantFloat[i]:R}");
        }
    }

    private static void SafeTensorsDTypesForTest(ScalarType dtype, out string name, out bool integral)
    {
        (name, integral) = dtype switch
        {
            ScalarType.Float64 => ("F64", false),
            ScalarType.Float32 => ("F32", false),
            ScalarType.Float16 => ("F16", false),
            ScalarType.BFloat16 => ("BF16", false),
            ScalarType.Int64 => ("I64", true),
            ScalarType.Int32 => ("I32", true),
            ScalarType.Int16 => ("I16", true),
            ScalarType.Int8 => ("I8", true),
            ScalarType.Byte => ("U8", true),
            ScalarType.Bool => ("BOOL", true),
            _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
        };
    }
}

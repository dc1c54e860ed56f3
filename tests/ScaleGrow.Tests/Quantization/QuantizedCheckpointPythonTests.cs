using System.Text.Json;
using ScaleGrow.Checkpoints;
using ScaleGrow.Quantization;
using ScaleGrow.Tests.Infrastructure;
using TorchSharp;

namespace ScaleGrow.Tests.Quantization;

/// <summary>
/// docs/quantization.md promises that a reader with only Python's json and struct can dequantize our files. Debian's
/// Python runs the documented decoding and must produce, bit for bit, the float32 weights ScaleGrow loads.
/// </summary>
public class QuantizedCheckpointPythonTests
{
    private const string Python = DebianPython.Executable;

    // The reader of docs/quantization.md ("Reading a quantized checkpoint with json + struct"), printing each
    // dequantized weight as the bit patterns of its float32 values.
    private const string Dequantizer = """
        import json, struct, sys

        raw = open(sys.argv[1], 'rb').read()
        (n,) = struct.unpack('<Q', raw[:8])
        header = json.loads(raw[8:8 + n])
        meta = header.pop('__metadata__')
        data = raw[8 + n:]
        assert meta['scalegrow.kind'] == 'quantized-model'
        settings = json.loads(meta['scalegrow.quantization'])

        def tensor(name):
            info = header[name]
            begin, end = info['data_offsets']
            return info['dtype'], info['shape'], data[begin:end]

        def unpack(packed, bits, count):
            # Little-endian bitstream: code i occupies bits [i*bits, (i+1)*bits), bit 0 = LSB of byte 0.
            codes, acc, held, at = [], 0, 0, 0
            for _ in range(count):
                while held < bits:
                    acc |= packed[at] << held
                    at += 1
                    held += 8
                codes.append(acc & ((1 << bits) - 1))
                acc >>= bits
                held -= bits
            return codes

        def f32(x):
            return struct.unpack('<f', struct.pack('<f', x))[0]

        def dequantize(name, layer):
            shape, bits, size, groups = layer['shape'], layer['bits'], layer['groupSize'], layer['convGroups']
            rows, columns = shape[0], 1
            for d in shape[1:]:
                columns *= d
            width = columns if size == 0 else min(size, columns)
            grids = (columns + width - 1) // width
            codes = unpack(tensor(name + '.weight.codes')[2], bits, rows * columns)
            dtype, _, raw_scales = tensor(name + '.weight.scales')
            scales = struct.unpack('<%d%s' % (rows * grids, {'F32': 'f', 'F16': 'e'}[dtype]), raw_scales)
            if layer['symmetric']:
                zeros = [1 << (bits - 1)] * (rows * grids)
            else:
                zeros = unpack(tensor(name + '.weight.zeros')[2], bits, rows * grids)
            grid_of = [[j // width for j in range(columns)] for _ in range(groups)]
            if layer['permuted']:
                perm = struct.unpack('<%di' % (groups * columns), tensor(name + '.weight.perm')[2])
                for g in range(groups):
                    for k in range(columns):
                        grid_of[g][perm[g * columns + k]] = k // width
            weight = []
            for r in range(rows):
                grid = grid_of[r // (rows // groups)]
                for j in range(columns):
                    at = r * grids + grid[j]
                    weight.append(f32(f32(scales[at]) * (codes[r * columns + j] - zeros[at])))
            return weight

        out = {}
        for name, layer in settings['layers'].items():
            out[name] = [struct.unpack('<I', struct.pack('<f', v))[0] for v in dequantize(name, layer)]
        print(json.dumps({'method': settings['method'], 'weights': out}))
        """;

    public static TheoryData<string, int, int, bool, ScaleFormat> Files => new()
    {
        { QuantizationMethods.GptqReorder, 3, 8, false, ScaleFormat.F16 },
        { QuantizationMethods.GptqReorder, 3, 8, false, ScaleFormat.F32 },
        { QuantizationMethods.GptqReorderDynamic, 2, 16, true, ScaleFormat.F32 },
        { QuantizationMethods.GptqReorder, 5, 0, false, ScaleFormat.F32 },
        { QuantizationMethods.Gptq, 8, 0, true, ScaleFormat.F32 },
    };

    [Theory]
    [MemberData(nameof(Files))]
    public void DebianPythonDequantizesOurFilesBitForBitWithOnlyJsonAndStruct(string method, int bits, int groupSize,
        bool symmetric, ScaleFormat scales)
    {
        Assert.True(File.Exists(Python), $"{Python} is missing: apt-get install python3");
        using var scope = torch.NewDisposeScope();
        var fixture = QuantizationFixtures.Quantized(
            QuantizedCheckpointTests.Options(method, bits, groupSize, symmetric));
        var bytes = scales == ScaleFormat.F16 ? fixture.CheckpointF16 : fixture.Checkpoint;
        var path = Path.Combine(Path.GetTempPath(), $"scalegrow-quantized-{Guid.NewGuid():N}.safetensors");
        try
        {
            File.WriteAllBytes(path, bytes);
            using var decoded = JsonDocument.Parse(DebianPython.Run(Dequantizer, path));
            Assert.Equal(method, decoded.RootElement.GetProperty("method").GetString());
            var weights = decoded.RootElement.GetProperty("weights");

            var (loaded, _) = ModelIO.LoadModel(bytes, path);
            using var module = loaded.Module;
            var state = module.state_dict();
            Assert.Equal(fixture.Layers.Count, weights.EnumerateObject().Count());
            foreach (var layer in weights.EnumerateObject())
            {
                var expected = state[layer.Name + ".weight"].contiguous().data<float>().ToArray()
                    .Select(BitConverter.SingleToUInt32Bits).ToArray();
                var got = layer.Value.EnumerateArray().Select(v => v.GetUInt32()).ToArray();
                Assert.Equal(expected.Length, got.Length);
                int mismatch = Enumerable.Range(0, expected.Length).FirstOrDefault(i => expected[i] != got[i], -1);
                Assert.True(mismatch < 0, $"{layer.Name}[{mismatch}]: python " +
                    $"{(mismatch < 0 ? 0 : BitConverter.UInt32BitsToSingle(got[mismatch]))}, ScaleGrow " +
                    $"{(mismatch < 0 ? 0 : BitConverter.UInt32BitsToSingle(expected[mismatch]))}");
            }
        }
        finally
        {
            File.Delete(path);
        }
    }
}

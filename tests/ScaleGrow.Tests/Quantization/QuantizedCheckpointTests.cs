using System.Buffers.Binary;
using ScaleGrow.Checkpoints;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Quantization;

public class QuantizedCheckpointTests
{
    internal static QuantizationOptions Options(string method, int bits, int groupSize, bool symmetric) =>
        new() { Method = method, Bits = bits, GroupSize = groupSize, Symmetric = symmetric, BlockSize = 16 };

    public static TheoryData<string, int, int, bool> Settings => new()
    {
        { QuantizationMethods.Rtn, 4, 0, false },
        { QuantizationMethods.Gptq, 8, 0, true },
        { QuantizationMethods.GptqReorder, 3, 8, false },
        { QuantizationMethods.GptqReorderDynamic, 2, 16, true },
        { QuantizationMethods.GptqReorder, 5, 0, false },
    };

    [Theory]
    [MemberData(nameof(Settings))]
    public void LoadingGivesBackTheQuantizedWeightsBitExactlyAndEveryOtherTensorUnchanged(string method, int bits,
        int groupSize, bool symmetric)
    {
        using var scope = torch.NewDisposeScope();
        var fixture = QuantizationFixtures.Quantized(Options(method, bits, groupSize, symmetric));

        // The float model holding the quantizer's dequantized weights is what loading the packed file must give.
        var (expected, _) = ModelIO.LoadModel(fixture.DequantizedFloat, "dequantized.safetensors");
        var (loaded, metadata) = ModelIO.LoadModel(fixture.Checkpoint, "q.safetensors");
        using var expectedModule = expected.Module;
        using var loadedModule = loaded.Module;
        Assert.Equal(expected.Spec.ToJson(), loaded.Spec.ToJson());
        Assert.True(metadata.ContainsKey(CheckpointMetadata.QuantizationKey));
        var state = loaded.Module.state_dict();
        foreach (var (name, want) in expected.Module.state_dict())
            Assert.True(state[name].dtype == want.dtype && state[name].eq(want).all().item<bool>(), name);

        var info = QuantizedCheckpoint.Load(fixture.Checkpoint, "q.safetensors");
        using var infoModule = info.Model.Module;
        Assert.Equal((method, bits, symmetric, ScaleFormat.F32),
            (info.Info.Method, info.Info.Bits, info.Info.Symmetric, info.Info.ScaleFormat));
        Assert.Equal(fixture.Layers.Order(StringComparer.Ordinal), info.Info.Layers.Keys);

        // Only what a layer needs is stored: zero points for asymmetric grids, a permutation for permuted groups.
        var names = SafeTensorsReader.Read(fixture.Checkpoint, "q.safetensors").Tensors.Keys.ToHashSet();
        foreach (var (name, layer) in info.Info.Layers)
        {
            Assert.DoesNotContain(name + ".weight", names);
            Assert.Contains(name + QuantizedCheckpoint.CodesSuffix, names);
            Assert.Contains(name + QuantizedCheckpoint.ScalesSuffix, names);
            Assert.Equal(!symmetric, names.Contains(name + QuantizedCheckpoint.ZerosSuffix));
            long columns = layer.Shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            bool permuted = groupSize > 0 && groupSize < columns && QuantizationMethods.Reorders(method);
            Assert.Equal(permuted, layer.Permuted);
            Assert.Equal(permuted, names.Contains(name + QuantizedCheckpoint.PermutationSuffix));
        }
    }

    [Fact]
    public void TheDataSectionHoldsExactlyThePackedCodesScalesZerosAndTheFloatTensors()
    {
        using var scope = torch.NewDisposeScope();
        var fixture = QuantizationFixtures.Quantized(Options(QuantizationMethods.GptqReorder, 3, 8, false));
        var info = QuantizedCheckpoint.Load(fixture.Checkpoint, "q.safetensors");
        using var module = info.Model.Module;

        long expected = 0;
        foreach (var (name, t) in module.state_dict())
            if (!info.Info.Layers.ContainsKey(name[..name.LastIndexOf('.')]) || !name.EndsWith(".weight"))
                expected += t.NumberOfElements * t.ElementSize;
        foreach (var layer in info.Info.Layers.Values)
        {
            long rows = layer.Shape[0], columns = layer.Shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            long grids = layer.GroupSize == 0 ? 1 : (columns + layer.GroupSize - 1) / layer.GroupSize;
            expected += (rows * columns * 3 + 7) / 8 + rows * grids * 4 + (rows * grids * 3 + 7) / 8;
            if (layer.Permuted) expected += layer.ConvGroups * columns * 4;
        }
        long header = (long)BinaryPrimitives.ReadUInt64LittleEndian(fixture.Checkpoint);
        Assert.Equal(expected, fixture.Checkpoint.LongLength - 8 - header);
    }

    [Fact]
    public void FourBitCheckpointsAreSeveralTimesSmallerThanFloat32AndFewerBitsAreSmaller()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        // Widths where conv weights dominate, as in real models (the fixture's 8/16 channels are all norms).
        using var unfused = new CnnModel(CnnSpecs.Fixed(CnnFamily.ResNet, 10, [1, 1],
            imageSize: QuantizationFixtures.ImageSize, stageWidths: [48, 96]));
        using var wide = CnnFusion.Fuse(unfused);
        long fp32 = ModelIO.SaveModel(wide).LongLength;
        var ratios = new Dictionary<int, double>();
        foreach (int bits in new[] { 8, 4, 3 })
        {
            var options = new QuantizationOptions { Method = QuantizationMethods.Rtn, Bits = bits };
            using var result = new ModelQuantizer(options).Quantize(wide, []);
            ratios[bits] = (double)fp32 / QuantizedCheckpoint.Save(wide, result).LongLength;
        }
        Assert.True(ratios[8] > 3.5, $"W8 ratio {ratios[8]:0.00}");
        Assert.True(ratios[4] > 6.5, $"W4 ratio {ratios[4]:0.00}");
        Assert.True(ratios[3] > ratios[4] * 1.2, $"W3 ratio {ratios[3]:0.00} vs W4 {ratios[4]:0.00}");
    }

    [Fact]
    public void HalfPrecisionScalesSaveTwoBytesPerGridAndMoveWeightsByLessThanAGridStep()
    {
        using var scope = torch.NewDisposeScope();
        var fixture = QuantizationFixtures.Quantized(Options(QuantizationMethods.GptqReorder, 3, 8, false));
        var full = QuantizedCheckpoint.Load(fixture.Checkpoint, "f32.safetensors");
        var half = QuantizedCheckpoint.Load(fixture.CheckpointF16, "f16.safetensors");
        using var fullModule = full.Model.Module;
        using var halfModule = half.Model.Module;
        Assert.Equal(ScaleFormat.F16, half.Info.ScaleFormat);

        var stored = SafeTensorsReader.Read(fixture.Checkpoint, "f32.safetensors").Tensors;
        long grids = full.Info.Layers.Keys.Sum(n => stored[n + QuantizedCheckpoint.ScalesSuffix].NumberOfElements);
        long DataBytes(byte[] file) => file.LongLength - 8 - (long)BinaryPrimitives.ReadUInt64LittleEndian(file);
        Assert.Equal(2 * grids, DataBytes(fixture.Checkpoint) - DataBytes(fixture.CheckpointF16));

        var a = fullModule.state_dict();
        var b = halfModule.state_dict();
        foreach (var name in full.Info.Layers.Keys)
        {
            var moved = (a[name + ".weight"] - b[name + ".weight"]).abs().max().item<float>();
            // |Δŵ| = |q − zero|·|Δscale| ≤ 7 · 2⁻¹¹ · scale at 3 bits: a small fraction of a grid step.
            float step = stored[name + QuantizedCheckpoint.ScalesSuffix].max().item<float>();
            Assert.True(moved <= 7 * step / 2048 * 1.01, $"{name}: moved {moved}, step {step}");
        }
    }

    [Fact]
    public void ScalesOutsideTheHalfPrecisionRangeAreRefusedWhenF16IsAskedFor()
    {
        using var scope = torch.NewDisposeScope();
        using var model = QuantizationFixtures.RandomFusedCnn();
        using var result = new ModelQuantizer(new QuantizationOptions { Method = QuantizationMethods.Rtn })
            .Quantize(model, []);
        result.Layers[0].Scales.fill_(1e-12f);
        var e = Assert.Throws<InvalidSpecException>(() => QuantizedCheckpoint.Save(model, result,
            new QuantizedCheckpointOptions { Scales = ScaleFormat.F16 }));
        Assert.Contains("F16", e.Message);
        Assert.Contains(result.Layers[0].Name, e.Message);
    }
}

using System.Buffers.Binary;
using ScaleGrow.Checkpoints;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Quantization;

public class QuantizedCheckpointTests
{
    internal static (CnnModel Model, ModelQuantizationResult Result) QuantizeFixture(QuantizationOptions options,
        CnnModel? model = null)
    {
        model ??= QuantizationFixtures.RandomFusedCnn();
        var batches = QuantizationFixtures.Batches(1, 16, 9);
        var result = new ModelQuantizer(options).Quantize(model, batches,
            overlapMaps: CnnFusion.OverlapMaps(model.Spec));
        return (model, result);
    }

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
        var options = new QuantizationOptions
            { Method = method, Bits = bits, GroupSize = groupSize, Symmetric = symmetric, BlockSize = 16 };
        var (model, result) = QuantizeFixture(options);
        using var _ = model;
        using var __ = result;
        var bytes = QuantizedCheckpoint.Save(model, result);

        var (loaded, metadata) = ModelIO.LoadModel(bytes, "q.safetensors");
        using var loadedModule = loaded.Module;
        Assert.Equal(model.Spec.ToJson(), loaded.Spec.ToJson());
        Assert.True(metadata.ContainsKey(CheckpointMetadata.QuantizationKey));
        var state = loaded.Module.state_dict();
        var quantized = result.Layers.ToDictionary(l => l.Name + ".weight");
        foreach (var (name, original) in model.state_dict())
        {
            var expected = quantized.TryGetValue(name, out var layer) ? layer.Dequantized : original;
            Assert.True(state[name].dtype == expected.dtype && state[name].eq(expected).all().item<bool>(), name);
        }

        var info = QuantizedCheckpoint.Load(bytes, "q.safetensors").Info;
        Assert.Equal((method, bits, symmetric, ScaleFormat.F32), (info.Method, info.Bits, info.Symmetric,
            info.ScaleFormat));
        Assert.Equal(result.Layers.Select(l => l.Name).Order(StringComparer.Ordinal), info.Layers.Keys);

        // Only what a layer needs is stored: zero points for asymmetric grids, a permutation for permuted groups.
        var names = SafeTensorsReader.Read(bytes, "q.safetensors").Tensors.Keys.ToHashSet();
        foreach (var l in result.Layers)
        {
            Assert.DoesNotContain(l.Name + ".weight", names);
            Assert.Contains(l.Name + QuantizedCheckpoint.CodesSuffix, names);
            Assert.Contains(l.Name + QuantizedCheckpoint.ScalesSuffix, names);
            Assert.Equal(!symmetric, names.Contains(l.Name + QuantizedCheckpoint.ZerosSuffix));
            bool permuted = groupSize > 0 && QuantizationMethods.Reorders(method) && l.GroupSize > 0;
            Assert.Equal(permuted, names.Contains(l.Name + QuantizedCheckpoint.PermutationSuffix));
            Assert.Equal(permuted, info.Layers[l.Name].Permuted);
        }
    }

    [Fact]
    public void TheDataSectionHoldsExactlyThePackedCodesScalesZerosAndTheFloatTensors()
    {
        using var scope = torch.NewDisposeScope();
        var (model, result) = QuantizeFixture(new QuantizationOptions
            { Method = QuantizationMethods.GptqReorder, Bits = 3, GroupSize = 8 });
        using var _ = model;
        using var __ = result;
        var bytes = QuantizedCheckpoint.Save(model, result);

        long expected = 0;
        var weightNames = result.Layers.Select(l => l.Name + ".weight").ToHashSet();
        foreach (var (name, t) in model.state_dict())
            if (!weightNames.Contains(name)) expected += t.NumberOfElements * t.ElementSize;
        foreach (var l in result.Layers)
        {
            long rows = l.WeightShape[0], columns = l.Codes.shape[1], grids = l.Scales.shape[1];
            expected += (rows * columns * 3 + 7) / 8 + rows * grids * 4 + (rows * grids * 3 + 7) / 8;
            if (l.GroupSize > 0) expected += l.ConvGroups * columns * 4;
        }
        long header = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(expected, bytes.LongLength - 8 - header);
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
            using var result = new ModelQuantizer(new QuantizationOptions { Method = QuantizationMethods.Rtn, Bits = bits })
                .Quantize(wide, []);
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
        var (model, result) = QuantizeFixture(new QuantizationOptions
            { Method = QuantizationMethods.GptqReorder, Bits = 4, GroupSize = 8 });
        using var _ = model;
        using var __ = result;
        var f32 = QuantizedCheckpoint.Save(model, result);
        var f16 = QuantizedCheckpoint.Save(model, result, new QuantizedCheckpointOptions { Scales = ScaleFormat.F16 });
        long grids = result.Layers.Sum(l => l.Scales.NumberOfElements);
        long DataBytes(byte[] file) => file.LongLength - 8 - (long)BinaryPrimitives.ReadUInt64LittleEndian(file);
        Assert.Equal(2 * grids, DataBytes(f32) - DataBytes(f16));

        var loaded = QuantizedCheckpoint.Load(f16, "f16.safetensors");
        using var module = loaded.Model.Module;
        Assert.Equal(ScaleFormat.F16, loaded.Info.ScaleFormat);
        var state = module.state_dict();
        foreach (var layer in result.Layers)
        {
            var moved = (state[layer.Name + ".weight"] - layer.Dequantized).abs();
            // |Δŵ| = |q − zero|·|Δscale| ≤ 15 · 2⁻¹¹ · scale at 4 bits: well under half a grid step.
            var step = layer.Scales.max().item<float>();
            Assert.True(moved.max().item<float>() <= 15 * step / 2048 * 1.01, layer.Name);
        }
    }

    [Fact]
    public void ScalesOutsideTheHalfPrecisionRangeAreRefusedWhenF16IsAskedFor()
    {
        using var scope = torch.NewDisposeScope();
        var (model, result) = QuantizeFixture(new QuantizationOptions { Method = QuantizationMethods.Rtn });
        using var _ = model;
        using var __ = result;
        result.Layers[0].Scales.fill_(1e-12f);
        var e = Assert.Throws<InvalidSpecException>(() => QuantizedCheckpoint.Save(model, result,
            new QuantizedCheckpointOptions { Scales = ScaleFormat.F16 }));
        Assert.Contains("F16", e.Message);
        Assert.Contains(result.Layers[0].Name, e.Message);
    }
}

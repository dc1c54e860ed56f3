using ScaleGrow.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Quantization;

public class GptqLayerQuantizerTests
{
    private static bool BitEqual(Tensor a, Tensor b) =>
        a.shape.SequenceEqual(b.shape) && a.dtype == b.dtype && a.eq(b).all().item<bool>();

    private static QuantizationOptions Options(string method, int bits = 4, int group = 0, bool symmetric = false,
        int block = 16, bool staticGroups = false) =>
        new()
        {
            Method = method, Bits = bits, GroupSize = group, Symmetric = symmetric, BlockSize = block,
            StaticGroups = staticGroups
        };

    private static GptqLayerQuantizer Calibrated(nn.Module layer, Tensor inputs, long batch = 64)
    {
        var quantizer = new GptqLayerQuantizer(layer, "layer");
        for (long i = 0; i < inputs.shape[0]; i += batch)
            quantizer.AddBatch(inputs.narrow(0, i, Math.Min(batch, inputs.shape[0] - i)));
        return quantizer;
    }

    [Theory]
    [InlineData(4, 0, false)]
    [InlineData(3, 0, true)]
    [InlineData(4, 8, false)]
    [InlineData(2, 5, true)]
    public void IdentityHessian_FromScaledIdentityInputs_EqualsRtnExactly(int bits, int group, bool symmetric)
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(7);
        var linear = nn.Linear(32, 6);
        using var quantizer = new GptqLayerQuantizer(linear, "fc");
        // 32 samples x = 4·e_i: H = 2/32 · Σ 16·e_i e_iᵀ = I exactly.
        quantizer.AddBatch(torch.eye(32) * 4);
        Assert.True(BitEqual(quantizer.Hessian!, torch.eye(32, dtype: ScalarType.Float64).unsqueeze(0)));
        var rtn = quantizer.Quantize(Options("rtn", bits, group, symmetric));
        // With a diagonal H there is nothing to compensate; per-channel grids do not depend on the order either.
        var methods = group == 0 ? QuantizationMethods.All.Skip(1) : [QuantizationMethods.Gptq];
        foreach (var method in methods)
        {
            var gptq = quantizer.Quantize(Options(method, bits, group, symmetric));
            Assert.True(BitEqual(rtn.Codes, gptq.Codes), method);
            Assert.True(BitEqual(rtn.Scales, gptq.Scales), method);
            Assert.True(BitEqual(rtn.Zeros, gptq.Zeros), method);
            Assert.True(BitEqual(rtn.Dequantized, gptq.Dequantized), method);
            Assert.Equal(rtn.RelativeError, gptq.RelativeError);
        }
    }

    [Fact]
    public void DiagonalHessian_OfAGroupedConv_EqualsRtnExactly()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(8);
        var conv = nn.Conv2d(4, 6, 3, groups: 2);
        using var quantizer = new GptqLayerQuantizer(conv, "conv");
        quantizer.SetHessian(torch.diag_embed(torch.rand(2, 18) + 0.1), 10);
        var rtn = quantizer.Quantize(Options("rtn", 3));
        var gptq = quantizer.Quantize(Options("gptq", 3));
        Assert.True(BitEqual(rtn.Codes, gptq.Codes));
        Assert.True(BitEqual(rtn.Dequantized, gptq.Dequantized));
        Assert.Equal(new long[] { 6, 18 }, gptq.Codes.shape);
        Assert.Equal(new long[] { 6, 2, 3, 3 }, gptq.Dequantized.shape);
    }

    public static IEnumerable<object[]> Layers() =>
        from kind in new[] { "linear", "conv", "depthwise" }
        from bits in new[] { 4, 3 }
        select new object[] { kind, bits };

    [Theory]
    [MemberData(nameof(Layers))]
    public void ErrorCompensation_IsNeverWorseThanRtn_OnCorrelatedInputs(string kind, int bits)
    {
        using var scope = torch.NewDisposeScope();
        for (int seed = 0; seed < 8; seed++)
        {
            using var seedScope = torch.NewDisposeScope();
            var generator = new Generator(1000 + (ulong)seed);
            torch.manual_seed(seed);
            nn.Module layer;
            Tensor inputs;
            switch (kind)
            {
                case "linear":
                    layer = nn.Linear(40, 12);
                    inputs = QuantizationTestData.CorrelatedFeatures(256, 40, generator);
                    break;
                case "conv":
                    layer = nn.Conv2d(5, 8, 3, padding: 1);
                    inputs = QuantizationTestData.CorrelatedImages(16, 5, 8, generator);
                    break;
                default:
                    layer = nn.Conv2d(8, 8, 3, padding: 1, groups: 8);
                    inputs = QuantizationTestData.CorrelatedImages(16, 8, 8, generator);
                    break;
            }
            using var quantizer = Calibrated(layer, inputs);
            double rtn = quantizer.Quantize(Options("rtn", bits)).RelativeError!.Value;
            foreach (var method in QuantizationMethods.All.Skip(1))
            {
                double error = quantizer.Quantize(Options(method, bits, block: 8)).RelativeError!.Value;
                Assert.True(double.IsFinite(error) && error <= rtn,
                    $"{kind} {bits}-bit seed {seed}: {method} error {error:G4} > rtn {rtn:G4}");
            }
            double grouped = quantizer.Quantize(Options("gptq-reorder-dynamic", bits, group: 8, block: 8))
                .RelativeError!.Value;
            double groupedRtn = quantizer.Quantize(Options("rtn", bits, group: 8)).RelativeError!.Value;
            Assert.True(grouped <= groupedRtn,
                $"{kind} {bits}-bit seed {seed} grouped: {grouped:G4} > {groupedRtn:G4}");
        }
    }

    /// <summary>Formula 4-3 taken literally: after quantizing column q, the remaining columns F (q included) move by
    /// −(w_q − quant(w_q))/[H_F⁻¹]_qq · [H_F⁻¹]_{q,F}, with H_F⁻¹ inverted explicitly at every step.</summary>
    private static double[,] LiteralObs(double[,] w, double[,] h, long[] order, Tensor scale, Tensor zero, int bits)
    {
        int rows = w.GetLength(0), n = w.GetLength(1);
        var result = new double[rows, n];
        var remaining = order.Select(j => (int)j).ToList();
        var current = (double[,])w.Clone();
        var scales = scale.data<double>().ToArray();
        var zeros = zero.data<double>().ToArray();
        int maxq = (1 << bits) - 1;
        foreach (int q in order)
        {
            var f = remaining.ToArray();
            var hf = torch.zeros(f.Length, f.Length, ScalarType.Float64);
            for (int a = 0; a < f.Length; a++)
                for (int b = 0; b < f.Length; b++) hf[a, b] = torch.tensor(h[f[a], f[b]]);
            var inverse = torch.linalg.inv(hf);
            double Inv(int a, int b) => inverse[a, b].item<double>();
            for (int r = 0; r < rows; r++)
            {
                double code = Math.Clamp(
                    Math.Round(current[r, q] / scales[r], MidpointRounding.ToEven) + zeros[r], 0, maxq);
                double rounded = scales[r] * (code - zeros[r]);
                result[r, q] = rounded;
                double err = (current[r, q] - rounded) / Inv(0, 0);
                for (int b = 0; b < f.Length; b++) current[r, f[b]] -= err * Inv(0, b);
            }
            remaining.RemoveAt(0);
        }
        return result;
    }

    [Fact]
    public void CholeskySolver_MatchesFormula4_3TakenLiterally_InAnyOrder()
    {
        using var scope = torch.NewDisposeScope();
        var generator = new Generator(21);
        var x = QuantizationTestData.CorrelatedFeatures(50, 10, generator).to(ScalarType.Float64);
        var h = x.t().matmul(x) * (2.0 / 50);
        var w = torch.randn(4, 10, ScalarType.Float64, generator: generator);
        var dampened = h + torch.eye(10, dtype: ScalarType.Float64) * (0.01 * h.diagonal().mean().item<double>());
        var hArray = new double[10, 10];
        var wArray = new double[4, 10];
        for (int i = 0; i < 10; i++)
        {
            for (int j = 0; j < 10; j++) hArray[i, j] = dampened[i, j].item<double>();
            for (int r = 0; r < 4; r++) wArray[r, i] = w[r, i].item<double>();
        }
        var (scale, zero) = UniformQuantizer.FindGrid(w, 3, false);
        foreach (var order in new[] { Enumerable.Range(0, 10).Select(i => (long)i).ToArray(),
                     new long[] { 7, 2, 9, 0, 4, 1, 8, 3, 6, 5 } })
        {
            var expected = LiteralObs(wArray, hArray, order, scale, zero, 3);
            var settings = new GptqSettings(3, false, 0, false, 3, 0.01, ColumnOrderMode.Importance,
                InitialOrder: [order]);
            using var solution = GptqSolver.Solve(w.unsqueeze(0), h.unsqueeze(0), settings, "obs");
            for (int r = 0; r < 4; r++)
                for (int j = 0; j < 10; j++)
                    Assert.Equal(expected[r, j], solution.Dequantized[0, r, j].item<float>(), 5);
        }
    }

    [Fact]
    public void RelativeError_IsTheMeasuredOutputError()
    {
        using var scope = torch.NewDisposeScope();
        var generator = new Generator(3);
        var linear = nn.Linear(20, 7, hasBias: false);
        var inputs = QuantizationTestData.CorrelatedFeatures(100, 20, generator);
        using var quantizer = Calibrated(linear, inputs, batch: 30);
        var result = quantizer.Quantize(Options("gptq", 3));
        var exact = linear.call(inputs);
        var approximate = nn.functional.linear(inputs, result.Dequantized);
        double measured = (exact - approximate).pow(2).sum().item<float>() / exact.pow(2).sum().item<float>();
        Assert.Equal(measured, result.RelativeError!.Value, 4);
    }

    [Fact]
    public void Hessian_IsARunningAverage_IndependentOfHowBatchesAreSplit()
    {
        using var scope = torch.NewDisposeScope();
        var conv = nn.Conv2d(3, 4, 3, stride: 2, padding: 1);
        var inputs = QuantizationTestData.CorrelatedImages(12, 3, 7, new Generator(4));
        using var whole = Calibrated(conv, inputs, batch: 12);
        using var pieces = Calibrated(conv, inputs, batch: 5);
        Assert.Equal(12, pieces.Samples);
        Assert.True(whole.Hessian!.allclose(pieces.Hessian!, rtol: 1e-9, atol: 1e-9));
        // H = 2/n · Σ xxᵀ over every patch of every sample.
        var columns = LayerGeometry.Of(conv, "c").InputColumns(inputs, "c").to(ScalarType.Float64);
        var expected = columns.bmm(columns.mT) * (2.0 / 12);
        Assert.True(whole.Hessian!.allclose(expected, rtol: 1e-9, atol: 1e-9));
    }

    [Fact]
    public void DepthwiseConv_HasOneSmallHessianPerChannel()
    {
        using var scope = torch.NewDisposeScope();
        var conv = nn.Conv2d(6, 6, 3, padding: 1, groups: 6);
        using var quantizer = Calibrated(conv, QuantizationTestData.CorrelatedImages(4, 6, 6, new Generator(5)));
        Assert.Equal(new long[] { 6, 9, 9 }, quantizer.Hessian!.shape);
        var result = quantizer.Quantize(Options("gptq-reorder"));
        Assert.Equal(new long[] { 6, 9 }, result.Permutation.shape);
        Assert.Equal(new long[] { 6, 1 }, result.Scales.shape);
    }

    [Fact]
    public void KnownPermutation_IsUndoneBitExactly()
    {
        using var scope = torch.NewDisposeScope();
        var generator = new Generator(11);
        // Integer Hessian diagonal: the dampening mean is exact in any order, so both solves see identical numbers.
        var a = torch.randint(-3, 4, [24, 60], generator: generator).to(ScalarType.Float64);
        var h = a.matmul(a.t()).unsqueeze(0);
        var w = torch.randn(1, 10, 24, generator: generator);
        var order = Enumerable.Range(0, 24).Select(i => (long)(i * 7 % 24)).ToArray();
        var p = torch.tensor(order).unsqueeze(0);
        foreach (int group in new[] { 0, 6 })
        {
            var settings = new GptqSettings(4, false, group, false, 8, 0.01, ColumnOrderMode.Importance,
                InitialOrder: [order]);
            using var permuted = GptqSolver.Solve(w, h, settings, "a");
            var natural = settings with { Order = ColumnOrderMode.Natural, InitialOrder = null };
            using var reference = GptqSolver.Solve(w.index_select(2, p[0]), GptqSolver.PermuteSymmetric(h, p),
                natural, "b");
            Assert.True(BitEqual(permuted.Permutation, p));
            Assert.True(BitEqual(permuted.Codes.index_select(2, p[0]), reference.Codes));
            Assert.True(BitEqual(permuted.Dequantized.index_select(2, p[0]), reference.Dequantized));
            Assert.True(BitEqual(permuted.Scales, reference.Scales));
        }
    }

    [Fact]
    public void IdentityPermutation_EqualsPlainGptq()
    {
        using var scope = torch.NewDisposeScope();
        var linear = nn.Linear(30, 9);
        using var quantizer = Calibrated(linear, QuantizationTestData.CorrelatedFeatures(120, 30, new Generator(12)));
        var identity = new[] { Enumerable.Range(0, 30).Select(i => (long)i).ToArray() };
        foreach (int group in new[] { 0, 10 })
        {
            var plain = quantizer.Quantize(Options("gptq", 3, group), null, null);
            var reordered = quantizer.Quantize(Options("gptq-reorder", 3, group), null, identity);
            Assert.True(BitEqual(plain.Codes, reordered.Codes));
            Assert.True(BitEqual(plain.Dequantized, reordered.Dequantized));
        }
    }

    [Fact]
    public void StoredCodes_ReproduceTheDequantizedWeight_ForEveryMethodAndGrouping()
    {
        using var scope = torch.NewDisposeScope();
        var conv = nn.Conv2d(4, 6, 3, padding: 1, groups: 2);
        using var quantizer = Calibrated(conv, QuantizationTestData.CorrelatedImages(8, 4, 6, new Generator(13)));
        foreach (var method in QuantizationMethods.All)
            foreach (var (group, isStatic) in new[] { (0, false), (4, false), (4, true), (5, false) })
            {
                if (isStatic && method == "rtn") continue;
                var result = quantizer.Quantize(Options(method, 3, group, block: 4, staticGroups: isStatic),
                    new[,] { { 1, 2, 1 }, { 2, 3, 2 }, { 1, 2, 1 } });
                Assert.True(BitEqual(result.Dequantize(), result.Dequantized), $"{method} group {group}");
                if (result.GroupsInOriginalOrder)
                {
                    long g = result.GroupSize == 0 ? 18 : result.GroupSize;
                    var expected = torch.arange(18).div(g, rounding_mode: RoundingMode.floor).expand(2, 18);
                    Assert.True(BitEqual(result.GroupIndex, expected), $"{method} group {group}: group index");
                }
                var sorted = result.Permutation.sort(1).Values;
                Assert.True(BitEqual(sorted, torch.arange(18).expand(2, 18)), $"{method}: not a permutation");
            }
    }

    [Fact]
    public void Reorder_PutsTheMostOverlappedKernelPositionsFirst_ThenTheMostImportantColumns()
    {
        using var scope = torch.NewDisposeScope();
        var conv = nn.Conv2d(3, 4, 3, padding: 1);
        var inputs = QuantizationTestData.CorrelatedImages(8, 3, 6, new Generator(14));
        using var quantizer = Calibrated(conv, inputs);
        var overlap = new[,] { { 1, 2, 1 }, { 2, 3, 2 }, { 1, 2, 1 } };
        var result = quantizer.Quantize(Options("gptq-reorder"), overlap);
        var order = result.Permutation[0].data<long>().ToArray();
        var levels = ColumnOrdering.ColumnLevels(overlap, 3);
        Assert.Equal(new long[] { 4, 13, 22 }, order.Take(3).Order());                // centre of every channel
        Assert.All(order.Skip(3).Take(12), j => Assert.Equal(2, levels[j]));
        Assert.All(order.Skip(15), j => Assert.Equal(1, levels[j]));

        // Within a level: descending importance (quant(w)−w)²/[H⁻¹]_pp with the per-channel grid, dampened H.
        var h = quantizer.Hessian!.clone();
        var diagonal = h.diagonal(0, -2, -1);
        diagonal.add_(diagonal.mean([-1L], keepdim: true) * 0.01);
        var inverseDiagonal = torch.linalg.inv(h).diagonal(0, -2, -1);
        var w = conv.weight.detach().reshape(1, 4, 27).to(ScalarType.Float64);
        var (scale, zero) = UniformQuantizer.FindGrid(w, 4, false);
        var importance = ColumnOrdering.Importance(w, scale.unsqueeze(-1), zero.unsqueeze(-1), inverseDiagonal, 4)[0];
        for (int k = 1; k < 27; k++)
            if (levels[order[k]] == levels[order[k - 1]])
                Assert.True(importance[order[k]] <= importance[order[k - 1]] * (1 + 1e-9), $"position {k}");
    }

    [Fact]
    public void Reorder_WithoutOverlap_IsByImportanceAlone()
    {
        using var scope = torch.NewDisposeScope();
        var linear = nn.Linear(16, 5);
        using var quantizer = Calibrated(linear, QuantizationTestData.CorrelatedFeatures(64, 16, new Generator(15)));
        var result = quantizer.Quantize(Options("gptq-reorder"));
        var order = result.Permutation[0].data<long>().ToArray();
        var h = quantizer.Hessian!.clone();
        var diagonal = h.diagonal(0, -2, -1);
        diagonal.add_(diagonal.mean([-1L], keepdim: true) * 0.01);
        var w = linear.weight.detach().reshape(1, 5, 16).to(ScalarType.Float64);
        var (scale, zero) = UniformQuantizer.FindGrid(w, 4, false);
        var importance = ColumnOrdering.Importance(w, scale.unsqueeze(-1), zero.unsqueeze(-1),
            torch.linalg.inv(h).diagonal(0, -2, -1), 4)[0];
        for (int k = 1; k < 16; k++) Assert.True(importance[order[k]] <= importance[order[k - 1]] * (1 + 1e-9));
    }

    [Fact]
    public void InverseHessianOfTheRemainingColumns_IsTheTrailingBlockOfTheCholeskyFactor()
    {
        // The identity the dynamic re-ranking relies on: (H_RR)⁻¹ = U_RRᵀ·U_RR for H⁻¹ = UᵀU, U upper.
        using var scope = torch.NewDisposeScope();
        var a = torch.randn(12, 40, ScalarType.Float64, generator: new Generator(16));
        var h = a.matmul(a.t()).unsqueeze(0);
        var u = GptqSolver.UpperCholeskyOfInverse(h, "h");
        foreach (long k in new long[] { 1, 5, 11 })
        {
            var rest = TensorIndex.Slice(k, 12);
            var uRest = u[TensorIndex.Colon, rest, rest];
            var inverse = torch.linalg.inv(h[TensorIndex.Colon, rest, rest]);
            Assert.True(uRest.mT.bmm(uRest).allclose(inverse, rtol: 1e-8, atol: 1e-10));
            Assert.True(GptqSolver.UpperCholeskyOfInverse(h[TensorIndex.Colon, rest, rest], "h")
                .allclose(uRest, rtol: 1e-8, atol: 1e-10));
        }
    }

    [Fact]
    public void DynamicReorder_WithOneBlock_EqualsStaticReorder()
    {
        using var scope = torch.NewDisposeScope();
        var linear = nn.Linear(24, 6);
        using var quantizer = Calibrated(linear, QuantizationTestData.CorrelatedFeatures(96, 24, new Generator(17)));
        var fixedOrder = quantizer.Quantize(Options("gptq-reorder", block: 128));
        var dynamic = quantizer.Quantize(Options("gptq-reorder-dynamic", block: 128));
        Assert.True(BitEqual(fixedOrder.Dequantized, dynamic.Dequantized));
        // With small blocks the order of later columns is re-ranked and may differ.
        var reranked = quantizer.Quantize(Options("gptq-reorder-dynamic", block: 4));
        Assert.True(double.IsFinite(reranked.RelativeError!.Value));
    }

    [Fact]
    public void DeadInputColumns_GetZeroWeights()
    {
        using var scope = torch.NewDisposeScope();
        var linear = nn.Linear(10, 4);
        var inputs = QuantizationTestData.CorrelatedFeatures(50, 10, new Generator(18));
        inputs[TensorIndex.Colon, 3] = torch.tensor(0f);
        using var quantizer = Calibrated(linear, inputs);
        var result = quantizer.Quantize(Options("gptq"));
        Assert.Equal(1, result.DeadColumns);
        Assert.Equal(0f, result.Dequantized[TensorIndex.Colon, 3].abs().max().item<float>());
    }

    [Fact]
    public void FewSamples_StillFactorise_ThanksToDampening()
    {
        using var scope = torch.NewDisposeScope();
        var linear = nn.Linear(32, 4);
        using var quantizer = Calibrated(linear, QuantizationTestData.CorrelatedFeatures(3, 32, new Generator(19)));
        var result = quantizer.Quantize(Options("gptq-reorder-dynamic", block: 8));
        Assert.True(double.IsFinite(result.RelativeError!.Value));
    }

    [Fact]
    public void BadUse_IsRejectedWithAClearMessage()
    {
        using var scope = torch.NewDisposeScope();
        using var linear = new GptqLayerQuantizer(nn.Linear(4, 2), "head");
        var none = Assert.Throws<InvalidSpecException>(() => linear.Quantize(Options("gptq")));
        Assert.Equal("layer 'head': method gptq needs calibration inputs, none were added", none.Message);
        linear.AddBatch(torch.randn(5, 4));
        var map = Assert.Throws<InvalidSpecException>(() => linear.Quantize(Options("gptq-reorder"), new int[1, 1]));
        Assert.Equal("layer 'head': an overlap map applies to convolutions only, this is Linear", map.Message);
        var nan = Assert.Throws<ScaleGrowException>(() => linear.AddBatch(torch.full(2, 4, float.NaN)));
        Assert.Equal("layer 'head': calibration input contains NaN or infinity", nan.Message);
        using var conv = new GptqLayerQuantizer(nn.Conv2d(2, 2, 3), "conv");
        conv.AddBatch(torch.randn(1, 2, 5, 5));
        var shape = Assert.Throws<InvalidSpecException>(() => conv.Quantize(Options("gptq-reorder"), new int[5, 5]));
        Assert.Equal("layer 'conv': overlap map is 5x5, the kernel is 3x3", shape.Message);
    }
}

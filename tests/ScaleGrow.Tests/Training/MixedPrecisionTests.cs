using ScaleGrow.Models;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Models.Transformer;
using ScaleGrow.Scaling;
using ScaleGrow.Tests.Scaling;
using ScaleGrow.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Training;

public class MixedPrecisionTests(ITestOutputHelper output)
{
    private static readonly CnnSpec Spec =
        CnnSpecs.Fixed(CnnFamily.ResNet, 10, [1, 1, 0], inputChannels: 1, imageSize: 12, stageWidths: [4, 6, 8]);

    private static CnnModel NewModel(int seed = 3)
    {
        torch.manual_seed(seed);
        return new CnnModel(Spec);
    }

    /// <summary>A fixed set of batches (the same every epoch, so a model can fit them), made lazily.</summary>
    private static IEnumerable<(Tensor X, Tensor Y)> Batches(int count, long seed = 1)
    {
        var generator = new Generator(0).manual_seed(seed);
        for (int i = 0; i < count; i++)
            yield return (torch.randn([16, 1, 12, 12], generator: generator),
                torch.randint(0, 10, [16], generator: generator));
    }

    private static Dictionary<string, Tensor> Snapshot(nn.Module module) =>
        module.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

    private static void AssertBitIdentical(Dictionary<string, Tensor> expected, nn.Module actual)
    {
        foreach (var (name, p) in actual.named_parameters())
        {
            Assert.Equal(expected[name].dtype, p.dtype);
            Assert.True(expected[name].eq(p).all().item<bool>(), $"{name} differs");
        }
    }

    private static MixedPrecision Mixed(CnnModel master, TrainingPrecision precision, LossScaler? scaler = null) =>
        new(master, () => ModelFactory.Create(master.Spec).Module, precision, scaler);

    /// <summary>
    /// <c>mixed: null</c> runs exactly the fp32 loop the trainer had before mixed precision existed (forward, loss,
    /// backward, step — written out here): parameters, running statistics and losses agree to the bit.
    /// </summary>
    [Fact]
    public void WithoutMixedPrecisionTrainingIsBitIdenticalToThePlainFp32Loop()
    {
        using var viaTrainer = NewModel();
        using var byHand = NewModel();
        var options = new TrainingOptions { LearningRate = 0.05 };
        using var optimizerA = new NamedOptimizer(viaTrainer.named_parameters(), options);
        using var optimizerB = new NamedOptimizer(byHand.named_parameters(), options);
        var schedule = new LearningRateSchedule(0.05, 0, 0, 0);

        var losses = new List<double>();
        var metrics = Trainer.TrainEpoch(viaTrainer, optimizerA, schedule, Batches(4), mixed: null,
            onBatch: b => losses.Add(b.Loss));

        byHand.train();
        var lossFunction = Losses.Classification();
        var expectedLosses = new List<double>();
        foreach (var (x, y) in Batches(4))
        {
            using var scope = torch.NewDisposeScope();
            double lr = schedule.At(optimizerB.Step);
            optimizerB.ZeroGrad();
            var batch = lossFunction(byHand.forward(x), y);
            batch.Loss.backward();
            optimizerB.StepWith(lr);
            expectedLosses.Add(batch.Loss.item<float>());
        }

        Assert.Equal(4, metrics.Batches);
        Assert.Equal(expectedLosses, losses);
        AssertBitIdentical(Snapshot(byHand), viaTrainer);
        var buffers = byHand.named_buffers().ToDictionary(b => b.name, b => b.buffer);
        Assert.All(viaTrainer.named_buffers(),
            b => Assert.True(b.buffer.eq(buffers[b.name]).all().item<bool>(), b.name));
    }

    /// <summary>
    /// bf16 on the CPU: the loss on a fixed set of batches falls as fast as in fp32; what the optimizer steps and
    /// keeps (weights, AdamW's moments) is fp32 while the working copy computes in bf16 with fp32 batch norms; the
    /// working copy's running statistics reach the master when the epoch ends, and the master evaluates in fp32 as
    /// before.
    /// </summary>
    [Fact]
    public void Bf16TrainingLowersTheLossAndKeepsMasterWeightsAndOptimizerStateFp32()
    {
        using var model = NewModel();
        var initial = Snapshot(model);
        using var optimizer = new NamedOptimizer(model.named_parameters(),
            new TrainingOptions { Optimizer = OptimizerKind.AdamW, LearningRate = 1e-2 });
        using var mixed = Mixed(model, TrainingPrecision.Bf16);
        var schedule = new LearningRateSchedule(1e-2, 0, 0, 0);
        Assert.Null(mixed.Scaler);

        using var fp32 = NewModel();
        using var fp32Optimizer = new NamedOptimizer(fp32.named_parameters(), optimizer.Options);

        var epochLosses = new List<double>();
        double fp32Loss = double.NaN;
        for (int epoch = 0; epoch < 10; epoch++)
        {
            epochLosses.Add(Trainer.TrainEpoch(model, optimizer, schedule, Batches(3), mixed: mixed).Loss);
            fp32Loss = Trainer.TrainEpoch(fp32, fp32Optimizer, schedule, Batches(3)).Loss;
        }

        string curve = $"bf16 loss went {string.Join(" → ", epochLosses.Select(l => l.ToString("f3")))}; " +
                       $"fp32 to {fp32Loss:f3}";
        output.WriteLine(curve);
        Assert.True(epochLosses[^1] < 0.7 * epochLosses[0], curve);
        Assert.True(Math.Abs(epochLosses[^1] - fp32Loss) < 0.1 * fp32Loss, curve); // tracks the fp32 run
        Assert.NotEqual(fp32Loss, epochLosses[^1]); // and is not secretly the fp32 run
        Assert.Equal(30, optimizer.Step);
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.All(model.named_parameters(),
            p => Assert.False(p.parameter.eq(initial[p.name]).all().item<bool>(), p.name));
        using (var state = optimizer.Export())
        {
            Assert.Equal(2 * model.parameters().Count(), state.Moments.Count); // exp_avg and exp_avg_sq
            Assert.All(state.Moments.Values, m => Assert.Equal(ScalarType.Float32, m.dtype));
        }
        var working = mixed.WorkingCopy.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(ScalarType.BFloat16, working["stem.conv.b1.conv.weight"].dtype);
        Assert.Equal(ScalarType.Float32, working["stem.conv.b1.bn.weight"].dtype);

        var norm = model.modules().OfType<BatchNorm2d>().First();
        Assert.False(norm.running_var!.eq(1).all().item<bool>(), "the master's running statistics never moved");
        var workingBuffers = mixed.WorkingCopy.named_buffers().ToDictionary(b => b.name, b => b.buffer);
        Assert.All(model.named_buffers(),
            b => Assert.True(b.buffer.eq(workingBuffers[b.name]).all().item<bool>(), b.name));

        var evaluation = Trainer.Evaluate(model, Batches(3));
        Assert.Equal(0, evaluation.NonFiniteOutputs);
        Assert.True(evaluation.Accuracy > 0.3, $"eval accuracy {evaluation.Accuracy} on the batches it fitted");
    }

    /// <summary>
    /// fp16 with a loss scale so large that the scaled gradients overflow fp16: the step is skipped — weights,
    /// momentum and gradients untouched — the scale halves, and the schedule's position still advances.
    /// </summary>
    [Fact]
    public void Fp16AnOverflowingStepIsSkippedLeavesParametersUnchangedAndHalvesTheScale()
    {
        using var model = NewModel();
        var initial = Snapshot(model);
        using var optimizer = new NamedOptimizer(model.named_parameters(), new TrainingOptions { LearningRate = 0.05 });
        var scaler = new LossScaler(initialScale: Math.Pow(2, 100));
        using var mixed = Mixed(model, TrainingPrecision.Fp16, scaler);

        var metrics = Trainer.TrainEpoch(model, optimizer, new LearningRateSchedule(0.05, 0, 0, 0), Batches(1),
            mixed: mixed);

        Assert.True(double.IsFinite(metrics.Loss), "the reported loss is the unscaled fp32 loss");
        AssertBitIdentical(initial, model);
        using (var state = optimizer.Export()) Assert.Empty(state.Moments);
        Assert.All(model.parameters(), p => Assert.True(p.grad is null || p.grad.eq(0).all().item<bool>()));
        Assert.Equal(Math.Pow(2, 99), scaler.Scale);
        Assert.Equal(1, scaler.SkippedSteps);
        Assert.Equal(1, optimizer.Step);
    }

    /// <summary>fp16 at a small scale: every step is finite and taken, and the scale doubles every N of them.</summary>
    [Fact]
    public void Fp16TheLossScaleDoublesAfterGrowthIntervalFiniteStepsAndEveryStepIsTaken()
    {
        using var model = NewModel();
        var initial = Snapshot(model);
        using var optimizer = new NamedOptimizer(model.named_parameters(), new TrainingOptions { LearningRate = 0.05 });
        var scaler = new LossScaler(initialScale: 8, growthInterval: 3);
        using var mixed = Mixed(model, TrainingPrecision.Fp16, scaler);

        var metrics = Trainer.TrainEpoch(model, optimizer, new LearningRateSchedule(0.05, 0, 0, 0), Batches(7),
            mixed: mixed);

        Assert.Equal(7, metrics.Batches);
        Assert.Equal(32, scaler.Scale);
        Assert.Equal(1, scaler.FiniteStepsInARow);
        Assert.Equal(0, scaler.SkippedSteps);
        Assert.Equal(7, optimizer.Step);
        Assert.Contains(model.named_parameters(), p => !p.parameter.eq(initial[p.name]).all().item<bool>());
        Assert.All(model.parameters(), p => Assert.True(p.isfinite().all().item<bool>()));
        Assert.Equal(ScalarType.Float16,
            mixed.WorkingCopy.named_parameters().First(p => p.name == "stem.conv.b1.conv.weight").parameter.dtype);
    }

    /// <summary>
    /// One fp16 step at a modest scale updates the master as an fp32 step on the same batch would, up to fp16's
    /// rounding: the gradients were unscaled (a forgotten division by the scale would move the weights 2^10 times
    /// too far).
    /// </summary>
    [Fact]
    public void Fp16GradientsAreUnscaledBeforeTheStep()
    {
        using var fp32 = NewModel();
        using var fp16 = NewModel();
        var initial = Snapshot(fp32);
        var options = new TrainingOptions { LearningRate = 0.05, Momentum = 0 };
        using var optimizer32 = new NamedOptimizer(fp32.named_parameters(), options);
        using var optimizer16 = new NamedOptimizer(fp16.named_parameters(), options);
        using var mixed = Mixed(fp16, TrainingPrecision.Fp16, new LossScaler(initialScale: 1024));
        var schedule = new LearningRateSchedule(0.05, 0, 0, 0);

        Trainer.TrainEpoch(fp32, optimizer32, schedule, Batches(1));
        Trainer.TrainEpoch(fp16, optimizer16, schedule, Batches(1), mixed: mixed);

        var reference = fp32.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in fp16.named_parameters())
        {
            var expectedStep = reference[name] - initial[name];
            var step = p - initial[name];
            double error = (step - expectedStep).abs().max().item<float>();
            double size = expectedStep.abs().max().item<float>();
            Assert.True(error <= 0.05 * size + 1e-5, $"{name}: step off by {error}, the step's size is {size}");
        }
    }

    /// <summary>
    /// A ScaleNet model whose instances run their owner's modules: in bf16, one step moves every master parameter —
    /// the shared ones included, whose gradient sums over the owner and its instances — as an fp32 step on the same
    /// batch does, up to bf16's rounding (a shared weight that took one instance's gradient only would be far off).
    /// </summary>
    [Fact]
    public void Bf16StepsOnSharedScaleNetWeightsMatchAnFp32StepUpToRounding()
    {
        torch.manual_seed(11);
        using var pretrained = new TransformerModel(ScaleNetTestModels.Vit(2));
        var (expanded, _) = ScaleNetExpander.Expand(pretrained, new ScaleNetOptions { Rank = 2 }, seed: 5);
        using var bf16 = expanded.Module;
        ScaleNetTestModels.Randomize(bf16);
        Assert.Contains(((TransformerSpec)expanded.Spec).Layers, l => l.SharesWith is not null);
        using var fp32 = ModelFactory.Create(expanded.Spec).Module;
        using (torch.no_grad())
        {
            var source = bf16.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach (var (name, p) in fp32.named_parameters()) p.copy_(source[name]);
        }
        var initial = Snapshot(fp32);
        var options = new TrainingOptions { LearningRate = 0.1, Momentum = 0, WeightDecay = 0 };
        using var optimizer32 = new NamedOptimizer(fp32.named_parameters(), options);
        using var optimizer16 = new NamedOptimizer(bf16.named_parameters(), options);
        using var mixed = new MixedPrecision(bf16, () => ModelFactory.Create(expanded.Spec).Module,
            TrainingPrecision.Bf16);
        var schedule = new LearningRateSchedule(0.1, 0, 0, 0);
        IEnumerable<(Tensor, Tensor)> Batch()
        {
            var generator = new Generator(0).manual_seed(4);
            yield return (torch.randn([16, 1, 8, 8], generator: generator),
                torch.randint(0, 5, [16], generator: generator));
        }

        Trainer.TrainEpoch(fp32, optimizer32, schedule, Batch());
        Trainer.TrainEpoch(bf16, optimizer16, schedule, Batch(), mixed: mixed);

        var reference = fp32.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        double largest = reference.Max(p => (p.Value - initial[p.Key]).abs().max().item<float>());
        foreach (var (name, p) in bf16.named_parameters())
        {
            var expectedStep = reference[name] - initial[name];
            double error = (p - initial[name] - expectedStep).abs().max().item<float>();
            double size = expectedStep.abs().max().item<float>();
            output.WriteLine($"{name}: step {size:g3}, off by {error:g3}");
            // 10 % of the step, plus rounding noise where the exact gradient is 0 (attention's key bias: softmax
            // ignores a shift that is the same for every key).
            Assert.True(error <= 0.1 * size + 0.01 * largest,
                $"{name}: step off by {error}, the step's size is {size}");
        }
    }

    /// <summary>
    /// Weights frozen in the master (a scale run's <c>trainAdaptersOnly</c> freezes the shared ones) get no gradient
    /// in the working copy and do not move; the others train.
    /// </summary>
    [Fact]
    public void WeightsFrozenInTheMasterStayFrozenInBf16()
    {
        using var model = NewModel();
        var initial = Snapshot(model);
        var frozen = model.named_parameters().Where(p => p.name.StartsWith("stem.")).ToList();
        Assert.NotEmpty(frozen);
        foreach (var (_, p) in frozen) p.requires_grad = false;
        using var optimizer = new NamedOptimizer(model.named_parameters(), new TrainingOptions { LearningRate = 0.05 });
        using var mixed = Mixed(model, TrainingPrecision.Bf16);

        Trainer.TrainEpoch(model, optimizer, new LearningRateSchedule(0.05, 0, 0, 0), Batches(2), mixed: mixed);

        var working = mixed.WorkingCopy.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in model.named_parameters())
        {
            bool isFrozen = name.StartsWith("stem.");
            Assert.Equal(!isFrozen, working[name].requires_grad);
            Assert.Equal(isFrozen, p.eq(initial[name]).all().item<bool>());
            if (isFrozen) Assert.Null(working[name].grad);
        }
    }

    /// <summary>
    /// The mixed path (fp16, so the scaler's checks run too) leaves nothing behind per step: casts, master gradients
    /// made on the first step, finiteness flags all live in the step's dispose scope.
    /// </summary>
    [Fact]
    public void LiveTensorCountStaysFlatOverManyMixedPrecisionSteps()
    {
        using var model = NewModel();
        using var optimizer = new NamedOptimizer(model.named_parameters(), new TrainingOptions { LearningRate = 0.05 });
        using var mixed = Mixed(model, TrainingPrecision.Fp16, new LossScaler(initialScale: 1024));
        var schedule = new LearningRateSchedule(0.05, 0, 0, 0);
        Trainer.TrainEpoch(model, optimizer, schedule, Batches(2), mixed: mixed); // makes gradients and momenta
        long live = LiveTensors();
        for (int epoch = 0; epoch < 3; epoch++)
        {
            Trainer.TrainEpoch(model, optimizer, schedule, Batches(5, 10 + epoch), mixed: mixed);
            Assert.Equal(live, LiveTensors());
        }
    }

    private static long LiveTensors() => TrainerTests.LiveTensors();

    /// <summary>A custom loss that is not fp32 (here fp64) is read by casting it (item&lt;float&gt; threw).</summary>
    [Fact]
    public void ALossThatIsNotFp32IsReadByCastingIt()
    {
        using var model = NewModel();
        using var optimizer = new NamedOptimizer(model.named_parameters(), new TrainingOptions { LearningRate = 0.05 });
        var classification = Losses.Classification();
        LossFunction fp64 = (output, y) =>
        {
            var b = classification(output, y);
            return b with { Loss = b.Loss.to(ScalarType.Float64) };
        };

        var metrics = Trainer.TrainEpoch(model, optimizer, new LearningRateSchedule(0.05, 0, 0, 0), Batches(2),
            loss: fp64);
        var evaluation = Trainer.Evaluate(model, Batches(2), loss: fp64);

        Assert.InRange(metrics.Loss, 0.5, 10);
        Assert.InRange(evaluation.Loss, 0.5, 10);
    }

    [Fact]
    public void MixedPrecisionRefusesFp32AScalerForBf16AndAWorkingCopyOfAnotherArchitecture()
    {
        using var model = NewModel();
        Assert.Throws<ArgumentException>(() => Mixed(model, TrainingPrecision.Fp32));
        Assert.Throws<ArgumentException>(() => Mixed(model, TrainingPrecision.Bf16, new LossScaler()));
        var other = CnnSpecs.Fixed(CnnFamily.ResNet, 10, [1, 0, 0], inputChannels: 1, imageSize: 12,
            stageWidths: [4, 6, 8]);
        var e = Assert.Throws<ArgumentException>(() =>
            new MixedPrecision(model, () => new CnnModel(other), TrainingPrecision.Bf16));
        Assert.Contains("missing", e.Message);
        Assert.Throws<ArgumentException>(() => new MixedPrecision(model, () => model, TrainingPrecision.Bf16));
        Assert.NotEmpty(model.parameters()); // refusing the master as its own working copy left it intact
        using var mixed = Mixed(model, TrainingPrecision.Bf16);
        using var stranger = NewModel();
        using var optimizer = new NamedOptimizer(stranger.named_parameters(), new TrainingOptions());
        Assert.Throws<ArgumentException>(() => Trainer.TrainEpoch(stranger, optimizer,
            new LearningRateSchedule(0.1, 0, 0, 0), Batches(1), mixed: mixed));
    }
}

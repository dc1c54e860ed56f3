using ScaleGrow.Models;
using ScaleGrow.Models.Cnn;
using ScaleGrow.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Training;

public class TrainerTests
{
    /// <summary>Batches made lazily, as the data loaders make them: inside the trainer's per-step dispose scope.</summary>
    private static IEnumerable<(Tensor X, Tensor Y)> Batches(int count, long seed)
    {
        var generator = new Generator(0).manual_seed(seed);
        for (int i = 0; i < count; i++)
            yield return (torch.randn([16, 1, 12, 12], generator: generator),
                torch.randint(0, 10, [16], generator: generator));
    }

    /// <summary>Live TorchSharp tensors, after the finalizers of any garbage (tensors made outside a scope) ran.</summary>
    internal static long LiveTensors()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return Tensor.TotalCount;
    }

    /// <summary>
    /// "Precise BN": the running statistics become the plain average over the given batches (here: the stem norm's
    /// mean is the mean of its convolution's output over every sample), whatever they were before; momentum and the
    /// train/eval mode are put back, and no parameter moves. A model without batch norms runs nothing.
    /// </summary>
    [Fact]
    public void RecalibratingNormsReplacesStaleRunningStatisticsByTheAverageOverTheBatches()
    {
        torch.manual_seed(5);
        using var model = new CnnModel(CnnSpecs.Fixed(CnnFamily.Vgg, 10, [1, 0, 0], inputChannels: 1, imageSize: 12,
            stageWidths: [4, 6, 8]));
        ScaleGrow.Tests.Models.CnnFusionTests.RandomizeNorms(model, channels: 1, size: 12);
        model.eval();
        using var scope = torch.NewDisposeScope();
        var parameters = model.parameters().Select(p => p.detach().clone()).ToList();
        var xs = Batches(4, 9).Select(b => b.X).ToList();
        var stem = (ConvUnit)model.Stem.Units[0];
        var norm = stem.Branches[0].Norm;
        Tensor expected;
        using (torch.no_grad())
            expected = torch.cat(xs.Select(x => stem.Branches[0].Conv!.forward(x)).ToArray()).mean([0, 2, 3]);
        Assert.True((norm.running_mean! - expected).abs().max().item<float>() > 1e-2, "statistics not stale to begin with");

        Assert.True(Trainer.RecalibrateNorms(model, xs.Select(x => (x, torch.zeros(16, dtype: ScalarType.Int64)))));

        double diff = (norm.running_mean! - expected).abs().max().item<float>();
        Assert.True(diff < 1e-4, $"stem running mean is {diff} off the average over the batches");
        Assert.Equal(0.1, norm.momentum!.Value, 9);
        Assert.False(model.training);
        Assert.All(model.parameters().Zip(parameters), p => Assert.True(p.First.eq(p.Second).all().item<bool>()));
        using var linear = nn.Linear(4, 2);
        Assert.False(Trainer.RecalibrateNorms(linear, []));
    }

    [Fact]
    public void LiveTensorCountStaysFlatOverManyStepsOfTrainingAndEvaluation()
    {
        torch.manual_seed(1);
        var spec = CnnSpecs.Fixed(CnnFamily.ResNet, 10, [1, 1, 0], imageSize: 12, stageWidths: [8, 8, 8]);
        using var model = new CnnModel(spec);
        var optimizer = new NamedOptimizer(model.named_parameters(), new TrainingOptions
        {
            Optimizer = OptimizerKind.AdamW, LearningRate = 1e-3,
        });
        var schedule = new LearningRateSchedule(1e-3, 0, 0, 0);
        // The first epoch creates the optimizer state; after it, nothing may accumulate.
        Trainer.TrainEpoch(model, optimizer, schedule, Batches(5, 1));
        Trainer.Evaluate(model, Batches(3, 2));
        long live = LiveTensors();
        for (int epoch = 0; epoch < 4; epoch++)
        {
            var metrics = Trainer.TrainEpoch(model, optimizer, schedule, Batches(50, 10 + epoch));
            Assert.Equal(50, metrics.Batches);
            Trainer.Evaluate(model, Batches(10, 100 + epoch));
            Assert.Equal(live, LiveTensors());
        }
    }

    [Fact]
    public void ANonFiniteLossStopsTrainingWithAnErrorThatNamesTheStep()
    {
        torch.manual_seed(1);
        var spec = CnnSpecs.Fixed(CnnFamily.Vgg, 10, [1, 0, 0], imageSize: 12, stageWidths: [4, 4, 4]);
        using var model = new CnnModel(spec);
        var optimizer = new NamedOptimizer(model.named_parameters(), new TrainingOptions { LearningRate = 0.1 });
        var nan = Batches(3, 1).Select(b => (b.X * double.NaN, b.Y));
        var e = Assert.Throws<ScaleGrowException>(() =>
            Trainer.TrainEpoch(model, optimizer, new LearningRateSchedule(0.1, 0, 0, 0), nan));
        Assert.Contains("diverged", e.Message);
        Assert.Contains("step", e.Message);
    }
}

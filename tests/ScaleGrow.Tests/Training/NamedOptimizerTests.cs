using ScaleGrow.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Training;

public class NamedOptimizerTests
{
    private static (nn.Module<Tensor, Tensor> A, nn.Module<Tensor, Tensor> B) TwinModels()
    {
        torch.manual_seed(3);
        var a = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3));
        var b = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3));
        b.load_state_dict(a.state_dict());
        return (a, b);
    }

    private static void Run(nn.Module<Tensor, Tensor> model, Action zero, Action step, int steps)
    {
        torch.manual_seed(11);
        for (int i = 0; i < steps; i++)
        {
            using var scope = torch.NewDisposeScope();
            zero();
            var x = torch.randn(8, 6);
            var loss = model.forward(x).pow(2).mean();
            loss.backward();
            step();
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SgdMatchesTorchSgd(bool nesterov)
    {
        var (a, b) = TwinModels();
        var ours = new NamedOptimizer(a.named_parameters(),
            new TrainingOptions { LearningRate = 0.05, Momentum = 0.9, Nesterov = nesterov, WeightDecay = 1e-3, DecayNormsAndBiases = true });
        var reference = torch.optim.SGD(b.parameters(), 0.05, momentum: 0.9, nesterov: nesterov, weight_decay: 1e-3);
        Run(a, ours.ZeroGrad, () => ours.StepWith(0.05), 20);
        Run(b, reference.zero_grad, () => reference.step(), 20);
        AssertSameParameters(a, b);
    }

    [Fact]
    public void AdamWMatchesTorchAdamW()
    {
        var (a, b) = TwinModels();
        var ours = new NamedOptimizer(a.named_parameters(), new TrainingOptions
        { Optimizer = OptimizerKind.AdamW, LearningRate = 0.01, WeightDecay = 0.05, DecayNormsAndBiases = true });
        var reference = torch.optim.AdamW(b.parameters(), 0.01, weight_decay: 0.05);
        Run(a, ours.ZeroGrad, () => ours.StepWith(0.01), 20);
        Run(b, reference.zero_grad, () => reference.step(), 20);
        AssertSameParameters(a, b);
    }

    [Fact]
    public void ExportImportContinuesExactlyAsIfUninterrupted()
    {
        var (a, b) = TwinModels();
        var options = new TrainingOptions { Optimizer = OptimizerKind.AdamW, LearningRate = 0.01 };
        var first = new NamedOptimizer(a.named_parameters(), options);
        Run(a, first.ZeroGrad, () => first.StepWith(0.01), 5);
        using var state = first.Export();
        var resumed = new NamedOptimizer(a.named_parameters(), options);
        resumed.Import(state);
        Assert.Equal(5, resumed.Step);
        var straight = new NamedOptimizer(b.named_parameters(), options);
        Run(b, straight.ZeroGrad, () => straight.StepWith(0.01), 5);
        Run(a, resumed.ZeroGrad, () => resumed.StepWith(0.01), 5);
        Run(b, straight.ZeroGrad, () => straight.StepWith(0.01), 5);
        AssertSameParameters(a, b);
    }

    [Fact]
    public void MigrationKeepsOldMomentsBitExactAndStartsNewOnesAtZero()
    {
        var (a, _) = TwinModels();
        var sgd = new NamedOptimizer(a.named_parameters(), new TrainingOptions());
        Run(a, sgd.ZeroGrad, () => sgd.StepWith(0.1), 3);
        using var old = sgd.Export();
        // A "grown" parameter set: the old ones plus a new one, and one widened tensor.
        var grownParams = a.named_parameters().Select(p => (p.name, p.parameter)).ToList();
        var extra = new Parameter(torch.randn(4, 4));
        grownParams.Add(("new.weight", extra));
        var widened = new Parameter(torch.randn(7, 6));
        grownParams[0] = ("0.weight", widened);
        using var migrated = OptimizerMigration.Migrate(old, grownParams, OptimizerMigrationStrategy.Inherit);
        var kept = migrated.Moments["2.weight::momentum_buffer"];
        Assert.True(kept.data<float>().ToArray().SequenceEqual(old.Moments["2.weight::momentum_buffer"].data<float>().ToArray()));
        Assert.False(migrated.Moments.ContainsKey("new.weight::momentum_buffer"));
        var grown = migrated.Moments["0.weight::momentum_buffer"];
        Assert.Equal(new long[] { 7, 6 }, grown.shape);
        Assert.True(grown[..5, ..].eq(old.Moments["0.weight::momentum_buffer"]).all().item<bool>());
        Assert.Equal(0, grown[5.., ..].abs().sum().item<float>());
        Assert.Equal(old.Scalars.Step, migrated.Scalars.Step);
        using var fresh = OptimizerMigration.Migrate(old, grownParams, OptimizerMigrationStrategy.Fresh);
        Assert.Empty(fresh.Moments);
        Assert.Equal(old.Scalars.Step, fresh.Scalars.Step);
    }

    [Fact]
    public void MigrationStartsRewrittenParametersAtZeroAndKeepsTheRest()
    {
        var (a, _) = TwinModels();
        var sgd = new NamedOptimizer(a.named_parameters(), new TrainingOptions());
        Run(a, sgd.ZeroGrad, () => sgd.StepWith(0.1), 3);
        using var old = sgd.Export();
        var parameters = a.named_parameters().Select(p => (p.name, p.parameter)).ToList();
        using var migrated = OptimizerMigration.Migrate(old, parameters, OptimizerMigrationStrategy.Inherit,
            reset: ["0.weight"]);
        Assert.False(migrated.Moments.ContainsKey("0.weight::momentum_buffer"));
        Assert.True(migrated.Moments["2.weight::momentum_buffer"].eq(old.Moments["2.weight::momentum_buffer"]).all().item<bool>());
        Assert.Equal(old.Moments.Count - 1, migrated.Moments.Count);
    }

    [Fact]
    public void ImportRejectsMomentsThatDoNotMatch()
    {
        var (a, _) = TwinModels();
        var sgd = new NamedOptimizer(a.named_parameters(), new TrainingOptions());
        var bad = new NamedOptimizerState(new OptimizerScalars { Kind = OptimizerKind.Sgd, Step = 1, Options = new() },
            new Dictionary<string, Tensor> { ["0.weight::momentum_buffer"] = torch.zeros(2, 2) });
        var e = Assert.Throws<CheckpointFormatException>(() => sgd.Import(bad));
        Assert.Contains("0.weight::momentum_buffer", e.Message);
        var unknown = new NamedOptimizerState(bad.Scalars,
            new Dictionary<string, Tensor> { ["nope::momentum_buffer"] = torch.zeros(2, 2) });
        Assert.Contains("unknown parameter 'nope'", Assert.Throws<CheckpointFormatException>(() => sgd.Import(unknown)).Message);
    }

    private static void AssertSameParameters(nn.Module a, nn.Module b)
    {
        var pb = b.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in a.named_parameters())
        {
            double diff = (p - pb[name]).abs().max().item<float>();
            Assert.True(diff < 1e-6, $"{name} differs by {diff}");
        }
    }
}

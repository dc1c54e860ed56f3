using ScaleGrow.Growth;
using ScaleGrow.Models.Cnn;

namespace ScaleGrow.Tests.Growth;

public class StoppingRulesTests
{
    private static GrowthProgress Feed(GrowthProgress p, StoppingOptions o, params double[] accuracies)
    {
        foreach (var a in accuracies) p = StoppingRules.RecordEpoch(p, a, o);
        return p;
    }

    [Fact]
    public void AutomaticRuleStopsAfterMoreShortfallsThanTheTolerance()
    {
        var o = new StoppingOptions { EmaBeta = 0 }; // EMA = last accuracy, to compute by hand
        var p = Feed(new GrowthProgress(), o, 0.50);
        p = StoppingRules.AtGrowthPoint(p, o, 0);              // first growth point: nothing to compare with
        Assert.Null(p.StopReason);
        p = StoppingRules.AtGrowthPoint(Feed(p, o, 0.60), o, 0); // +10 points
        Assert.Equal(0, p.Shortfalls);
        p = StoppingRules.AtGrowthPoint(Feed(p, o, 0.62), o, 0); // +2 points < 3: shortfall 1 (tolerated)
        Assert.Equal(1, p.Shortfalls);
        Assert.Null(p.StopReason);
        p = StoppingRules.AtGrowthPoint(Feed(p, o, 0.70), o, 0); // +8
        Assert.Null(p.StopReason);
        p = StoppingRules.AtGrowthPoint(Feed(p, o, 0.71), o, 0); // +1: shortfall 2 > tolerance 1
        Assert.NotNull(p.StopReason);
        Assert.Contains("automatic", p.StopReason);
    }

    [Fact]
    public void TheFirstGrowthPointIsTestedAgainstTheFirstEpoch()
    {
        var o = new StoppingOptions { EmaBeta = 0, Threshold = 0.01, Tolerance = 0 };
        // Two epochs before the first growth point, and no gain between them: growth stops before any growth.
        var flat = StoppingRules.AtGrowthPoint(Feed(new GrowthProgress(), o, 0.70, 0.705), o, 0);
        Assert.Contains("automatic", flat.StopReason);
        var rising = StoppingRules.AtGrowthPoint(Feed(new GrowthProgress(), o, 0.70, 0.75), o, 0);
        Assert.Null(rising.StopReason);
        // A one-epoch interval has nothing to compare at its first point.
        Assert.Null(StoppingRules.AtGrowthPoint(Feed(new GrowthProgress(), o, 0.70), o, 0).StopReason);
    }

    [Fact]
    public void ATaskAlreadyServedStopsAtOnce()
    {
        var o = new StoppingOptions { EmaBeta = 0, Threshold = 0.01, Tolerance = 3 };
        var p = StoppingRules.AtGrowthPoint(Feed(new GrowthProgress(), o, 0.995), o, 0);
        Assert.Contains("less than the threshold", p.StopReason);
        Assert.Null(StoppingRules.AtGrowthPoint(Feed(new GrowthProgress(), o, 0.98), o, 0).StopReason);
    }

    [Fact]
    public void EmaSmoothsTheDipAfterAGrowth()
    {
        var o = new StoppingOptions { EmaBeta = 0.5 };
        var p = Feed(new GrowthProgress(), o, 0.8, 0.4);
        Assert.Equal(0.6, p.Ema!.Value, 9);
        Assert.Equal(2, p.Epoch);
    }

    [Fact]
    public void WallClockBudgetStops()
    {
        var o = new StoppingOptions { WallClockSeconds = 10 };
        Assert.Null(StoppingRules.AtGrowthPoint(new GrowthProgress(), o, 9).StopReason);
        Assert.Contains("wall-clock", StoppingRules.AtGrowthPoint(new GrowthProgress(), o, 10).StopReason);
    }

    [Fact]
    public void TargetArchitectureIsParsedAndImpossibleTargetsAreRejected()
    {
        var seed = CnnSpecs.Seed(CnnFamily.Vgg, 10);
        Assert.Equal(new[] { 2, 2, 2 }, StoppingRules.ParseTarget("VGG-2-2-2", seed));
        Assert.Contains("ResNet", Assert.Throws<InvalidSpecException>(() => StoppingRules.ParseTarget("ResNet-2-2-2", seed)).Message);
        Assert.Contains("4 blocks", Assert.Throws<InvalidSpecException>(() => StoppingRules.ParseTarget("VGG-1-2-2-2", seed)).Message);
        Assert.Throws<InvalidSpecException>(() => StoppingRules.ParseTarget("VGG-x-2-2", seed));
        var deeper = CnnSpecs.Fixed(CnnFamily.Vgg, 10, [3, 0, 0]);
        Assert.Contains("impossible", Assert.Throws<InvalidSpecException>(() => StoppingRules.ParseTarget("VGG-2-2-2", deeper)).Message);
        Assert.Equal(new[] { 1, 1, 1 }, StoppingRules.ParseTarget("bottleneck-resnet-1-1-1", CnnSpecs.Seed(CnnFamily.Bottleneck, 10)));
    }

    [Fact]
    public void PlannerStopsAtTheTargetAndAtTheBudget()
    {
        var spec = CnnSpecs.Fixed(CnnFamily.Vgg, 10, [1, 1, 1]);
        var scores = new ImportanceReport([new(0, 1), new(1, 2), new(2, 3)],
            spec.AllLayers().Select(l => new LayerImportance(l.Layer.Id, l.Role, l.Index, 1)).ToList());
        var atTarget = GrowthPlanner.Decide(spec, scores, new GrowthProgress(),
            new GrowthOptions { Stopping = new StoppingOptions { TargetArch = "VGG-1-1-1" } }, 1);
        Assert.Contains("target", atTarget.StopReason);
        var seedStats = ScaleGrow.Models.ModelStats.Of(spec);
        var overBudget = GrowthPlanner.Decide(spec, scores, new GrowthProgress { Growths = 1 },
            new GrowthOptions { Stopping = new StoppingOptions { ParameterBudget = seedStats.ParametersFused + 10 } }, 1);
        Assert.Contains("budget", overBudget.StopReason);
        var grows = GrowthPlanner.Decide(spec, scores, new GrowthProgress { Growths = 1 }, new GrowthOptions(), 1);
        Assert.Null(grows.StopReason);
        Assert.Equal(GrowthKind.Depth, grows.Action!.Kind); // pattern "wdd": growth #1 is depth
        Assert.Equal(2, grows.Action.Block);                // largest block score
        Assert.Throws<InvalidSpecException>(() => StoppingRules.CheckBudgetAgainstSeed(CnnSpecs.Seed(CnnFamily.Vgg, 10), 1000));
    }

    [Fact]
    public void DecisionsAreDeterministicForTheSameSeedAndStep()
    {
        var spec = CnnSpecs.Fixed(CnnFamily.ResNet, 10, [1, 2, 1]);
        var scores = new ImportanceReport([new(0, 1), new(1, 2), new(2, 3)],
            spec.AllLayers().Select((l, i) => new LayerImportance(l.Layer.Id, l.Role, l.Index, i * 0.1)).ToList());
        var a = GrowthPlanner.Decide(spec, scores, new GrowthProgress(), new GrowthOptions(), 7);
        var b = GrowthPlanner.Decide(spec, scores, new GrowthProgress(), new GrowthOptions(), 7);
        Assert.Equal(a.Spec!.ToJson(), b.Spec!.ToJson());
        Assert.Equal(GrowthKind.Width, a.Action!.Kind);
    }
}

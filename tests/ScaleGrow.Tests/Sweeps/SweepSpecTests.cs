using ScaleGrow.Growth;
using ScaleGrow.Sweeps;
using ScaleGrow.Tests.Orchestration;

namespace ScaleGrow.Tests.Sweeps;

/// <summary>A sweep spec is validated whole — every axis and every trial — before any trial starts; each bad input
/// is one error that names the axis.</summary>
public class SweepSpecTests
{
    private static SweepSpec Parse(string axes, string extra = "") =>
        SweepSpec.Parse(OrchestrationTestKit.TinySweep(axes, extra: extra), "s.json");

    private static string Error(string axes, string extra = "") =>
        Assert.Throws<InvalidSpecException>(() => Parse(axes, extra)).Message;

    [Fact]
    public void AGridCombinesEveryAxisWithTheLastVaryingFastestAndSetsEachValueAtItsPath()
    {
        var spec = Parse("""
            "growth.depthPlacement": ["greedy", "sequential"], "seed": [1, 2, 3],
            "model.stageWidths": [[8, 12, 16], [12, 16, 24]]
            """);
        Assert.Equal(12, spec.TrialCount);
        var t7 = spec.TrialSpec(7, out var values);
        // 7 = 1·6 + 0·2 + 1: sequential, seed 1, the second widths.
        Assert.Equal(DepthPlacement.Sequential, t7.Growth.DepthPlacement);
        Assert.Equal(1, t7.Seed);
        Assert.Equal([12, 16, 24], t7.Model.StageWidths!);
        Assert.Equal(400, t7.Data.TrainLimit); // the base's other fields are kept
        Assert.Equal("growth.depthPlacement=\"sequential\", model.stageWidths=[12,16,24]",
            SweepSpec.ConfigurationOf(values));
    }

    [Fact]
    public void RandomModeSamplesTheSameTrialsFromTheSameSamplerSeed()
    {
        string axes = """ "training.learningRate": [0.01, 0.03, 0.1, 0.3], "seed": [1, 2, 3, 4, 5] """;
        var a = Parse(axes, "\"mode\": \"random\", \"trials\": 6, \"samplerSeed\": 7");
        var b = Parse(axes, "\"mode\": \"random\", \"trials\": 6, \"samplerSeed\": 7");
        var c = Parse(axes, "\"mode\": \"random\", \"trials\": 6, \"samplerSeed\": 8");
        Assert.Equal(6, a.TrialCount);
        var draws = (SweepSpec s) => Enumerable.Range(0, 6).Select(i => string.Join(",", s.ValueIndices(i))).ToList();
        Assert.Equal(draws(a), draws(b));
        Assert.NotEqual(draws(a), draws(c));
    }

    [Fact]
    public void BadAxesAreOneErrorNamingTheAxisBeforeAnythingStarts()
    {
        Assert.Contains("axis 'growth.depthPlacment': unknown field 'depthPlacment' in 'growth'",
            Error(""" "growth.depthPlacment": ["greedy"] """));
        Assert.Contains("axis 'seed': value \"abc\" is not valid there: expected an integer at seed",
            Error(""" "seed": ["abc"] """));
        Assert.Contains("axis 'training.learningRate': value -1 is not valid there: training: learningRate",
            Error(""" "training.learningRate": [-1] """));
        Assert.Contains("axis 'seed' is empty", Error(""" "seed": [] """));
        Assert.Contains("axis 'model.stageWidths.x': 'model.stageWidths' is a list",
            Error(""" "model.stageWidths.x": [1] """));
        Assert.Contains("axis 'growth.depthPlacement': value \"first\" is not valid there: growth: depthPlacement 'first' applies to Transformers",
            Error(""" "growth.depthPlacement": ["first"] """));
        var tooBig = Error($""" "seed": [{string.Join(",", Enumerable.Range(1, 100))}], "training.learningRate": [{string.Join(",", Enumerable.Range(1, 11).Select(i => i / 100.0))}] """);
        Assert.Contains("the grid has 1,100 trials (seed: 100 × training.learningRate: 11), more than the limit of 1,000", tooBig);
        Assert.Contains("parallel (the concurrency limit) must be at least 1, got 0",
            Error(""" "seed": [1] """, "\"parallel\": 0"));
        Assert.Contains("axes is empty", Error(""));
        Assert.Contains("unknown sweep field 'axis'", Error(""" "seed": [1] """, "\"axis\": {}"));
        Assert.All(new[] { tooBig }, m => Assert.DoesNotContain('\n', m));
    }

    [Fact]
    public void AshaStopsATrialInTheBottomFractionOfThoseThatReachedTheRungOnceEnoughHave()
    {
        var asha = new AshaPruner(new EarlyStoppingOptions { Rungs = [1, 2], BottomFraction = 0.5, MinTrialsAtRung = 3 });
        Assert.Null(asha.Observe("a", [0.60, 0.70]));
        Assert.Null(asha.Observe("b", [0.50]));              // 2 at rung 1: too few to judge
        Assert.Contains("rung epoch 1", asha.Observe("c", [0.10])); // bottom 1 of 3
        Assert.Null(asha.Observe("d", [0.65]));              // top half of 4
        Assert.Contains("bottom 2 of the 5", asha.Observe("e", [0.10]) ?? "x", StringComparison.Ordinal);
        Assert.Null(asha.Observe("b", [0.50, 0.69]));        // rung 2: 2 trials, too few
    }
}

/// <summary>bench/sweeps holds the comparisons of bench/RESULTS.md as sweeps: each must be valid as it stands.</summary>
public class BenchSweepsTests
{
    public static TheoryData<string> Files() => new(Directory.GetFiles(
        Path.Combine(ScaleGrow.Tests.Infrastructure.RepositoryRoot.Find(), "bench", "sweeps"), "*.json")
        .Select(Path.GetFileName)!);

    [Theory]
    [MemberData(nameof(Files))]
    public void EveryBenchSweepIsValidAndNamesItsCommand(string file)
    {
        string path = Path.Combine(ScaleGrow.Tests.Infrastructure.RepositoryRoot.Find(), "bench", "sweeps", file);
        string text = File.ReadAllText(path);
        var spec = SweepSpec.Parse(text, path);
        Assert.True(spec.TrialCount >= 1);
        Assert.Contains($"./scalegrow sweep --spec bench/sweeps/{file}", text);
    }

    [Fact]
    public void TheAblationSweepReproducesTheBenchsVariantsAsMergePatches()
    {
        var spec = SweepSpec.Parse(File.ReadAllText(Path.Combine(ScaleGrow.Tests.Infrastructure.RepositoryRoot.Find(),
            "bench", "sweeps", "cnn-ablations.json")), "cnn-ablations.json");
        Assert.Equal(18, spec.TrialCount);
        var baseline = spec.TrialSpec(0, out _);
        Assert.Equal(10000, baseline.Data.TrainLimit);
        Assert.Equal("VGG-2-2-2", baseline.Growth.Stopping.TargetArch);
        Assert.Equal(DepthPlacement.GreedyExcludeLast, baseline.Growth.DepthPlacement);
        Assert.True(baseline.Growth.Init.PreserveFunction);
        var zeros = spec.TrialSpec(14, out _); // variant 7 (init: zeros), seed 1
        Assert.Equal(ScaleGrow.Growth.InitStrategy.Zeros, zeros.Growth.Init.Strategy);
        Assert.False(zeros.Growth.Init.PreserveFunction);
        Assert.Equal(DepthPlacement.GreedyExcludeLast, zeros.Growth.DepthPlacement); // the rest of growth is kept
        Assert.Equal(12, zeros.Growth.MaxEpochs);
        var baselines = SweepSpec.Parse(File.ReadAllText(Path.Combine(ScaleGrow.Tests.Infrastructure.RepositoryRoot.Find(),
            "bench", "sweeps", "cnn-vs-baselines.json")), "cnn-vs-baselines.json");
        var vgg11 = baselines.TrialSpec(4, out _);
        Assert.Equal((ScaleGrow.Runs.RunKind.Train, "vgg11"), (vgg11.Kind, vgg11.Model.Baseline));
    }
}

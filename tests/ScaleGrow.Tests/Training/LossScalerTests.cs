using ScaleGrow.Training;

namespace ScaleGrow.Tests.Training;

public class LossScalerTests
{
    [Fact]
    public void DefaultsAreThePapersTwoToTheSixteenDoublingEvery2000FiniteSteps()
    {
        var scaler = new LossScaler();
        Assert.Equal(65536, scaler.Scale);
        for (int i = 0; i < 1999; i++) Assert.True(scaler.Update(gradientsFinite: true, step: i));
        Assert.Equal(65536, scaler.Scale);
        Assert.True(scaler.Update(gradientsFinite: true, step: 1999));
        Assert.Equal(131072, scaler.Scale);
        Assert.Equal(0, scaler.FiniteStepsInARow);
    }

    [Fact]
    public void AnOverflowSkipsTheStepHalvesTheScaleAndRestartsTheCountOfFiniteSteps()
    {
        var scaler = new LossScaler(initialScale: 16, growthInterval: 3);
        Assert.True(scaler.Update(true, 0));
        Assert.True(scaler.Update(true, 1));
        Assert.False(scaler.Update(false, 2));
        Assert.Equal(8, scaler.Scale);
        Assert.Equal(0, scaler.FiniteStepsInARow);
        Assert.Equal(1, scaler.SkippedSteps);
        Assert.True(scaler.Update(true, 3));
        Assert.True(scaler.Update(true, 4));
        Assert.Equal(8, scaler.Scale); // two finite steps since the overflow, not four
        Assert.True(scaler.Update(true, 5));
        Assert.Equal(16, scaler.Scale);
    }

    [Fact]
    public void TheScaleNeverDropsBelowTheMinimumAndAnOverflowThereIsAnErrorNamingTheStep()
    {
        var scaler = new LossScaler(initialScale: 3, minScale: 1);
        Assert.False(scaler.Update(false, 0));
        Assert.Equal(1.5, scaler.Scale);
        Assert.False(scaler.Update(false, 1));
        Assert.Equal(1, scaler.Scale);
        var e = Assert.Throws<ScaleGrowException>(() => scaler.Update(false, 7));
        Assert.Contains("step 7", e.Message);
        Assert.Contains("bf16", e.Message);
    }

    [Theory]
    [InlineData(0.5, 2000, 1)]
    [InlineData(double.PositiveInfinity, 2000, 1)]
    [InlineData(65536, 0, 1)]
    [InlineData(65536, 2000, 0)]
    public void BadSettingsAreRefused(double initialScale, int growthInterval, double minScale) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new LossScaler(initialScale, growthInterval, minScale));
}

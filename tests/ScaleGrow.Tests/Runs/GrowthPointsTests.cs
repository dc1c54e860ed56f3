using ScaleGrow.Runs;

namespace ScaleGrow.Tests.Runs;

/// <summary>Where the growth points inside an epoch are (<c>growth.intervalsPerEpoch</c>), as pure arithmetic.</summary>
public sealed class GrowthPointsTests
{
    [Theory]
    // 10 batches in 3 parts end at batches 3, 6 and 10 (the epoch's end: the next epoch, part 0).
    [InlineData(0, 0, 0, 1)]
    [InlineData(0, 1, 0, 1)]
    [InlineData(0, 3, 0, 2)]
    [InlineData(0, 5, 0, 2)]
    [InlineData(0, 6, 1, 0)]
    [InlineData(0, 9, 1, 0)]
    [InlineData(4, 0, 4, 1)]
    public void TheNextPointIsTheFirstPartBoundaryAfterThePosition(int epoch, int batch, int nextEpoch, int nextPart)
    {
        Assert.Equal((nextEpoch, nextPart), GrowthPoints.Next(new TrainingPosition(epoch, batch), 3, 10));
        Assert.True(GrowthPoints.Before(new TrainingPosition(epoch, batch), nextEpoch, nextPart, 3, 10));
    }

    [Fact]
    public void PointsSplitTheEpochAndOnlyThoseInsideItCountAsInsidePoints()
    {
        Assert.Equal([3, 6, 10], Enumerable.Range(1, 3).Select(k => GrowthPoints.BatchOf(k, 3, 10)));
        Assert.Equal([3, 6], Enumerable.Range(1, 9).Where(b => GrowthPoints.IsInsideEpochPoint(new TrainingPosition(2, b), 3, 10)));
        Assert.False(GrowthPoints.IsInsideEpochPoint(new TrainingPosition(2, 0), 3, 10)); // epoch boundaries: by interval
        Assert.False(GrowthPoints.IsInsideEpochPoint(new TrainingPosition(2, 5), 1, 10)); // a time split, one part
        Assert.False(GrowthPoints.Before(new TrainingPosition(0, 3), 0, 1, 3, 10));
        Assert.False(GrowthPoints.Before(new TrainingPosition(1, 0), 1, 0, 3, 10));
        // Before the first training step the epoch's length is not known yet; the start is before every point.
        Assert.True(GrowthPoints.Before(TrainingPosition.Start, 0, 1, 3, 0));
        // With one part per epoch the next point is the next epoch.
        Assert.Equal((3, 0), GrowthPoints.Next(new TrainingPosition(2, 7), 1, 10));
    }
}

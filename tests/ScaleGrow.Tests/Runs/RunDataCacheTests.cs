using ScaleGrow.Data;
using ScaleGrow.Runs;

namespace ScaleGrow.Tests.Runs;

/// <summary>The data cache is process-wide, so these tests run alone (not beside tests that lease data).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RunDataCacheCollection
{
    public const string Name = "run data cache";
}

/// <summary>
/// <see cref="RunData"/> shares one loaded copy of a run's data between steps, and keeps at most
/// <see cref="RunData.Capacity"/> unused datasets, freeing the least recently used (a long-lived Functions worker
/// must not keep every dataset it ever served). Real Fashion-MNIST, small subsets with sizes no other test uses.
/// </summary>
[Collection(RunDataCacheCollection.Name)]
public class RunDataCacheTests
{
    private static RunSpec SpecWith(int trainLimit) => new()
    {
        Data = new DatasetSpec(TrainLimit: trainLimit, TestLimit: 64),
    };

    private static bool IsFreed(IRunData data)
    {
        try
        {
            _ = ((ImageRunData)data).Splits.Train.Images;
            return false;
        }
        catch (ObjectDisposedException)
        {
            return true;
        }
    }

    [Fact]
    public void StepsShareOneCopyAndTheLeastRecentlyUsedIdleDatasetIsFreedBeyondTheCapacity()
    {
        int saved = RunData.Capacity;
        try
        {
            RunData.Capacity = 1;
            IRunData a, b;
            using (var first = RunData.Lease(SpecWith(211)))
            using (var second = RunData.Lease(SpecWith(211)))
            {
                a = first.Data;
                Assert.Same(a, second.Data);
            }
            Assert.False(IsFreed(a), "the only idle dataset is within the capacity");
            using (var lease = RunData.Lease(SpecWith(211))) Assert.Same(a, lease.Data);

            using (var lease = RunData.Lease(SpecWith(223)))
            {
                b = lease.Data;
                Assert.NotSame(a, b);
                Assert.False(IsFreed(a), "a leased dataset is never freed, nor one that fits beside it");
            }
            Assert.True(IsFreed(a), "two idle datasets with capacity 1: the older one goes");
            Assert.False(IsFreed(b));
            using (var lease = RunData.Lease(SpecWith(211)))
            {
                Assert.NotSame(a, lease.Data); // loaded again
                Assert.Equal(211, ((ImageRunData)lease.Data).Splits.Train.Count +
                                  ((ImageRunData)lease.Data).Splits.Validation.Count);
            }
            Assert.True(IsFreed(b));
        }
        finally
        {
            RunData.Capacity = saved;
        }
    }

    [Fact]
    public void ADatasetInUseSurvivesACapacityOfZeroAndIsFreedWhenItsLastLeaseEnds()
    {
        int saved = RunData.Capacity;
        try
        {
            RunData.Capacity = 0;
            var outer = RunData.Lease(SpecWith(227));
            IRunData data;
            using (var inner = RunData.Lease(SpecWith(227)))
            {
                data = inner.Data;
                Assert.Same(outer.Data, data);
            }
            Assert.False(IsFreed(data), "still leased by the outer step");
            outer.Dispose();
            outer.Dispose(); // a second dispose is harmless and releases nothing twice
            Assert.True(IsFreed(data));
        }
        finally
        {
            RunData.Capacity = saved;
        }
    }

    [Fact]
    public void AFailedLoadIsNotKeptSoTheNextLeaseTriesAgain()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"sg-no-data-{Guid.NewGuid():N}");
        var spec = new RunSpec { Data = new DatasetSpec(Directory: missing) };
        var first = Assert.ThrowsAny<Exception>(() => RunData.Lease(spec));
        Assert.Contains(missing, first.Message);
        var second = Assert.ThrowsAny<Exception>(() => RunData.Lease(spec));
        Assert.NotSame(first, second); // loaded again, not a cached failure
    }
}

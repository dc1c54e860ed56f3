using ScaleGrow.Runs;

namespace ScaleGrow.Tests.Runs;

/// <summary>Which step checkpoints a run deletes once the journal points at a recorded state (issue 16).</summary>
public class RetentionOptionsTests
{
    [Fact]
    public void StepsOlderThanTheResumePointGoExceptTheNewestAndThePreGrowthModel()
    {
        var options = new RetentionOptions(KeepSteps: 2);
        // Steps 0..12 exist; the journal's state is at 10, the model before its growth at 3.
        var delete = options.StepsToDelete(Enumerable.Range(0, 13), resumeStep: 10, preGrowthStep: 3);
        Assert.Equal([0, 1, 2, 4, 5, 6, 7, 8, 9], delete);
    }

    [Fact]
    public void NothingAtOrAfterTheResumePointIsDeletedEvenWithKeepStepsOne()
    {
        var delete = new RetentionOptions(KeepSteps: 1).StepsToDelete([4, 5, 6, 7], resumeStep: 6, preGrowthStep: 5);
        Assert.Equal([4], delete);
    }

    [Fact]
    public void KeepStepsZeroKeepsEveryStepAndBadValuesAreRefused()
    {
        Assert.Empty(new RetentionOptions(KeepSteps: 0).StepsToDelete(Enumerable.Range(0, 50), 40, null));
        var e = Assert.Throws<InvalidSpecException>(() => new RetentionOptions(-1).Validate());
        Assert.Contains("retention.keepSteps", e.Message);
        var spec = RunSpec.FromJson("""{"retention":{"keepSteps":5}}""", "test");
        Assert.Equal(5, spec.Retention.KeepSteps);
        Assert.Equal(3, RunSpec.FromJson("{}", "test").Retention.KeepSteps);
    }
}

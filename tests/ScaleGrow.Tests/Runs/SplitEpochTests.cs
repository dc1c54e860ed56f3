using System.Text.Json;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Tests.Orchestration;

namespace ScaleGrow.Tests.Runs;

/// <summary>
/// An epoch longer than an activity's time limit (<c>maxIntervalSeconds</c>, 600 s by default) is trained by several
/// TrainInterval activities: the later ones resume at the batch where the earlier one stopped. The full-size presets'
/// later growth epochs take longer than that on a 2-core machine.
/// </summary>
public sealed class SplitEpochTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"split-epoch-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    /// <summary>A tiny growth run submitted as <paramref name="runId"/>, and its first epoch trained in one activity.</summary>
    private async Task<(LocalFolderArtifactStore Store, RunSpec Spec, InitializeRunResult Init, ScheduleSegment Schedule,
        TrainIntervalStep Train, TrainIntervalResult Whole)> FirstEpochAsync(string runId)
    {
        var store = new LocalFolderArtifactStore(_root);
        var steps = new RunSteps(store);
        var spec = OrchestrationTestKit.TinyGrowth();
        await RunSteps.SubmitAsync(store, runId, spec);
        var init = await new InitializeRunStep(steps).RunAsync(new InitializeRunInput(runId));
        var schedule = new ScheduleSegment(spec.Training.LearningRate, spec.Training.MinLearningRate, 0, 2, 0);
        var train = new TrainIntervalStep(steps);
        var whole = await train.RunAsync(new TrainIntervalInput(runId, init.Checkpoint, 1, TrainingPosition.Start, 1,
            schedule, "grow", 1e6));
        return (store, spec, init, schedule, train, whole);
    }

    [Fact]
    public async Task AnEpochSplitAcrossActivitiesTrainsExactlyAsInOneAndItsRecordCoversAllItsBatches()
    {
        var startedAt = DateTime.UtcNow;
        const string runId = "split-epoch";
        var (store, spec, init, schedule, train, whole) = await FirstEpochAsync(runId);

        // The same epoch from the same checkpoint, with a time limit already spent when the first activity starts: it
        // still trains one batch (a limit shorter than loading would otherwise never progress), then stops.
        var first = await train.RunAsync(new TrainIntervalInput(runId, init.Checkpoint, 2, TrainingPosition.Start, 1,
            schedule, "grow", 0));
        Assert.Empty(first.Epochs);
        Assert.Equal(new TrainingPosition(0, 1, first.Position.Partial), first.Position);
        var partial = first.Position.Partial!;
        Assert.Equal(spec.Training.BatchSize, partial.Samples);
        Assert.True(partial.Seconds > 0);
        // The position survives the orchestration's JSON (its state is serialized between activities).
        var position = JsonSerializer.Deserialize<TrainingPosition>(JsonSerializer.Serialize(first.Position))!;
        Assert.Equal(first.Position, position);

        var rest = await train.RunAsync(new TrainIntervalInput(runId, first.Checkpoint, 3, position, 1, schedule,
            "grow", 1e6));
        var split = Assert.Single(rest.Epochs);
        var one = Assert.Single(whole.Epochs);
        Assert.Equal(new TrainingPosition(1, 0), rest.Position);

        // Batch order, augmentation, model and optimizer state replay exactly across the split.
        Assert.Equal(one.ValidationAccuracy, split.ValidationAccuracy);
        Assert.Equal(one.ValidationLoss, split.ValidationLoss);
        Assert.Equal(one.TrainAccuracy, split.TrainAccuracy);
        Assert.Equal(one.TrainLoss, split.TrainLoss, 1e-9);
        // Its seconds are both activities' training time, not just the last one's.
        Assert.True(split.Seconds > partial.Seconds, $"{split.Seconds} s vs {partial.Seconds} s before the split");
        Assert.Equal(await store.ReadAllBytesAsync(whole.Checkpoint.Model), await store.ReadAllBytesAsync(rest.Checkpoint.Model));

        var entry = (await new RunJournal(store, runId).RunEntriesAsync()).OfType<EpochEntry>().Single();
        Assert.Equal(1, entry.ResumedAtBatch);
        Assert.Equal(split.TrainLoss, entry.TrainLoss);
        // When it ended is journaled with it (time-to-accuracy plots read it), and is no earlier than the split began.
        Assert.Equal(split.EndedAt, entry.EndedAt);
        Assert.True(DateTime.Parse(entry.EndedAt!, System.Globalization.CultureInfo.InvariantCulture,
            System.Globalization.DateTimeStyles.RoundtripKind) >= startedAt, entry.EndedAt);
    }

    /// <summary>
    /// A growth point inside an epoch (<c>intervalsPerEpoch</c>): the step trains exactly to the part's batch,
    /// recalibrates batch norm and validates there, and the next step finishes the epoch as if it had never stopped
    /// (the model's bytes, running statistics included, are those of the epoch trained in one go).
    /// </summary>
    [Fact]
    public async Task TrainingToAGrowthPointInsideAnEpochStopsAtItsBatchValidatesAndResumesExactly()
    {
        const string runId = "part-epoch";
        var (store, _, init, schedule, train, whole) = await FirstEpochAsync(runId);
        int batches = whole.BatchesPerEpoch;
        Assert.Null(whole.Point);

        var third = await train.RunAsync(new TrainIntervalInput(runId, init.Checkpoint, 2, TrainingPosition.Start, 0,
            schedule, "grow", 1e6, UntilPart: 1, Parts: 3));
        Assert.Empty(third.Epochs);
        Assert.Equal(batches / 3, third.Position.Batch);
        var point = Assert.IsType<ValidationPoint>(third.Point);
        Assert.Equal((0, batches / 3), (point.Epoch, point.Batch));
        Assert.InRange(point.ValidationAccuracy, 0, 1);

        var rest = await train.RunAsync(new TrainIntervalInput(runId, third.Checkpoint, 3, third.Position, 1,
            schedule, "grow", 1e6, Parts: 3));
        Assert.Null(rest.Point);
        Assert.Equal(Assert.Single(whole.Epochs).ValidationAccuracy, Assert.Single(rest.Epochs).ValidationAccuracy);
        Assert.Equal(await store.ReadAllBytesAsync(whole.Checkpoint.Model), await store.ReadAllBytesAsync(rest.Checkpoint.Model));

        // More points than batches: a one-line error naming the field, before any training.
        var tooMany = await Assert.ThrowsAsync<InvalidSpecException>(() => train.RunAsync(new TrainIntervalInput(runId,
            init.Checkpoint, 4, TrainingPosition.Start, 0, schedule, "grow", 1e6, UntilPart: 1, Parts: batches + 1)));
        Assert.Contains("intervalsPerEpoch", tooMany.Message);
    }
}

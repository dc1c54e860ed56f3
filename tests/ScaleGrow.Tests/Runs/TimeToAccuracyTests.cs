using System.Text.Json.Nodes;
using ScaleGrow.Runs;

namespace ScaleGrow.Tests.Runs;

public class TimeToAccuracyTests
{
    private static readonly DateTime Start = new(2026, 12, 5, 10, 0, 0, DateTimeKind.Utc);

    // A report.json as RunReport writes it: epochs with their own seconds and when their entry was written.
    private static JsonObject Report(string arch, double test, double wall, params (double Seconds, double WrittenAfter, double Accuracy)[] epochs) =>
        StepReport(arch, test, wall, epochs.Select((e, i) => (i + 1, e.Seconds, e.WrittenAfter, e.Accuracy)).ToArray());

    private static JsonObject StepReport(string arch, double test, double wall, params (int Step, double Seconds, double WrittenAfter, double Accuracy)[] epochs)
    {
        var history = new JsonArray();
        for (int i = 0; i < epochs.Length; i++)
        {
            var e = RunJournal.ToJson(new EpochEntry
            {
                Epoch = i, Step = epochs[i].Step, Seconds = epochs[i].Seconds, ValidationAccuracy = epochs[i].Accuracy, Arch = arch,
                WrittenAt = double.IsNaN(epochs[i].WrittenAfter) ? null
                    : Start.AddSeconds(epochs[i].WrittenAfter).ToString("O"),
            });
            history.Add(e);
        }
        return new JsonObject
        {
            ["finalArch"] = arch, ["accuracy"] = test, ["wallSeconds"] = wall, ["epochHistory"] = history,
        };
    }

    [Fact]
    public void AnEpochsTimeIsItsWriteTimeCountedFromTheFirstEpochsStartSoGrowthBetweenEpochsCounts()
    {
        // Epoch 0 took 100 s and was written at 110 s (so the run's first epoch began at 10 s); 40 s of growth and
        // checkpointing pass before epoch 1's 100 s.
        var curve = TimeToAccuracy.FromReport("grown", Report("VGG-1-0-0", 0.91, 400,
            (100, 110, 0.80), (100, 250, 0.88), (100, 350, 0.905)), "r.json");
        Assert.Equal([100.0, 240.0, 340.0], curve.Points.Select(p => p.Seconds));
        Assert.Equal([0.80, 0.88, 0.905], curve.Points.Select(p => p.Accuracy));
        Assert.Equal(0.91, curve.TestAccuracy);
        Assert.Equal(400, curve.WallSeconds);
        Assert.Equal("VGG-1-0-0", curve.Arch);
        Assert.Equal(340.0, TimeToAccuracy.FirstReach(curve, 0.9));
        Assert.Equal(240.0, TimeToAccuracy.FirstReach(curve, 0.88));
        Assert.Null(TimeToAccuracy.FirstReach(curve, 0.95));
    }

    [Fact]
    public void EpochsAStepTrainedTogetherAreJournaledAtOnceAndEachEndsBeforeTheWriteByTheStepsLaterEpochs()
    {
        // A fixed run's first activity trains epochs 0 and 1 (100 s each) and journals both at 210 s, so the run began
        // at 10 s; the second activity's epoch 2 is written at 350 s.
        var curve = TimeToAccuracy.FromReport("fixed", StepReport("VGG-11", 0.93, 360,
            (1, 100, 210, 0.85), (1, 100, 210, 0.89), (2, 100, 350, 0.92)), "r.json");
        Assert.Equal([100.0, 200.0, 340.0], curve.Points.Select(p => p.Seconds));
        Assert.Equal(340.0, TimeToAccuracy.FirstReach(curve, 0.9));
    }

    [Fact]
    public void AnEpochsRecordedEndWinsOverItsWriteTimeWhichIsLateWhenTheStepStoppedMidEpoch()
    {
        // The first activity trains epoch 0 (100 s, ended at 110 s) and 50 s of epoch 1, and is journaled at 170 s; the
        // second finishes epoch 1 (100 s in all, ended at 230 s) and is journaled at 240 s. From write times alone the
        // run would seem to start at 70 s, 60 s late, and epoch 1 to end 50 s too early.
        var report = StepReport("ResNet-2-1-0", 0.92, 250, (1, 100, 170, 0.85), (2, 100, 240, 0.90));
        var history = (JsonArray)report["epochHistory"]!;
        history[0]!["endedAt"] = Start.AddSeconds(110).ToString("O");
        history[1]!["endedAt"] = Start.AddSeconds(230).ToString("O");
        var curve = TimeToAccuracy.FromReport("grown", report, "r.json");
        Assert.Equal([100.0, 220.0], curve.Points.Select(p => p.Seconds));
        // One epoch without it (a journal from before the field): the write-time estimate for all.
        history[1]!.AsObject().Remove("endedAt");
        Assert.Equal([100.0, 170.0], TimeToAccuracy.FromReport("grown", report, "r.json").Points.Select(p => p.Seconds));
    }

    [Fact]
    public void AReportWithoutWriteTimesFallsBackToTheSumOfEpochSeconds()
    {
        var curve = TimeToAccuracy.FromReport("old", Report("VGG-11", 0.93, 500,
            (120, double.NaN, 0.85), (130, double.NaN, 0.92)), "r.json");
        Assert.Equal([120.0, 250.0], curve.Points.Select(p => p.Seconds));
        Assert.Equal(250.0, TimeToAccuracy.FirstReach(curve, 0.9));
    }

    [Fact]
    public void TheTableSaysWhoReachedTheTargetFirstAndThePlotIsAPng()
    {
        var grown = TimeToAccuracy.FromReport("grown", Report("ResNet-2-2-2", 0.925, 900,
            (100, 100, 0.85), (100, 300, 0.91)), "a.json");
        var baseline = TimeToAccuracy.FromReport("vgg11", Report("VGG-0-0-1-1-1", 0.93, 800,
            (200, 200, 0.89), (200, 400, 0.92)), "b.json");
        string table = TimeToAccuracy.Table([grown, baseline], 0.9);
        Assert.Contains("first validation ≥ 90 % at", table);
        Assert.Contains("| grown | ResNet-2-2-2 | 300 s | 91.00 % | 92.50 % | 900 |", table);
        Assert.Contains("| vgg11 | VGG-0-0-1-1-1 | 400 s | 92.00 % | 93.00 % | 800 |", table);
        Assert.Contains("never", TimeToAccuracy.Table([grown], 0.95));

        byte[] png = TimeToAccuracy.Plot([grown, baseline], "t", 0.9);
        Assert.True(png.Length > 1000);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
    }

    [Fact]
    public void AReportWithoutAnEpochHistoryOrWithAMalformedEpochIsAOneLineErrorNamingTheFile()
    {
        var none = Assert.Throws<CheckpointFormatException>(() =>
            TimeToAccuracy.FromReport("x", new JsonObject { ["accuracy"] = 0.9 }, "runs/a/report.json"));
        Assert.Equal("runs/a/report.json: report has no epochHistory array", none.Message);

        var bad = new JsonObject
        {
            ["epochHistory"] = new JsonArray(new JsonObject { ["kind"] = "epoch", ["key"] = "epoch-00000", ["seconds"] = "soon" }),
        };
        var e = Assert.Throws<CheckpointFormatException>(() => TimeToAccuracy.FromReport("x", bad, "runs/b/report.json"));
        Assert.StartsWith("runs/b/report.json: journal entry 'epoch-00000' is not a valid epoch entry", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}

using System.Text.Json.Nodes;
using Microsoft.DurableTask.Client;
using ScaleGrow.Growth;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Tests.Infrastructure;

namespace ScaleGrow.Tests.Orchestration;

[Collection(AzuriteCollection.Name)]
public class GrowthOrchestrationTests(AzuriteFixture azurite)
{
    private IArtifactStore Store() => new CachingArtifactStore(new BlobArtifactStore(azurite.ConnectionString), 64 << 20);

    private static string NewRunId(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..30];

    [Fact]
    public async Task AScaleRunPretrainsExpandsWithSharedLayersAndTrainsOnThroughTheSameOrchestration()
    {
        var store = Store();
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store));
        var runs = new RunsService(engine.Client, store);
        var tiny = OrchestrationTestKit.TinyGrowth();
        var spec = tiny with
        {
            Kind = RunKind.Scale,
            Epochs = 1,
            MeasureLatency = false,
            Model = new ModelRequest { Family = "vit", Layers = 2, Heads = 2, HeadDim = 8, PatchSize = 7 },
            Training = new ScaleGrow.Training.TrainingOptions
            {
                Optimizer = ScaleGrow.Training.OptimizerKind.AdamW, LearningRate = 1e-3, BatchSize = 64,
            },
            Scale = new ScaleRunOptions { PretrainEpochs = 1 },
        };
        string runId = await runs.StartAsync(spec, NewRunId("scale"));
        var (metadata, statuses) = await OrchestrationTestKit.WaitAsync(engine.Client, runId);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, metadata.RuntimeStatus);
        var summary = metadata.ReadOutputAs<RunSummary>()!;
        Assert.Equal("ViT-D4W16", summary.Arch);
        Assert.Equal(2, summary.Epochs); // one before the expansion, one after
        Assert.Contains(statuses, s => s.Arch == "ViT-D2W16");
        var journal = await OrchestrationTestKit.JournalAsync(store, runId);
        var expand = Assert.Single(journal, e => (string?)e["kind"] == "expand");
        Assert.Equal(("ViT-D2W16", "ViT-D4W16"), ((string?)expand["archBefore"], (string?)expand["archAfter"]));
        long before = (long)expand["parametersBefore"]!, after = (long)expand["parametersAfter"]!;
        Assert.True(after > before && after < before * 1.5, $"{before} -> {after}: shared layers add only adapters");
        Assert.Equal(after, summary.Parameters);
        // The final checkpoint keeps the sharing: layers 3 and 4 run the tensors of layers 1 and 2.
        var (model, _) = ScaleGrow.Checkpoints.ModelIO.LoadModel(await store.ReadAllBytesAsync(summary.Model), summary.Model);
        Assert.Equal(after, ScaleGrow.Models.ModelStats.CountParameters(model.Module));
        model.Module.Dispose();
        var report = JsonNode.Parse(await store.ReadAllBytesAsync(summary.Report))!;
        Assert.Equal("ViT-D4W16", (string?)report["expansion"]!["archAfter"]);
    }

    [Fact]
    public async Task ARunThatAsksForQuantizationEndsWithAPackedCheckpointItsReportDescribes()
    {
        var store = Store();
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store));
        var runs = new RunsService(engine.Client, store);
        var spec = OrchestrationTestKit.TinyGrowth(maxEpochs: 2) with
        {
            Quantization = new ScaleGrow.Quantization.QuantizationOptions { Bits = 4, CalibrationSamples = 64 },
        };
        string runId = await runs.StartAsync(spec, NewRunId("quant"));
        var (metadata, _) = await OrchestrationTestKit.WaitAsync(engine.Client, runId);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, metadata.RuntimeStatus);
        var q = metadata.ReadOutputAs<RunSummary>()!.Quantized;
        Assert.NotNull(q);
        Assert.Equal(("gptq-reorder", 4), (q.Method, q.Bits));
        var bytes = await store.ReadAllBytesAsync(q.Model);
        Assert.Equal(ScaleGrow.Checkpoints.CheckpointMetadata.QuantizedModelKind,
            ScaleGrow.Checkpoints.CheckpointCodec.ReadKind(bytes, q.Model));
        Assert.True(q.QuantizedBytes < q.Fp32Bytes, $"{q.QuantizedBytes} vs {q.Fp32Bytes} bytes"); // a tiny model: scales weigh
        Assert.NotNull(q.AccuracyAfter);
        var report = JsonNode.Parse(await store.ReadAllBytesAsync(RunPaths.Final(runId, "report.json")))!;
        Assert.Equal(q.Model, (string?)report["quantized"]!["model"]);
    }

    [Fact]
    public async Task ASmallGrowthRunCompletesWithEveryStepJournaledOnceAndStatusProgressing()
    {
        var store = Store();
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store));
        var runs = new RunsService(engine.Client, store);
        string runId = await runs.StartAsync(OrchestrationTestKit.TinyGrowth(maxEpochs: 4), NewRunId("grow"));
        var (metadata, statuses) = await OrchestrationTestKit.WaitAsync(engine.Client, runId);

        Assert.True(metadata.RuntimeStatus == OrchestrationRuntimeStatus.Completed,
            $"{metadata.RuntimeStatus}: {metadata.FailureDetails?.ErrorMessage}");
        var summary = metadata.ReadOutputAs<RunSummary>()!;
        Assert.Equal(5, summary.Epochs);                         // 4 growth-phase epochs + 1 fine-tuning
        Assert.True(summary.Growths >= 3, $"{summary.Growths} growths");
        var journal = await OrchestrationTestKit.JournalAsync(store, runId);
        var keys = journal.Select(e => (string)e["key"]!).ToList();
        Assert.Equal(keys.Count, keys.Distinct().Count());     // every step exactly once
        Assert.Equal(Enumerable.Range(0, 5), journal.Where(e => (string?)e["kind"] == "epoch")
            .Select(e => (int)e["epoch"]!).Order());
        Assert.Equal(summary.Growths, journal.Count(e => (string?)e["kind"] == "growth"));
        // Custom status moved through the phases with growing epochs and a changing architecture.
        Assert.Contains(statuses, s => s.Phase == "grow");
        Assert.Contains(statuses, s => s.Phase == "fine-tune");
        Assert.Contains(statuses, s => s.Phase == "done");
        Assert.True(statuses.Select(s => s.Epoch).Zip(statuses.Skip(1).Select(s => s.Epoch)).All(p => p.First <= p.Second));
        Assert.True(statuses.Select(s => s.Arch).Distinct().Count() >= 2);
        // The final artifacts exist and the fused model loads.
        foreach (var path in new[] { summary.Model, summary.FusedModel, summary.Report, RunPaths.Final(runId, "curves.png") })
            Assert.NotNull(await store.GetInfoAsync(path));
        var report = JsonNode.Parse(await store.ReadAllBytesAsync(summary.Report))!;
        Assert.Equal(summary.Arch, (string?)report["finalArch"]);
        Assert.Equal(summary.Growths, report["growthHistory"]!.AsArray().Count);
        Assert.All(report["growthHistory"]!.AsArray(), g => Assert.NotNull(g!["importance"]));
        // Retention (default: the 3 newest steps besides what the resume point needs): older steps are gone, the
        // resume point stays (every step used to be kept forever, issue 16).
        var steps = new SortedSet<string>();
        await foreach (var info in store.ListAsync($"runs/{runId}/steps/")) steps.Add(info.Path.Split('/')[3]);
        var lastState = journal.Where(e => (string?)e["kind"] == "state").MaxBy(e => (int)e["step"]!)!;
        Assert.True(steps.Count <= 3 + 2 + 1, $"{steps.Count} steps kept: {string.Join(", ", steps)}");
        Assert.Contains($"{(int)lastState["step"]!:00000}", steps);
        Assert.DoesNotContain("00001", steps);

        // Starting the same id again — here, or from a new process whose in-process engine has no record of it — is
        // refused, and the finished run's results are untouched (it used to re-run and overwrite them).
        var reportBytes = await store.ReadAllBytesAsync(summary.Report);
        var again = await Assert.ThrowsAsync<RunExistsException>(() => runs.StartAsync(OrchestrationTestKit.TinyGrowth(), runId));
        Assert.Contains("already completed", again.Message);
        await using (var freshEngine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store)))
            await Assert.ThrowsAsync<RunExistsException>(() =>
                new RunsService(freshEngine.Client, store).StartAsync(OrchestrationTestKit.TinyGrowth(), runId));
        Assert.Equal(reportBytes, await store.ReadAllBytesAsync(summary.Report));
    }

    /// <summary>
    /// The quick preset's growth options through the real engine: InsertModule hands function-preserving VGG depth
    /// growth a calibration batch (without one it refuses), and the orchestrator carries the last depth block from
    /// cycle to cycle, so greedy-exclude-last never grows the same block twice in a row.
    /// </summary>
    [Fact]
    public async Task FunctionPreservingGreedyExcludeLastGrowthRunsThroughTheOrchestration()
    {
        var store = Store();
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store));
        var runs = new RunsService(engine.Client, store);
        var tiny = OrchestrationTestKit.TinyGrowth(maxEpochs: 4);
        var spec = tiny with
        {
            Training = tiny.Training with { LearningRate = 0.02 }, // the wiring is tested here, not the learning
            Growth = tiny.Growth with
            {
                Pattern = "d",
                DepthPlacement = DepthPlacement.GreedyExcludeLast,
                Init = new InitOptions { PreserveFunction = true },
            },
        };
        string runId = await runs.StartAsync(spec, NewRunId("fpgrow"));
        var (metadata, _) = await OrchestrationTestKit.WaitAsync(engine.Client, runId);

        Assert.True(metadata.RuntimeStatus == OrchestrationRuntimeStatus.Completed,
            $"{metadata.RuntimeStatus}: {metadata.FailureDetails?.ErrorMessage}");
        var journal = await OrchestrationTestKit.JournalAsync(store, runId);
        var blocks = journal.Where(e => (string?)e["kind"] == "growth").OrderBy(e => (int)e["step"]!)
            .Select(e => (int)e["action"]!["block"]!).ToList();
        Assert.True(blocks.Count >= 3, $"{blocks.Count} depth growths");
        Assert.All(blocks.Zip(blocks.Skip(1)), p => Assert.NotEqual(p.First, p.Second));
    }

    [Fact]
    public async Task MergedFineTuningTrainsThePlainNetworkAfterGrowthEnds()
    {
        var store = Store();
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store));
        var runs = new RunsService(engine.Client, store);
        var tiny = OrchestrationTestKit.TinyGrowth(maxEpochs: 3, fineTune: 2);
        var spec = tiny with { Growth = tiny.Growth with { Pattern = "wd", FineTuneBranches = FineTuneBranches.Merge } };
        string runId = await runs.StartAsync(spec, NewRunId("merge"));
        var (metadata, _) = await OrchestrationTestKit.WaitAsync(engine.Client, runId);

        Assert.True(metadata.RuntimeStatus == OrchestrationRuntimeStatus.Completed,
            $"{metadata.RuntimeStatus}: {metadata.FailureDetails?.ErrorMessage}");
        var summary = metadata.ReadOutputAs<RunSummary>()!;
        var journal = await OrchestrationTestKit.JournalAsync(store, runId);
        var merge = Assert.Single(journal, e => (string?)e["kind"] == "merge");
        int lastGrowthStep = journal.Where(e => (string?)e["kind"] == "growth").Max(e => (int)e["step"]!);
        Assert.True((int)merge["step"]! > lastGrowthStep, "the merge comes after the last growth");
        Assert.Equal(3, (int)merge["epoch"]!); // growth phase over, fine-tuning not begun
        Assert.True((long)merge["parameters"]! < (long)merge["parametersBefore"]!, merge.ToJsonString());
        Assert.Equal(5, summary.Epochs); // 3 growth + 2 fine-tuning epochs, the latter on the merged network
        Assert.Equal((long)merge["parameters"]!, summary.Parameters);

        // The delivered (pre-fusion) model is the plain network: no unit has more than its main branch.
        var (model, _) = ScaleGrow.Checkpoints.ModelIO.LoadModel(await store.ReadAllBytesAsync(summary.Model), summary.Model);
        var cnn = Assert.IsType<ScaleGrow.Models.Cnn.CnnModel>(model);
        Assert.False(ScaleGrow.Models.Cnn.CnnBranchMerge.HasBranches(cnn.Spec));
        Assert.Equal(summary.Arch, cnn.Spec.ArchString);
        model.Module.Dispose();
        var report = JsonNode.Parse(await store.ReadAllBytesAsync(summary.Report))!;
        Assert.Equal((int)merge["step"]!, (int)report["branchMerge"]!["step"]!);
        // The merged network trains: fine-tuning lowers the training loss below the growth phase's last epoch.
        var loss = journal.Where(e => (string?)e["kind"] == "epoch").OrderBy(e => (int)e["epoch"]!)
            .Select(e => (double)e["trainLoss"]!).ToList();
        Assert.True(loss[4] < loss[2], $"train loss by epoch: {string.Join(", ", loss)}");
    }

    [Fact]
    public async Task FineTuningContinuesThePlannedCosineOnlyWhenAskedAndOnlyWhenGrowthUsedItsWholePhase()
    {
        var store = Store();
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store));
        var runs = new RunsService(engine.Client, store);
        var tiny = OrchestrationTestKit.TinyGrowth(maxEpochs: 2, fineTune: 2);
        double initial = tiny.Training.LearningRate;

        async Task<List<double>> RatesAsync(RunSpec spec, string prefix)
        {
            string runId = await runs.StartAsync(spec, NewRunId(prefix));
            var (metadata, _) = await OrchestrationTestKit.WaitAsync(engine.Client, runId);
            Assert.True(metadata.RuntimeStatus == OrchestrationRuntimeStatus.Completed,
                $"{metadata.RuntimeStatus}: {metadata.FailureDetails?.ErrorMessage}");
            // The rate each epoch ended at: epochs are whole here, so that is the schedule at the epoch's end.
            return (await OrchestrationTestKit.JournalAsync(store, runId))
                .Where(e => (string?)e["kind"] == "epoch").OrderBy(e => (int)e["epoch"]!)
                .Select(e => (double)e["learningRate"]!).ToList();
        }
        static double Cosine(double from, double progress) => 0.5 * from * (1 + Math.Cos(Math.PI * progress));

        // continue, growth ran to maxEpochs: one cosine over 2 + 2 epochs, as a fixed network of 4 epochs trains.
        var continued = await RatesAsync(tiny with { Growth = tiny.Growth with { FineTuneSchedule = FineTuneSchedule.Continue } },
            "ftcont");
        Assert.Equal(4, continued.Count);
        for (int e = 0; e < 4; e++)
            Assert.True(Math.Abs(continued[e] - Cosine(initial, (e + 1) / 4.0)) < 1e-9,
                $"continue: epoch {e} ended at {continued[e]}, the planned cosine is at {Cosine(initial, (e + 1) / 4.0)}");

        // restart (the default): a new cosine from the rate at epoch 2 over the 2 fine-tuning epochs.
        var restarted = await RatesAsync(tiny, "ftrest");
        double atTwo = Cosine(initial, 2 / 4.0);
        Assert.Equal(continued.Take(2), restarted.Take(2));
        Assert.True(Math.Abs(restarted[2] - Cosine(atTwo, 1 / 2.0)) < 1e-9, $"restart: epoch 2 ended at {restarted[2]}");
        Assert.True(restarted[2] > continued[2] + 1e-6, $"restart {restarted[2]} against continue {continued[2]}");

        // continue, growth stopped early (its target reached at the epoch-2 growth point of 4): the planned cosine
        // would not reach the minimum by the end, so fine-tuning decays from the current rate over its 2 epochs.
        var early = OrchestrationTestKit.TinyGrowth(maxEpochs: 4, fineTune: 2);
        early = early with
        {
            Growth = early.Growth with
            {
                Pattern = "d",
                FineTuneSchedule = FineTuneSchedule.Continue,
                Stopping = early.Growth.Stopping with { TargetArch = "VGG-1-0-0" },
            },
        };
        var stoppedEarly = await RatesAsync(early, "ftearly");
        Assert.Equal(4, stoppedEarly.Count); // 2 growth epochs, then 2 fine-tuning epochs instead of 2 + 2 more
        double atTwoOfSix = Cosine(initial, 2 / 6.0);
        Assert.True(Math.Abs(stoppedEarly[2] - Cosine(atTwoOfSix, 1 / 2.0)) < 1e-9, $"early stop: {stoppedEarly[2]}");
        Assert.Equal(0, stoppedEarly[3], 9);
    }

    /// <summary>
    /// <c>intervalsPerEpoch: 2</c> grows after every half epoch: training stops at the middle batch, validates there
    /// for the stopping rule, grows, and goes on from the same batch, so each epoch is still trained and journaled
    /// once, and the stopping rule takes in every point's validation. A stop at a point inside an epoch fine-tunes the
    /// rest of that epoch as well.
    /// </summary>
    [Fact]
    public async Task HalfEpochIntervalsGrowInsideEpochsAndValidateAtEveryPoint()
    {
        var store = Store();
        var calls = new List<(TrainIntervalInput Input, TrainIntervalResult Result)>();
        var activities = ActivityTable.For(new RunSteps(store)).Wrap<TrainIntervalInput, TrainIntervalResult>(
            TrainIntervalStep.Name, async (input, train) =>
            {
                var result = await train(input);
                lock (calls) calls.Add((input, result));
                return result;
            });
        await using var engine = await OrchestrationTestKit.StartEngineAsync(activities);
        var runs = new RunsService(engine.Client, store);
        var tiny = OrchestrationTestKit.TinyGrowth(maxEpochs: 2, fineTune: 1);
        var spec = tiny with { Growth = tiny.Growth with { IntervalsPerEpoch = 2, Pattern = "d" } };

        string runId = await runs.StartAsync(spec, NewRunId("half"));
        var (metadata, _) = await OrchestrationTestKit.WaitAsync(engine.Client, runId);
        Assert.True(metadata.RuntimeStatus == OrchestrationRuntimeStatus.Completed,
            $"{metadata.RuntimeStatus}: {metadata.FailureDetails?.ErrorMessage}");
        var summary = metadata.ReadOutputAs<RunSummary>()!;
        Assert.Equal(3, summary.Growths); // at epochs 0.5, 1 and 1.5; 2 is the end of the growth phase
        Assert.Equal(3, summary.Epochs);
        int batches = calls[0].Result.BatchesPerEpoch;
        Assert.True(batches >= 4, $"{batches} batches per epoch");
        Assert.Equal([(0, 1), (1, 0), (1, 1), (2, 0), (3, 0)],
            calls.Select(c => (c.Input.UntilEpoch, c.Input.UntilPart)).ToList());
        // The halfway points stop at batch ⌊batches/2⌋ with a validation there, where the next step resumes; whole
        // epochs need none.
        Assert.Equal(new TrainingPosition(0, batches / 2, calls[0].Result.Position.Partial), calls[0].Result.Position);
        Assert.NotNull(calls[0].Result.Point);
        Assert.Equal(batches / 2, calls[1].Input.Position.Batch);
        Assert.Null(calls[1].Result.Point);
        var journal = await OrchestrationTestKit.JournalAsync(store, runId);
        Assert.Equal([0, 1, 2], journal.Where(e => (string?)e["kind"] == "epoch").Select(e => (int)e["epoch"]!).Order());
        // A growth is journaled at the epoch it happened in (at an epoch's end: the next one).
        Assert.Equal([0, 1, 1], journal.Where(e => (string?)e["kind"] == "growth").Select(e => (int)e["epoch"]!).Order());
        // ... and with the epochs trained then, for the curves' growth markers.
        Assert.Equal([(double)(batches / 2) / batches, 1, 1 + (double)(batches / 2) / batches],
            journal.Where(e => (string?)e["kind"] == "growth").Select(e => (double)e["at"]!).Order());
        // Epoch 0 was trained across the growth in its middle, and its record counts all of its batches.
        var first = journal.Single(e => (string?)e["kind"] == "epoch" && (int)e["epoch"]! == 0);
        Assert.Equal(batches / 2, (int)first["resumedAtBatch"]!);
        Assert.True((double)first["seconds"]! > calls[0].Result.Position.Partial!.Seconds);

        // The stopping rule's EMA took in a validation at every point: 1, 2, 3 of them at the three growths.
        Assert.Equal([1, 2, 3], journal.Where(e => (string?)e["kind"] == "state")
            .Select(e => (int)e["state"]!["progress"]!["epoch"]!).Order());

        // Growth that stops at a point inside an epoch (here its target, reached at the second growth, stops it at the
        // third point, epoch 1.5) fine-tunes the rest of that epoch and then its fine-tuning epochs.
        var stopping = spec with
        {
            Growth = spec.Growth with { MaxEpochs = 4, Stopping = new StoppingOptions { Auto = false, TargetArch = "VGG-2-0-0" } },
        };
        calls.Clear();
        string stoppedId = await runs.StartAsync(stopping, NewRunId("halfstop"));
        (metadata, _) = await OrchestrationTestKit.WaitAsync(engine.Client, stoppedId);
        Assert.True(metadata.RuntimeStatus == OrchestrationRuntimeStatus.Completed,
            $"{metadata.RuntimeStatus}: {metadata.FailureDetails?.ErrorMessage}");
        summary = metadata.ReadOutputAs<RunSummary>()!;
        Assert.Equal(2, summary.Growths);
        Assert.Contains("VGG-2-0-0", summary.StopReason);
        Assert.Equal(3, summary.Epochs);
        Assert.Equal((3, 0), (calls[^1].Input.UntilEpoch, calls[^1].Input.UntilPart));
        Assert.Equal("fine-tune", calls[^1].Input.Phase);
        Assert.Equal(new TrainingPosition(1, batches / 2, calls[^1].Input.Position.Partial), calls[^1].Input.Position);
    }

    [Fact]
    public async Task AnActivityThatFailsOnceIsRetriedAndTheRunCompletes()
    {
        var store = Store();
        int trainCalls = 0;
        var activities = ActivityTable.For(new RunSteps(store)).Wrap<TrainIntervalInput, TrainIntervalResult>(
            TrainIntervalStep.Name, (input, train) => Interlocked.Increment(ref trainCalls) == 2
                ? throw new IOException("simulated worker failure while training")
                : train(input));
        await using var engine = await OrchestrationTestKit.StartEngineAsync(activities);
        string runId = await new RunsService(engine.Client, store).StartAsync(
            OrchestrationTestKit.TinyGrowth(maxEpochs: 3, fineTune: 0), NewRunId("retry"));
        var (metadata, _) = await OrchestrationTestKit.WaitAsync(engine.Client, runId);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, metadata.RuntimeStatus);
        Assert.True(trainCalls >= 4, $"{trainCalls} TrainInterval calls (one failed and was retried)");
        var keys = (await OrchestrationTestKit.JournalAsync(store, runId)).Select(e => (string)e["key"]!).ToList();
        Assert.Equal(keys.Count, keys.Distinct().Count());
        Assert.Equal(3, keys.Count(k => k.StartsWith("epoch-")));
    }

    [Fact]
    public async Task ACorruptCheckpointFailsTheRunAtOnceWithAClearMessage()
    {
        var store = Store();
        var activities = ActivityTable.For(new RunSteps(store)).Wrap<InitializeRunInput, InitializeRunResult>(
            InitializeRunStep.Name, async (input, initialize) =>
            {
                var result = await initialize(input);
                await store.WriteAsync(result.Checkpoint.Model, "not a checkpoint at all"u8.ToArray());
                return result;
            });
        await using var engine = await OrchestrationTestKit.StartEngineAsync(activities);
        string runId = await new RunsService(engine.Client, store).StartAsync(OrchestrationTestKit.TinyGrowth(),
            NewRunId("corrupt"));
        var (metadata, _) = await OrchestrationTestKit.WaitAsync(engine.Client, runId, TimeSpan.FromMinutes(1));
        Assert.Equal(OrchestrationRuntimeStatus.Failed, metadata.RuntimeStatus);
        string message = metadata.FailureDetails!.ErrorMessage;
        Assert.Contains(RunPaths.StepModel(runId, 0), message);
        Assert.DoesNotContain('\n', message.Trim());
        var view = await new RunsService(engine.Client, store).GetAsync(runId);
        Assert.Equal("Failed", view!.RuntimeStatus);
        Assert.Contains(RunPaths.StepModel(runId, 0), view.Failure);
    }

    [Fact]
    public async Task AStopRequestFinishesTheRunGracefullyWithAFusedModelAndReport()
    {
        var store = Store();
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store));
        var runs = new RunsService(engine.Client, store);
        string runId = await runs.StartAsync(OrchestrationTestKit.TinyGrowth(maxEpochs: 30, fineTune: 5), NewRunId("stop"));
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while ((await OrchestrationTestKit.JournalAsync(store, runId)).All(e => (string?)e["kind"] != "growth"))
        {
            Assert.True(DateTime.UtcNow < deadline, "no growth step within two minutes");
            await Task.Delay(100);
        }
        Assert.True(await runs.StopAsync(runId));
        var (metadata, statuses) = await OrchestrationTestKit.WaitAsync(engine.Client, runId);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, metadata.RuntimeStatus);
        var summary = metadata.ReadOutputAs<RunSummary>()!;
        Assert.StartsWith("stop requested", summary.StopReason);
        Assert.True(summary.Epochs < 30, $"{summary.Epochs} epochs: the stop did not shorten the run");
        Assert.DoesNotContain(statuses, s => s.Phase == "fine-tune"); // fine-tuning is skipped on stop
        Assert.NotNull(await store.GetInfoAsync(summary.FusedModel));
        Assert.NotNull(await store.GetInfoAsync(summary.Report));
    }

    /// <summary>
    /// A stop that lands in the middle of a growth-phase epoch (the control flag the CLI's <c>runs stop</c> writes):
    /// the run must fuse and report at once. It used to call TrainInterval again and again with no progress, writing a
    /// step per call (7,500 step folders in ten minutes, issue 16). Stopped before the grown model has trained a full
    /// epoch, it delivers the model from before that growth; one epoch later, the grown one.
    /// </summary>
    [Theory]
    [InlineData(1, 2, true)]  // growths at epochs 1 and 2; stopped in epoch 2, the first epoch after the second growth
    [InlineData(2, 3, false)] // growth at epoch 2; stopped in epoch 3, after epoch 2 trained the grown model in full
    public async Task AStopInTheMiddleOfAGrowthEpochFinishesAtOnceWithTheBestModelTheRunHas(int interval,
        int stopEpoch, bool fromBeforeTheGrowth)
    {
        var store = Store();
        string runId = NewRunId("midstop");
        int requested = 0;
        var steps = new RunSteps(store)
        {
            ControlPollSeconds = 0,
            Progress = new OnBatch(p =>
            {
                if (p.Epoch == stopEpoch && p.Batch >= 2 && Interlocked.Exchange(ref requested, 1) == 0)
                    new RunCatalog(store).RequestStopAsync(runId).GetAwaiter().GetResult();
            }),
        };
        await using var engine = await OrchestrationTestKit.StartEngineAsync(steps);
        var spec = OrchestrationTestKit.TinyGrowth(maxEpochs: 30, fineTune: 5);
        spec = spec with { Growth = spec.Growth with { IntervalEpochs = interval } };
        await new RunsService(engine.Client, store).StartAsync(spec, runId);
        var (metadata, _) = await OrchestrationTestKit.WaitAsync(engine.Client, runId);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, metadata.RuntimeStatus);
        var summary = metadata.ReadOutputAs<RunSummary>()!;
        Assert.StartsWith("stop requested", summary.StopReason);
        var journal = await OrchestrationTestKit.JournalAsync(store, runId);
        var epochs = journal.Where(e => (string?)e["kind"] == "epoch").ToList();
        Assert.Equal(stopEpoch, epochs.Count); // the interrupted epoch is never journaled as trained
        var stepFolders = new HashSet<string>();
        await foreach (var info in store.ListAsync($"{RunPaths.Container}/{runId}/steps/"))
            stepFolders.Add(info.Path.Split('/')[3]);
        Assert.True(stepFolders.Count <= 3 * stopEpoch + 2, $"{stepFolders.Count} steps for {stopEpoch} epochs");
        // The delivered model is the one the last fully journaled epoch trained: from before the growth that came
        // after it, or the grown model that epoch trained in full.
        Assert.Equal((string)epochs[^1]["arch"]!, summary.Arch);
        Assert.Equal((long)epochs[^1]["parameters"]!, summary.Parameters);
        int lastGrowthEpoch = journal.Where(e => (string?)e["kind"] == "state")
            .Select(e => (int)e["state"]!["beforeLastGrowth"]!["growthEpoch"]!).Max();
        Assert.Equal(fromBeforeTheGrowth ? stopEpoch : stopEpoch - 1, lastGrowthEpoch);
        if (fromBeforeTheGrowth)
            Assert.Contains("delivered the model from before the last growth", summary.StopReason);
        else
            Assert.DoesNotContain("before the last growth", summary.StopReason);
        Assert.NotNull(await store.GetInfoAsync(summary.FusedModel));
    }

    private sealed class OnBatch(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    [Fact]
    public async Task AFailedRunResumesFromItsLastJournaledStateAsANewInstance()
    {
        var store = Store();
        var runId = NewRunId("resume");
        // First life: fails at its third training step (after at least one growth cycle was journaled).
        int calls = 0;
        var failing = ActivityTable.For(new RunSteps(store)).Wrap<TrainIntervalInput, TrainIntervalResult>(
            TrainIntervalStep.Name, (input, train) => Interlocked.Increment(ref calls) >= 3
                ? throw new ScaleGrowException("simulated permanent failure")
                : train(input));
        await using (var engine = await OrchestrationTestKit.StartEngineAsync(failing))
        {
            await new RunsService(engine.Client, store).StartAsync(OrchestrationTestKit.TinyGrowth(maxEpochs: 4), runId);
            var (m, _) = await OrchestrationTestKit.WaitAsync(engine.Client, runId);
            Assert.Equal(OrchestrationRuntimeStatus.Failed, m.RuntimeStatus);
        }
        var before = await OrchestrationTestKit.JournalAsync(store, runId);
        Assert.Contains(before, e => (string?)e["kind"] == "state");
        // Second life: a new engine (as after a crash of the process), resumed from the journal.
        await using (var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store)))
        {
            var runs = new RunsService(engine.Client, store);
            var state = await runs.LastStateAsync(runId, default);
            string instance = await runs.ContinueAsync(runId, state);
            Assert.Equal($"{runId}.r1", instance);
            var (m, _) = await OrchestrationTestKit.WaitAsync(engine.Client, instance);
            Assert.Equal(OrchestrationRuntimeStatus.Completed, m.RuntimeStatus);
            Assert.Equal(runId, m.ReadOutputAs<RunSummary>()!.RunId);
        }
        var after = await OrchestrationTestKit.JournalAsync(store, runId);
        // Growth cycles completed before the failure were not redone.
        foreach (var e in before.Where(e => (string?)e["kind"] is "growth" or "state"))
            Assert.Equal((string?)e["writtenAt"], (string?)after.Single(a => (string?)a["key"] == (string?)e["key"])["writtenAt"]);
    }

    [Fact]
    public async Task EveryFinalCheckpointCarriesTheRunsNormalisationSoItScoresAsTheReportSaysOnAnyCopyOfTheData()
    {
        var store = Store();
        await using var engine = await OrchestrationTestKit.StartEngineAsync(new RunSteps(store));
        var runs = new RunsService(engine.Client, store);
        var spec = OrchestrationTestKit.TinyGrowth(maxEpochs: 2) with
        {
            Quantization = new ScaleGrow.Quantization.QuantizationOptions { Bits = 8, CalibrationSamples = 32 },
        };
        string runId = await runs.StartAsync(spec, NewRunId("norm"));
        var (metadata, _) = await OrchestrationTestKit.WaitAsync(engine.Client, runId);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, metadata.RuntimeStatus);
        var summary = metadata.ReadOutputAs<RunSummary>()!;

        using var runData = ScaleGrow.Data.DatasetLoader.Load(spec.Data);
        foreach (var path in new[] { summary.Model, summary.FusedModel, summary.Quantized!.Model })
        {
            var (model, meta) = ScaleGrow.Checkpoints.ModelIO.LoadModel(await store.ReadAllBytesAsync(path), path);
            model.Module.Dispose();
            var recorded = ScaleGrow.Data.InputNormalization.FromMetadata(meta, path);
            Assert.NotNull(recorded);
            Assert.Equal(runData.Mean, recorded.Mean);
            Assert.Equal(runData.Std, recorded.Std);
        }
        // What `scalegrow eval --model final/model.fused.safetensors --limit 200` does: the full training set's
        // statistics differ from those of the run's 480 training images, the checkpoint's are used.
        var (fused, fusedMeta) = ScaleGrow.Checkpoints.ModelIO.LoadModel(
            await store.ReadAllBytesAsync(summary.FusedModel), summary.FusedModel);
        var (evalData, note) = ImageRunData.ForCheckpoint(fusedMeta,
            new ScaleGrow.Data.DatasetSpec(TestLimit: 200), summary.FusedModel);
        using (evalData)
        using (fused.Module)
        {
            Assert.Null(note);
            var again = Evaluation.Evaluate(fused, evalData, 500, measureLatency: false, default);
            Assert.Equal(summary.Evaluation.Accuracy, again.Accuracy);
            Assert.Equal(summary.Evaluation.Loss, again.Loss, 6);
        }
    }
}

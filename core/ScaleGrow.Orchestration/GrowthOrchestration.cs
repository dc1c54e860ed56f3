using Microsoft.DurableTask;
using ScaleGrow.Growth;
using ScaleGrow.Models;
using ScaleGrow.Runs;
using ScaleGrow.Training;

namespace ScaleGrow.Orchestration;

/// <summary>The input of a growth run instance: the run id, and the state to continue from (null = a new run).</summary>
public sealed record GrowthRunInput(string RunId, GrowthRunState? State);

/// <summary>
/// The growth loop of algorithm 3-1 as a Durable orchestration. Deterministic: decisions come from activity results,
/// the run's seed and the pure <see cref="GrowthPlanner"/>; time from the context; no I/O, no tensors. Every few
/// growth cycles it continues as new so its history stays small; a <c>stop</c> event makes it finish gracefully after
/// the current step.
/// </summary>
public static class GrowthOrchestration
{
    /// <summary>Growth cycles per orchestration execution before ContinueAsNew.</summary>
    public const int CyclesPerExecution = 4;

    public static async Task<RunSummary?> RunAsync(TaskOrchestrationContext context, GrowthRunInput input)
    {
        var state = input.State ?? await InitializeAsync(context, input.RunId);
        var stopEvent = context.WaitForExternalEvent<string>(TaskNames.StopEvent);
        int cycles = 0;
        while (true)
        {
            if (stopEvent.IsCompleted && !state.StopRequested)
                state = RequestStop(state, "stop requested");
            Publish(context, state);
            switch (state.Phase)
            {
                case RunPhase.Grow:
                case RunPhase.Train:
                case RunPhase.FineTune:
                    state = await TrainAsync(context, state);
                    if (state.Phase != RunPhase.Grow || !AtGrowthPoint(state)) break;
                    state = await GrowAsync(context, state);
                    if (++cycles >= CyclesPerExecution && state.Phase == RunPhase.Grow)
                    {
                        context.ContinueAsNew(new GrowthRunInput(state.RunId,
                            state with { Executions = state.Executions + 1 }), preserveUnprocessedEvents: true);
                        return null;
                    }
                    break;
                case RunPhase.Finalize:
                    return await FinalizeAsync(context, state);
                case RunPhase.Deleted:
                    return null; // the files are being removed: end without writing anything

                default:
                    throw new InvalidOperationException($"run {state.RunId}: unexpected phase {state.Phase}");
            }
        }
    }

    private static async Task<GrowthRunState> InitializeAsync(TaskOrchestrationContext context, string runId)
    {
        var init = await context.CallActivityAsync<InitializeRunResult>(InitializeRunStep.Name,
            new InitializeRunInput(runId), Retry);
        var s = init.Settings;
        bool grow = s.Kind == RunKind.Grow;
        // A scale run first trains the model it will expand (its pretraining phase; none when it starts from a
        // checkpoint), then expands and trains the given epochs on a fresh schedule.
        int phaseEnd = grow ? s.Growth.MaxEpochs : s.Kind == RunKind.Scale ? s.PretrainEpochs : s.Epochs;
        double totalEpochs = grow ? s.Growth.MaxEpochs + s.Growth.FineTuneEpochs : phaseEnd;
        return new GrowthRunState
        {
            RunId = runId, Settings = s, Phase = grow ? RunPhase.Grow : RunPhase.Train, Checkpoint = init.Checkpoint,
            NextStep = init.Checkpoint.Step + 1, Position = TrainingPosition.Start,
            ArchitectureJson = init.ArchitectureJson, Arch = init.Arch, Parameters = init.Parameters,
            Schedule = new ScheduleSegment(s.Training.LearningRate, s.Training.MinLearningRate, 0, totalEpochs,
                s.Training.WarmupEpochs),
            StartedUtc = context.CurrentUtcDateTime, PhaseEndEpoch = phaseEnd, Device = init.Device,
        };
    }

    /// <summary>
    /// Whether training stands at a growth point of the growth phase: the end of an interval, or with
    /// <c>intervalsPerEpoch</c> > 1 one of the points inside an epoch (a time-bounded split never stops on one).
    /// </summary>
    private static bool AtGrowthPoint(GrowthRunState state)
    {
        var g = state.Settings.Growth;
        return state.Position.Batch == 0
            ? state.Position.Epoch % g.IntervalEpochs == 0
            : GrowthPoints.IsInsideEpochPoint(state.Position, g.PointsPerEpoch(), state.BatchesPerEpoch);
    }

    /// <summary>Epochs trained so far, fractional at a point inside an epoch.</summary>
    private static double EpochsTrained(GrowthRunState state) => state.Position.Epoch
        + (state.Position.Batch > 0 && state.BatchesPerEpoch > 0 ? (double)state.Position.Batch / state.BatchesPerEpoch : 0);

    /// <summary>Trains up to the next growth point (or the phase's end), in time-bounded pieces.</summary>
    private static async Task<GrowthRunState> TrainAsync(TaskOrchestrationContext context, GrowthRunState state)
    {
        int until = state.PhaseEndEpoch, untilPart = 0, parts = 1;
        if (state.Phase == RunPhase.Grow)
        {
            int interval = state.Settings.Growth.IntervalEpochs;
            parts = state.Settings.Growth.PointsPerEpoch();
            var (epoch, part) = parts > 1
                ? GrowthPoints.Next(state.Position, parts, state.BatchesPerEpoch)
                : ((state.Position.Epoch / interval + 1) * interval, 0);
            if (epoch < until) (until, untilPart) = (epoch, part);
        }
        // A stop ends training in every phase: the training step already halted between batches, so calling it
        // again would only write another checkpoint with no progress (the loop issue 16 found).
        if (state.StopRequested) return Stopped(state);
        if (GrowthPoints.Before(state.Position, until, untilPart, parts, state.BatchesPerEpoch))
        {
            var result = await context.CallActivityAsync<TrainIntervalResult>(TrainIntervalStep.Name,
                new TrainIntervalInput(state.RunId, state.Checkpoint, state.NextStep, state.Position, until,
                    state.Schedule, PhaseName(state.Phase), state.Settings.MaxIntervalSeconds, untilPart, parts), Retry);
            var progress = state.Progress;
            foreach (var e in result.Epochs)
                progress = StoppingRules.RecordEpoch(progress, e.ValidationAccuracy, state.Settings.Growth.Stopping);
            if (result.Point is { } point)
                progress = StoppingRules.RecordEpoch(progress, point.ValidationAccuracy, state.Settings.Growth.Stopping);
            // A trial of a sweep tells its sweep how it is doing, for early stopping (ASHA) at the sweep's rungs.
            if (context.Parent is { } parent && result.Epochs.Count > 0)
                context.SendEvent(parent.InstanceId, TaskNames.TrialEpochsEvent, new ScaleGrow.Sweeps.TrialEpochs(
                    state.RunId, result.Epochs.Select(e => e.Epoch + 1).ToList(),
                    result.Epochs.Select(e => e.ValidationAccuracy).ToList()));
            state = state with
            {
                Checkpoint = result.Checkpoint,
                NextStep = Math.Max(state.NextStep, result.Checkpoint.Step + 1),
                Position = result.Position,
                Progress = progress,
                LastValidationAccuracy = result.Point?.ValidationAccuracy
                    ?? (result.Epochs.Count > 0 ? result.Epochs[^1].ValidationAccuracy : state.LastValidationAccuracy),
                BatchesPerEpoch = result.BatchesPerEpoch > 0 ? result.BatchesPerEpoch : state.BatchesPerEpoch,
                Device = result.Device ?? state.Device,
            };
            if (result.DeleteRequested) return state with { Phase = RunPhase.Deleted };
            if (result.StopRequested && !state.StopRequested) state = RequestStop(state, "stop requested");
            if (state.StopRequested) return Stopped(state);
            if (state.Position.Batch != 0) return state; // split interval, or a growth point inside an epoch
        }
        if (state.Position.Epoch >= state.PhaseEndEpoch)
            return state.Phase switch
            {
                RunPhase.Grow => await EnterFineTuneAsync(context, state,
                    $"growth phase ended at epoch {state.PhaseEndEpoch}"),
                RunPhase.Train when state.Settings.Kind == RunKind.Scale && !state.Expanded =>
                    await ExpandAsync(context, state),
                _ => EnterFinalize(state),
            };
        return state;
    }

    /// <summary>Scale runs: the ScaleNet expansion, then the training phase of the expanded model.</summary>
    private static async Task<GrowthRunState> ExpandAsync(TaskOrchestrationContext context, GrowthRunState state)
    {
        var result = await context.CallActivityAsync<ExpandResult>(ExpandStep.Name,
            new ExpandInput(state.RunId, state.Checkpoint, state.NextStep), Retry);
        var s = state.Settings;
        int start = state.Position.Epoch;
        return state with
        {
            Expanded = true,
            Checkpoint = result.Checkpoint,
            NextStep = result.Checkpoint.Step + 1,
            ArchitectureJson = result.ArchitectureJson,
            Arch = result.Arch,
            Parameters = result.Parameters,
            Phase = RunPhase.Train,
            PhaseEndEpoch = start + s.Epochs,
            Schedule = new ScheduleSegment(s.Training.LearningRate, s.Training.MinLearningRate, start, s.Epochs,
                s.Training.WarmupEpochs),
        };
    }

    /// <summary>One growth cycle at a growth point: stopping rules, importance, decision, insertion, optimizer.</summary>
    private static async Task<GrowthRunState> GrowAsync(TaskOrchestrationContext context, GrowthRunState state)
    {
        var options = state.Settings.Growth;
        double elapsed = (context.CurrentUtcDateTime - state.StartedUtc).TotalSeconds;
        var progress = StoppingRules.AtGrowthPoint(state.Progress, options.Stopping, elapsed);
        if (state.StopRequested) return Stopped(state with { Progress = progress });
        if (progress.StopReason is { } stoppedBy)
            return await EnterFineTuneAsync(context, state with { Progress = progress }, stoppedBy);

        var scores = await context.CallActivityAsync<ImportanceReport>(ScoreImportanceStep.Name,
            new ScoreImportanceInput(state.RunId, state.Checkpoint), Retry);
        var spec = ArchitectureSpec.FromJson(state.ArchitectureJson, $"run {state.RunId}");
        var decision = GrowthPlanner.Decide(spec, scores, progress, options, state.Settings.Seed);
        if (decision.StopReason is { } reason)
            return await EnterFineTuneAsync(context, state with { Progress = progress }, reason);

        int step = state.NextStep;
        var inserted = await context.CallActivityAsync<InsertModuleResult>(InsertModuleStep.Name,
            new InsertModuleInput(state.RunId, state.Checkpoint, step, decision.Spec!.ToJson(), decision.Action!,
                options.Init, Seeds.Derive(state.Settings.Seed, "init", progress.Growths), state.Position.Epoch,
                EpochsTrained(state)), Retry);
        var migrated = await context.CallActivityAsync<RunCheckpoint>(MigrateOptimizerStep.Name,
            new MigrateOptimizerInput(state.RunId, state.Checkpoint, step, inserted.Model, options.OptimizerMigration),
            Retry);
        bool width = inserted.Action.Kind == GrowthKind.Width;
        state = state with
        {
            BeforeLastGrowth = new PreGrowthModel(state.Checkpoint, state.ArchitectureJson, state.Arch,
                state.Parameters, state.Position.Epoch),
            Checkpoint = migrated,
            NextStep = step + 1,
            ArchitectureJson = inserted.ArchitectureJson,
            Arch = inserted.Arch,
            Parameters = inserted.Parameters,
            Progress = progress with
            {
                Growths = progress.Growths + 1,
                WidthGrowths = progress.WidthGrowths + (width ? 1 : 0),
                DepthGrowths = progress.DepthGrowths + (width ? 0 : 1),
                LastDepthBlock = width ? progress.LastDepthBlock : inserted.Action.Block,
            },
        };
        await context.CallActivityAsync(RecordProgressStep.Name, state, Retry);
        return state;
    }

    private static async Task<RunSummary> FinalizeAsync(TaskOrchestrationContext context, GrowthRunState state)
    {
        Publish(context, state);
        var fused = await context.CallActivityAsync<FuseResult>(FuseStep.Name,
            new FuseInput(state.RunId, state.Checkpoint), Retry);
        var evaluation = await context.CallActivityAsync<EvaluationResult>(EvaluateStep.Name,
            new EvaluateInput(state.RunId, fused.FusedModel, MeasureLatency: true), Retry);
        QuantizeModelResult? quantized = null;
        if (state.Settings.Quantize)
            quantized = await context.CallActivityAsync<QuantizeModelResult>(QuantizeModelStep.Name,
                new QuantizeModelInput(state.RunId, fused.FusedModel), Retry);
        ExportModelResult? exported = null;
        if (state.Settings.Export)
            exported = await context.CallActivityAsync<ExportModelResult>(ExportModelStep.Name,
                new ExportModelInput(state.RunId, fused.FusedModel, quantized?.Model), Retry);
        double wall = (context.CurrentUtcDateTime - state.StartedUtc).TotalSeconds;
        var summary = await context.CallActivityAsync<RunSummary>(FinalizeStep.Name,
            new FinalizeInput(state.RunId, state.Checkpoint.Model, fused.FusedModel, evaluation, state.StopReason, wall,
                quantized, exported), Retry);
        state = state with { Phase = RunPhase.Done, FusedModel = fused.FusedModel, Evaluation = evaluation };
        context.SetCustomStatus(StatusOf(state) with { Accuracy = evaluation.Accuracy });
        return summary;
    }

    private static GrowthRunState RequestStop(GrowthRunState state, string reason) =>
        state with { StopRequested = true, StopReason = state.StopReason ?? reason };

    /// <summary>
    /// Growth has ended: the fine-tuning phase follows, on the plain network when the spec asks to merge the
    /// branches first (<c>growth.fineTuneBranches: merge</c>; a merge with nothing to merge changes nothing).
    /// </summary>
    private static async Task<GrowthRunState> EnterFineTuneAsync(TaskOrchestrationContext context,
        GrowthRunState state, string reason)
    {
        state = EnterFineTune(state, reason);
        if (state.Phase != RunPhase.FineTune || state.Settings.Growth.FineTuneBranches != FineTuneBranches.Merge)
            return state;
        int step = state.NextStep;
        var merged = await context.CallActivityAsync<MergeBranchesResult>(MergeBranchesStep.Name,
            new MergeBranchesInput(state.RunId, state.Checkpoint, step, Seeds.Derive(state.Settings.Seed, "merge", 0),
                state.Position.Epoch), Retry);
        if (merged.Model is null) return state;
        var migrated = await context.CallActivityAsync<RunCheckpoint>(MigrateOptimizerStep.Name,
            new MigrateOptimizerInput(state.RunId, state.Checkpoint, step, merged.Model,
                OptimizerMigrationStrategy.Inherit, merged.Rewritten), Retry);
        return state with
        {
            Checkpoint = migrated,
            NextStep = step + 1,
            ArchitectureJson = merged.ArchitectureJson,
            Arch = merged.Arch,
            Parameters = merged.Parameters,
        };
    }

    private static GrowthRunState EnterFineTune(GrowthRunState state, string reason)
    {
        var g = state.Settings.Growth;
        // M epochs follow, decaying to the minimum (docs/growth.md); a stop never gets here (see Stopped). They start a
        // new cosine from the current rate, except that with `continue` a growth phase that ran to its end leaves the
        // planned cosine in place: it already ends where fine-tuning ends.
        // Growth that stops at a point inside an epoch (intervalsPerEpoch > 1) fine-tunes the rest of that epoch too.
        int epochs = g.FineTuneEpochs;
        int start = state.Position.Epoch;
        int end = start + epochs + (state.Position.Batch > 0 ? 1 : 0);
        double current = state.Schedule.For(1).At(start);
        bool keepPlanned = g.FineTuneSchedule == FineTuneSchedule.Continue && state.Position.Batch == 0
                           && Math.Abs(state.Schedule.StartEpoch + state.Schedule.Epochs - end) < 1e-9;
        return state with
        {
            Phase = epochs > 0 ? RunPhase.FineTune : RunPhase.Finalize,
            StopReason = state.StopReason ?? reason,
            PhaseEndEpoch = end,
            Schedule = keepPlanned ? state.Schedule
                : new ScheduleSegment(current, state.Settings.Training.MinLearningRate, start, end - start, 0),
        };
    }

    private static GrowthRunState EnterFinalize(GrowthRunState state) => state with { Phase = RunPhase.Finalize };

    /// <summary>
    /// A graceful stop: no more training or fine-tuning, straight to fuse, evaluate and report. If the model grew and
    /// has not trained a full epoch since, the model from before that growth is delivered instead (a fresh layer or
    /// branch with inherited initialisation can cost most of the accuracy until it trains), and the stop reason says so.
    /// </summary>
    private static GrowthRunState Stopped(GrowthRunState state)
    {
        var reason = state.StopReason ?? "stop requested";
        if (state.BeforeLastGrowth is { } before && state.Position.Epoch <= before.GrowthEpoch)
            return state with
            {
                Phase = RunPhase.Finalize,
                Checkpoint = before.Checkpoint,
                ArchitectureJson = before.ArchitectureJson,
                Arch = before.Arch,
                Parameters = before.Parameters,
                BeforeLastGrowth = null,
                StopReason = $"{reason}; delivered the model from before the last growth ({before.Arch}, step " +
                             $"{before.Checkpoint.Step}): the grown {state.Arch} had not trained a full epoch " +
                             $"(stopped at epoch {state.Position.Epoch + 1}, batch {state.Position.Batch})",
            };
        return state with { Phase = RunPhase.Finalize, StopReason = reason };
    }

    private static string PhaseName(RunPhase phase) => phase switch
    {
        RunPhase.Grow => "grow",
        RunPhase.FineTune => "fine-tune",
        _ => "train",
    };

    private static void Publish(TaskOrchestrationContext context, GrowthRunState state) =>
        context.SetCustomStatus(StatusOf(state));

    private static RunStatus StatusOf(GrowthRunState s) => new(s.Phase switch
    {
        RunPhase.Grow => "grow",
        RunPhase.Train => "train",
        RunPhase.FineTune => "fine-tune",
        RunPhase.Finalize => "finalize",
        _ => "done",
    }, s.Checkpoint.Step, s.Position.Epoch, s.Arch, s.Parameters, s.LastValidationAccuracy, s.StopReason, s.Device);

    /// <summary>
    /// Activities are retried with backoff for transient failures; a bad spec or a corrupt checkpoint
    /// (<see cref="ScaleGrowException"/>) fails the run at once with its message.
    /// </summary>
    public static readonly TaskOptions Retry = TaskOptions.FromRetryPolicy(
        new RetryPolicy(maxNumberOfAttempts: 4, firstRetryInterval: TimeSpan.FromSeconds(1), backoffCoefficient: 2,
            maxRetryInterval: TimeSpan.FromSeconds(30))
        {
            HandleFailure = ShouldRetry,
        });

    /// <summary>Transient failures are retried; a ScaleGrowException (bad spec, corrupt file) is final.</summary>
    public static bool ShouldRetry(TaskFailureDetails failure) => !failure.IsCausedBy<ScaleGrowException>();
}

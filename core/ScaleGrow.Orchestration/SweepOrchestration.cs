using Microsoft.DurableTask;
using ScaleGrow.Runs;
using ScaleGrow.Sweeps;

namespace ScaleGrow.Orchestration;

/// <summary>The input of a sweep instance: the sweep id (everything else is in its spec and journal).</summary>
public sealed record SweepRunInput(string SweepId);

/// <summary>
/// A sweep as a Durable orchestration: every trial is the growth run orchestration, unchanged, started as a child
/// orchestration; up to the concurrency limit run at once (fan-out), each finished one is journaled as it ends
/// (fan-in). A trial that fails is recorded as failed and the sweep goes on. With early stopping (ASHA), running
/// trials' validation accuracies are read every few seconds and a trial in the bottom fraction at a rung is stopped
/// gracefully. A <c>stop</c> event (or the wall-clock budget) stops every running trial gracefully and starts no
/// more. Resuming is starting it again: <see cref="SweepSteps.PrepareTrialAsync"/> never re-runs a finished trial and
/// continues a started one from its own last growth cycle. Deterministic: decisions come only from activity results
/// and the context's clock; no I/O, no tensors.
/// </summary>
public static class SweepOrchestration
{
    public static async Task<SweepSummary?> RunAsync(TaskOrchestrationContext context, SweepRunInput input)
    {
        string sweepId = input.SweepId;
        var plan = await context.CallActivityAsync<SweepPlan>(PlanSweepStep.Name, new PlanSweepInput(sweepId),
            GrowthOrchestration.Retry);
        var stopEvent = context.WaitForExternalEvent<string>(TaskNames.StopEvent);
        DateTime? deadline = plan.WallClockSeconds is { } s ? plan.StartedUtc.AddSeconds(s) : null;
        var asha = plan.EarlyStopping is { } e ? new AshaPruner(e) : null;
        var epochsEvent = asha is null ? null : context.WaitForExternalEvent<TrialEpochs>(TaskNames.TrialEpochsEvent);
        var trialEpochs = new Dictionary<string, Dictionary<int, double>>();

        var running = new List<RunningTrial>();
        var pruned = new Dictionary<string, string>();
        int next = 0, finished = 0, failed = 0, prunedCount = 0;
        string? stopReason = null;
        while (true)
        {
            // Fan out: start trials up to the limit, unless the sweep is stopping.
            while (stopReason is null && running.Count < plan.Parallel && next < plan.Trials)
            {
                int index = next++;
                var prepared = await context.CallActivityAsync<PrepareTrialResult>(PrepareTrialStep.Name,
                    new PrepareTrialInput(sweepId, index), GrowthOrchestration.Retry);
                if (prepared.Start == TrialStart.Skip)
                {
                    stopReason = "stop requested";
                    break;
                }
                if (prepared.Start == TrialStart.Done)
                {
                    finished++;
                    if (prepared.Done is { } done)
                    {
                        if (done.Status == "failed") failed++;
                        if (done.Status == "pruned") prunedCount++;
                        asha?.Observe(done.RunId, done.ValidationAccuracies, judge: false);
                    }
                    continue;
                }
                var child = context.CallSubOrchestratorAsync<RunSummary?>(TaskNames.GrowthRun,
                    new GrowthRunInput(prepared.RunId, prepared.State),
                    new SubOrchestrationOptions { InstanceId = prepared.InstanceId! });
                running.Add(new RunningTrial(index, prepared.RunId, prepared.InstanceId!, child));
            }
            Publish(context, plan, finished, failed, prunedCount, running, stopReason);
            if (running.Count == 0) break;

            // Fan in: wait for a trial to end, a stop, the deadline, or (early stopping) a trial's epochs.
            using var timers = new CancellationTokenSource();
            var waits = running.Select(r => (Task)r.Task).ToList();
            if (stopReason is null) waits.Add(stopEvent);
            Task? budget = deadline is { } d && stopReason is null ? context.CreateTimer(d, timers.Token) : null;
            if (budget is not null) waits.Add(budget);
            if (epochsEvent is not null) waits.Add(epochsEvent);
            var winner = await Task.WhenAny(waits);
            timers.Cancel();

            if (stopReason is null && (stopEvent.IsCompleted || winner == budget))
            {
                stopReason = stopEvent.IsCompleted ? "stop requested"
                    : $"the sweep's wall-clock budget of {plan.WallClockSeconds:0} s ran out";
                await StopTrialsAsync(context, sweepId, running);
            }
            if (epochsEvent is { IsCompleted: true } && asha is not null)
            {
                // Events are kept until waited for: the next waiter takes the next trial's epochs.
                var reported = epochsEvent.Result;
                epochsEvent = context.WaitForExternalEvent<TrialEpochs>(TaskNames.TrialEpochsEvent);
                if (!trialEpochs.TryGetValue(reported.RunId, out var seen)) trialEpochs[reported.RunId] = seen = [];
                for (int i = 0; i < reported.Epochs.Count; i++) seen[reported.Epochs[i]] = reported.ValidationAccuracies[i];
                var trial = running.FirstOrDefault(r => r.RunId == reported.RunId);
                if (trial is not null && stopReason is null && !pruned.ContainsKey(trial.RunId)
                    && asha.Observe(trial.RunId, seen) is { } reason)
                {
                    pruned[trial.RunId] = reason;
                    await StopTrialsAsync(context, sweepId, [trial]);
                }
            }

            // Record every trial that ended, in trial order.
            foreach (var trial in running.Where(r => r.Task.IsCompleted).OrderBy(r => r.Index).ToList())
            {
                running.Remove(trial);
                string? error = null;
                bool deleted = false;
                try
                {
                    deleted = await trial.Task is null;
                }
                catch (TaskFailedException failure)
                {
                    error = (failure.FailureDetails.InnerFailure ?? failure.FailureDetails).ErrorMessage
                        .ReplaceLineEndings(" ");
                }
                var recorded = await context.CallActivityAsync<RecordTrialResult>(RecordTrialStep.Name,
                    new RecordTrialInput(sweepId, trial.Index, deleted, error, pruned.GetValueOrDefault(trial.RunId),
                        stopReason is not null), GrowthOrchestration.Retry);
                if (recorded.SweepDeleted) return null; // `runs delete` is removing the sweep: write nothing more
                finished++;
                if (recorded.Trial.Status == "failed") failed++;
                if (recorded.Trial.Status == "pruned") prunedCount++;
                asha?.Observe(trial.RunId, recorded.Trial.ValidationAccuracies, judge: false);
            }
        }

        context.SetCustomStatus(new SweepStatus("finalize", plan.Trials, finished, failed, prunedCount, [], stopReason));
        double wall = (context.CurrentUtcDateTime - plan.StartedUtc).TotalSeconds;
        var summary = await context.CallActivityAsync<SweepSummary>(FinishSweepStep.Name,
            new FinishSweepInput(sweepId, stopReason, wall), GrowthOrchestration.Retry);
        context.SetCustomStatus(new SweepStatus("done", plan.Trials, finished, failed, prunedCount, [], stopReason));
        return summary;
    }

    /// <summary>A graceful stop of each trial: the event ends its loop between steps, the control flag halts a
    /// training step between batches; the trial then fuses, evaluates and reports.</summary>
    private static async Task StopTrialsAsync(TaskOrchestrationContext context, string sweepId,
        IReadOnlyList<RunningTrial> trials)
    {
        if (trials.Count == 0) return;
        await context.CallActivityAsync<bool>(StopTrialsStep.Name,
            new StopTrialsInput(sweepId, trials.Select(t => t.RunId).ToList()), GrowthOrchestration.Retry);
        foreach (var t in trials) context.SendEvent(t.InstanceId, TaskNames.StopEvent, "stop");
    }

    private static void Publish(TaskOrchestrationContext context, SweepPlan plan, int finished, int failed, int pruned,
        IReadOnlyList<RunningTrial> running, string? stopReason) =>
        context.SetCustomStatus(new SweepStatus(stopReason is null ? "running" : "stopping", plan.Trials, finished,
            failed, pruned, running.Select(r => r.RunId).ToList(), stopReason));

    private sealed record RunningTrial(int Index, string RunId, string InstanceId, Task<RunSummary?> Task);
}

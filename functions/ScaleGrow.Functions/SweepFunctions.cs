using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using ScaleGrow.Orchestration;
using ScaleGrow.Sweeps;

namespace ScaleGrow.Functions;

/// <summary>Binds the sweep orchestration and its activities (core/ScaleGrow.Orchestration) to Durable Functions; its
/// trials are the GrowthRun orchestration bound in <see cref="GrowthFunctions"/>, started as sub-orchestrations.</summary>
public sealed class SweepFunctions(SweepSteps sweeps)
{
    [Function(TaskNames.SweepRun)]
    public static Task<SweepSummary?> SweepRun([OrchestrationTrigger] TaskOrchestrationContext context) =>
        SweepOrchestration.RunAsync(context, context.GetInput<SweepRunInput>()!);

    [Function(TaskNames.PlanSweep)]
    public Task<SweepPlan> PlanSweep([ActivityTrigger] PlanSweepInput input) => sweeps.PlanAsync(input);

    [Function(TaskNames.PrepareTrial)]
    public Task<PrepareTrialResult> PrepareTrial([ActivityTrigger] PrepareTrialInput input) =>
        sweeps.PrepareTrialAsync(input);

    [Function(TaskNames.RecordTrial)]
    public Task<RecordTrialResult> RecordTrial([ActivityTrigger] RecordTrialInput input) => sweeps.RecordTrialAsync(input);

    [Function(TaskNames.StopTrials)]
    public Task<bool> StopTrials([ActivityTrigger] StopTrialsInput input) => sweeps.StopTrialsAsync(input);

    [Function(TaskNames.FinishSweep)]
    public Task<SweepSummary> FinishSweep([ActivityTrigger] FinishSweepInput input) => sweeps.FinishAsync(input);
}

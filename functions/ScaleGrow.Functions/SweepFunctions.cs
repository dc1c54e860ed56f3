using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using ScaleGrow.Orchestration;
using ScaleGrow.Sweeps;

namespace ScaleGrow.Functions;

/// <summary>
/// Binds the sweep orchestration (core/ScaleGrow.Orchestration) to Durable Functions (its activities:
/// <see cref="ActivityFunctions"/>); its trials are the GrowthRun orchestration bound in <see cref="GrowthFunctions"/>,
/// started as sub-orchestrations.
/// </summary>
public static class SweepFunctions
{
    [Function(TaskNames.SweepRun)]
    public static Task<SweepSummary?> SweepRun([OrchestrationTrigger] TaskOrchestrationContext context) =>
        SweepOrchestration.RunAsync(context, context.GetInput<SweepRunInput>()!);
}

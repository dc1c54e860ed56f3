using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;

namespace ScaleGrow.Functions;

/// <summary>Binds the growth orchestration (core/ScaleGrow.Orchestration) to Durable Functions; its activities are
/// bound in <see cref="ActivityFunctions"/>.</summary>
public static class GrowthFunctions
{
    [Function(TaskNames.GrowthRun)]
    public static Task<RunSummary?> GrowthRun([OrchestrationTrigger] TaskOrchestrationContext context) =>
        GrowthOrchestration.RunAsync(context, context.GetInput<GrowthRunInput>()!);
}

using Microsoft.DurableTask;
using ScaleGrow.Runs;
using ScaleGrow.Sweeps;

namespace ScaleGrow.Orchestration;

/// <summary>
/// Registers the orchestrations and the <see cref="ActivityTable"/>'s activities with a Durable Task worker (the
/// CLI's embedded engines). The Functions app binds the same orchestrations and table through its trigger functions.
/// </summary>
public static class ScaleGrowTasks
{
    /// <summary>Registers the orchestrations and the activities of <see cref="ActivityTable.For"/>.</summary>
    public static DurableTaskRegistry Register(DurableTaskRegistry registry, RunSteps steps, UploadSteps? uploads = null,
        SweepSteps? sweeps = null) => Register(registry, ActivityTable.For(steps, uploads, sweeps));

    /// <summary>Registers the orchestrations, and every activity of <paramref name="activities"/>.</summary>
    public static DurableTaskRegistry Register(DurableTaskRegistry registry, ActivityTable activities)
    {
        registry.AddOrchestratorFunc<GrowthRunInput, RunSummary?>(TaskNames.GrowthRun,
            (context, input) => GrowthOrchestration.RunAsync(context, input));
        if (activities.Contains(PlanSweepStep.Name))
            registry.AddOrchestratorFunc<SweepRunInput, SweepSummary?>(TaskNames.SweepRun,
                (context, input) => SweepOrchestration.RunAsync(context, input));
        if (activities.Contains(ValidateUploadStep.Name))
            registry.AddOrchestratorFunc<UploadRef, UploadOutcome>(TaskNames.QuantizeUpload,
                (context, upload) => QuantizeUploadOrchestration.RunAsync(context, upload));
        activities.AddTo(new RegistrySink(registry));
        return registry;
    }

    private sealed class RegistrySink(DurableTaskRegistry registry) : IActivitySink
    {
        public void Add<TInput, TOutput>(string name, Func<TInput, Task<TOutput>> activity) =>
            registry.AddActivityFunc<TInput, TOutput>(name, (_, input) => activity(input));
    }
}

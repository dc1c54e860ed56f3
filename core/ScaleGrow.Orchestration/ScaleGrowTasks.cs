using Microsoft.DurableTask;
using ScaleGrow.Growth;
using ScaleGrow.Runs;
using ScaleGrow.Sweeps;

namespace ScaleGrow.Orchestration;

/// <summary>
/// Registers the orchestrations and activities with a Durable Task worker (the CLI's embedded engines). The Functions
/// app binds the same orchestration and step methods through its own trigger functions.
/// </summary>
public static class ScaleGrowTasks
{
    /// <summary>Registers everything with a Durable Task worker.</summary>
    public static DurableTaskRegistry Register(DurableTaskRegistry registry, IRunSteps steps, UploadSteps? uploads = null,
        SweepSteps? sweeps = null)
    {
        registry.AddOrchestratorFunc<GrowthRunInput, RunSummary?>(TaskNames.GrowthRun,
            (context, input) => GrowthOrchestration.RunAsync(context, input));
        if (sweeps is not null)
        {
            registry.AddOrchestratorFunc<SweepRunInput, SweepSummary?>(TaskNames.SweepRun,
                (context, input) => SweepOrchestration.RunAsync(context, input));
            SweepActivities(new RegistrySink(registry), sweeps);
        }
        if (uploads is not null)
            registry.AddOrchestratorFunc<UploadRef, UploadOutcome>(TaskNames.QuantizeUpload,
                (context, upload) => QuantizeUploadOrchestration.RunAsync(context, upload));
        Activities(new RegistrySink(registry), steps, uploads);
        return registry;
    }

    /// <summary>Every activity, described once, for any host (a Durable Task registry or the direct runner).</summary>
    public static void Activities(IActivitySink sink, IRunSteps steps, UploadSteps? uploads = null)
    {
        sink.Add<InitializeRunInput, InitializeRunResult>(TaskNames.InitializeRun, i => steps.InitializeRunAsync(i));
        sink.Add<TrainIntervalInput, TrainIntervalResult>(TaskNames.TrainInterval, i => steps.TrainIntervalAsync(i));
        sink.Add<ScoreImportanceInput, ImportanceReport>(TaskNames.ScoreImportance, i => steps.ScoreImportanceAsync(i));
        sink.Add<InsertModuleInput, InsertModuleResult>(TaskNames.InsertModule, i => steps.InsertModuleAsync(i));
        sink.Add<MigrateOptimizerInput, RunCheckpoint>(TaskNames.MigrateOptimizer, i => steps.MigrateOptimizerAsync(i));
        sink.Add<MergeBranchesInput, MergeBranchesResult>(TaskNames.MergeBranches, i => steps.MergeBranchesAsync(i));
        sink.Add<GrowthRunState, bool>(TaskNames.RecordProgress, async i =>
        {
            await steps.RecordProgressAsync(i);
            return true;
        });
        sink.Add<FuseInput, FuseResult>(TaskNames.Fuse, i => steps.FuseAsync(i));
        sink.Add<EvaluateInput, EvaluationResult>(TaskNames.Evaluate, i => steps.EvaluateAsync(i));
        sink.Add<ExpandInput, ExpandResult>(TaskNames.Expand, i => steps.ExpandAsync(i));
        sink.Add<QuantizeModelInput, QuantizeModelResult>(TaskNames.QuantizeModel, i => steps.QuantizeModelAsync(i));
        sink.Add<ExportModelInput, ExportModelResult>(TaskNames.ExportModel, i => steps.ExportModelAsync(i));
        sink.Add<FinalizeInput, RunSummary>(TaskNames.Finalize, i => steps.FinalizeAsync(i));
        if (uploads is null) return;
        sink.Add<UploadRef, UploadValidation>(TaskNames.ValidateUpload, u => uploads.ValidateAsync(u));
        sink.Add<RejectUploadInput, UploadOutcome>(TaskNames.RejectUpload, i => uploads.RejectAsync(i.Upload, i.Error));
        sink.Add<UploadRef, UploadOutcome>(TaskNames.Quantize, u => uploads.QuantizeAsync(u));
    }

    /// <summary>The sweep's activities (its trials run the growth run's own).</summary>
    public static void SweepActivities(IActivitySink sink, SweepSteps sweeps)
    {
        sink.Add<PlanSweepInput, SweepPlan>(TaskNames.PlanSweep, i => sweeps.PlanAsync(i));
        sink.Add<PrepareTrialInput, PrepareTrialResult>(TaskNames.PrepareTrial, i => sweeps.PrepareTrialAsync(i));
        sink.Add<RecordTrialInput, RecordTrialResult>(TaskNames.RecordTrial, i => sweeps.RecordTrialAsync(i));
        sink.Add<StopTrialsInput, bool>(TaskNames.StopTrials, i => sweeps.StopTrialsAsync(i));
        sink.Add<FinishSweepInput, SweepSummary>(TaskNames.FinishSweep, i => sweeps.FinishAsync(i));
    }

    private sealed class RegistrySink(DurableTaskRegistry registry) : IActivitySink
    {
        public void Add<TInput, TOutput>(string name, Func<TInput, Task<TOutput>> activity) =>
            registry.AddActivityFunc<TInput, TOutput>(name, (_, input) => activity(input));
    }
}

/// <summary>Receives activity definitions (name, typed function).</summary>
public interface IActivitySink
{
    void Add<TInput, TOutput>(string name, Func<TInput, Task<TOutput>> activity);
}

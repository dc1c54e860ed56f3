using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using ScaleGrow.Growth;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;

namespace ScaleGrow.Functions;

/// <summary>Binds the growth orchestration and its activities (core/ScaleGrow.Orchestration) to Durable Functions.</summary>
public sealed class GrowthFunctions(IRunSteps steps)
{
    [Function(TaskNames.GrowthRun)]
    public static Task<RunSummary?> GrowthRun([OrchestrationTrigger] TaskOrchestrationContext context) =>
        GrowthOrchestration.RunAsync(context, context.GetInput<GrowthRunInput>()!);

    [Function(TaskNames.InitializeRun)]
    public Task<InitializeRunResult> InitializeRun([ActivityTrigger] InitializeRunInput input) =>
        steps.InitializeRunAsync(input);

    [Function(TaskNames.TrainInterval)]
    public Task<TrainIntervalResult> TrainInterval([ActivityTrigger] TrainIntervalInput input) =>
        steps.TrainIntervalAsync(input);

    [Function(TaskNames.ScoreImportance)]
    public Task<ImportanceReport> ScoreImportance([ActivityTrigger] ScoreImportanceInput input) =>
        steps.ScoreImportanceAsync(input);

    [Function(TaskNames.InsertModule)]
    public Task<InsertModuleResult> InsertModule([ActivityTrigger] InsertModuleInput input) =>
        steps.InsertModuleAsync(input);

    [Function(TaskNames.MigrateOptimizer)]
    public Task<RunCheckpoint> MigrateOptimizer([ActivityTrigger] MigrateOptimizerInput input) =>
        steps.MigrateOptimizerAsync(input);

    [Function(TaskNames.MergeBranches)]
    public Task<MergeBranchesResult> MergeBranches([ActivityTrigger] MergeBranchesInput input) =>
        steps.MergeBranchesAsync(input);

    [Function(TaskNames.RecordProgress)]
    public Task RecordProgress([ActivityTrigger] GrowthRunState state) => steps.RecordProgressAsync(state);

    [Function(TaskNames.Fuse)]
    public Task<FuseResult> Fuse([ActivityTrigger] FuseInput input) => steps.FuseAsync(input);

    [Function(TaskNames.Evaluate)]
    public Task<EvaluationResult> Evaluate([ActivityTrigger] EvaluateInput input) => steps.EvaluateAsync(input);

    [Function(TaskNames.Expand)]
    public Task<ExpandResult> Expand([ActivityTrigger] ExpandInput input) => steps.ExpandAsync(input);

    [Function(TaskNames.QuantizeModel)]
    public Task<QuantizeModelResult> QuantizeModel([ActivityTrigger] QuantizeModelInput input) =>
        steps.QuantizeModelAsync(input);

    [Function(TaskNames.ExportModel)]
    public Task<ExportModelResult> ExportModel([ActivityTrigger] ExportModelInput input) =>
        steps.ExportModelAsync(input);

    [Function(TaskNames.Finalize)]
    public Task<RunSummary> Finalize([ActivityTrigger] FinalizeInput input) => steps.FinalizeAsync(input);
}

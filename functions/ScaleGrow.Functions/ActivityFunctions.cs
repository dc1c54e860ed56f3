using Microsoft.Azure.Functions.Worker;
using ScaleGrow.Growth;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;
using ScaleGrow.Sweeps;

namespace ScaleGrow.Functions;

/// <summary>
/// The Functions bindings of every activity in the <see cref="ActivityTable"/>, one line each: the worker finds its
/// triggers at build time, so they cannot be derived from the table at run time. Each binding only names its
/// activity and types and runs the table's entry; <c>tests/…/Functions/ActivityBindingsTests.cs</c> fails when a
/// binding and the table differ (a missing, extra or mistyped binding).
/// </summary>
public sealed class ActivityFunctions(ActivityTable activities)
{
    [Function(InitializeRunStep.Name)]
    public Task<InitializeRunResult> InitializeRun([ActivityTrigger] InitializeRunInput input) =>
        activities.RunAsync<InitializeRunInput, InitializeRunResult>(InitializeRunStep.Name, input);

    [Function(TrainIntervalStep.Name)]
    public Task<TrainIntervalResult> TrainInterval([ActivityTrigger] TrainIntervalInput input) =>
        activities.RunAsync<TrainIntervalInput, TrainIntervalResult>(TrainIntervalStep.Name, input);

    [Function(ScoreImportanceStep.Name)]
    public Task<ImportanceReport> ScoreImportance([ActivityTrigger] ScoreImportanceInput input) =>
        activities.RunAsync<ScoreImportanceInput, ImportanceReport>(ScoreImportanceStep.Name, input);

    [Function(InsertModuleStep.Name)]
    public Task<InsertModuleResult> InsertModule([ActivityTrigger] InsertModuleInput input) =>
        activities.RunAsync<InsertModuleInput, InsertModuleResult>(InsertModuleStep.Name, input);

    [Function(MigrateOptimizerStep.Name)]
    public Task<RunCheckpoint> MigrateOptimizer([ActivityTrigger] MigrateOptimizerInput input) =>
        activities.RunAsync<MigrateOptimizerInput, RunCheckpoint>(MigrateOptimizerStep.Name, input);

    [Function(MergeBranchesStep.Name)]
    public Task<MergeBranchesResult> MergeBranches([ActivityTrigger] MergeBranchesInput input) =>
        activities.RunAsync<MergeBranchesInput, MergeBranchesResult>(MergeBranchesStep.Name, input);

    [Function(RecordProgressStep.Name)]
    public Task<bool> RecordProgress([ActivityTrigger] GrowthRunState state) =>
        activities.RunAsync<GrowthRunState, bool>(RecordProgressStep.Name, state);

    [Function(FuseStep.Name)]
    public Task<FuseResult> Fuse([ActivityTrigger] FuseInput input) =>
        activities.RunAsync<FuseInput, FuseResult>(FuseStep.Name, input);

    [Function(EvaluateStep.Name)]
    public Task<EvaluationResult> Evaluate([ActivityTrigger] EvaluateInput input) =>
        activities.RunAsync<EvaluateInput, EvaluationResult>(EvaluateStep.Name, input);

    [Function(ExpandStep.Name)]
    public Task<ExpandResult> Expand([ActivityTrigger] ExpandInput input) =>
        activities.RunAsync<ExpandInput, ExpandResult>(ExpandStep.Name, input);

    [Function(QuantizeModelStep.Name)]
    public Task<QuantizeModelResult> QuantizeModel([ActivityTrigger] QuantizeModelInput input) =>
        activities.RunAsync<QuantizeModelInput, QuantizeModelResult>(QuantizeModelStep.Name, input);

    [Function(ExportModelStep.Name)]
    public Task<ExportModelResult> ExportModel([ActivityTrigger] ExportModelInput input) =>
        activities.RunAsync<ExportModelInput, ExportModelResult>(ExportModelStep.Name, input);

    [Function(FinalizeStep.Name)]
    public Task<RunSummary> Finalize([ActivityTrigger] FinalizeInput input) =>
        activities.RunAsync<FinalizeInput, RunSummary>(FinalizeStep.Name, input);

    [Function(ValidateUploadStep.Name)]
    public Task<UploadValidation> ValidateUpload([ActivityTrigger] UploadRef upload) =>
        activities.RunAsync<UploadRef, UploadValidation>(ValidateUploadStep.Name, upload);

    [Function(RejectUploadStep.Name)]
    public Task<UploadOutcome> RejectUpload([ActivityTrigger] RejectUploadInput input) =>
        activities.RunAsync<RejectUploadInput, UploadOutcome>(RejectUploadStep.Name, input);

    [Function(QuantizeStep.Name)]
    public Task<UploadOutcome> Quantize([ActivityTrigger] UploadRef upload) =>
        activities.RunAsync<UploadRef, UploadOutcome>(QuantizeStep.Name, upload);

    [Function(PlanSweepStep.Name)]
    public Task<SweepPlan> PlanSweep([ActivityTrigger] PlanSweepInput input) =>
        activities.RunAsync<PlanSweepInput, SweepPlan>(PlanSweepStep.Name, input);

    [Function(PrepareTrialStep.Name)]
    public Task<PrepareTrialResult> PrepareTrial([ActivityTrigger] PrepareTrialInput input) =>
        activities.RunAsync<PrepareTrialInput, PrepareTrialResult>(PrepareTrialStep.Name, input);

    [Function(RecordTrialStep.Name)]
    public Task<RecordTrialResult> RecordTrial([ActivityTrigger] RecordTrialInput input) =>
        activities.RunAsync<RecordTrialInput, RecordTrialResult>(RecordTrialStep.Name, input);

    [Function(StopTrialsStep.Name)]
    public Task<bool> StopTrials([ActivityTrigger] StopTrialsInput input) =>
        activities.RunAsync<StopTrialsInput, bool>(StopTrialsStep.Name, input);

    [Function(FinishSweepStep.Name)]
    public Task<SweepSummary> FinishSweep([ActivityTrigger] FinishSweepInput input) =>
        activities.RunAsync<FinishSweepInput, SweepSummary>(FinishSweepStep.Name, input);
}

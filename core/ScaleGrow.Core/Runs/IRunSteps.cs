using ScaleGrow.Growth;

namespace ScaleGrow.Runs;

/// <summary>
/// The steps of a run, each reading what it needs from the artifact store, doing its work and writing its result
/// under a step-numbered name (DESIGN.md "State lives in blobs"). Every step is idempotent: a retried step redoes
/// only its own work and overwrites its own output. The orchestration's activities are thin wrappers over these.
/// </summary>
public interface IRunSteps
{
    Task<InitializeRunResult> InitializeRunAsync(InitializeRunInput input, CancellationToken cancellationToken = default);
    Task<TrainIntervalResult> TrainIntervalAsync(TrainIntervalInput input, CancellationToken cancellationToken = default);
    Task<ImportanceReport> ScoreImportanceAsync(ScoreImportanceInput input, CancellationToken cancellationToken = default);
    Task<InsertModuleResult> InsertModuleAsync(InsertModuleInput input, CancellationToken cancellationToken = default);
    Task<RunCheckpoint> MigrateOptimizerAsync(MigrateOptimizerInput input, CancellationToken cancellationToken = default);
    Task<MergeBranchesResult> MergeBranchesAsync(MergeBranchesInput input, CancellationToken cancellationToken = default);
    Task RecordProgressAsync(GrowthRunState state, CancellationToken cancellationToken = default);
    Task<FuseResult> FuseAsync(FuseInput input, CancellationToken cancellationToken = default);
    Task<EvaluationResult> EvaluateAsync(EvaluateInput input, CancellationToken cancellationToken = default);
    Task<ExpandResult> ExpandAsync(ExpandInput input, CancellationToken cancellationToken = default);
    Task<QuantizeModelResult> QuantizeModelAsync(QuantizeModelInput input, CancellationToken cancellationToken = default);
    Task<ExportModelResult> ExportModelAsync(ExportModelInput input, CancellationToken cancellationToken = default);
    Task<RunSummary> FinalizeAsync(FinalizeInput input, CancellationToken cancellationToken = default);
}

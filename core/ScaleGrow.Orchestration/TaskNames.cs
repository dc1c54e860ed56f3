namespace ScaleGrow.Orchestration;

/// <summary>Names of the orchestrations, activities and events, shared by both hosts.</summary>
public static class TaskNames
{
    public const string GrowthRun = "GrowthRun";
    public const string QuantizeUpload = "QuantizeUpload";
    public const string SweepRun = "SweepRun";

    public const string InitializeRun = "InitializeRun";
    public const string TrainInterval = "TrainInterval";
    public const string ScoreImportance = "ScoreImportance";
    public const string InsertModule = "InsertModule";
    public const string MigrateOptimizer = "MigrateOptimizer";
    public const string MergeBranches = "MergeBranches";
    public const string RecordProgress = "RecordProgress";
    public const string Fuse = "Fuse";
    public const string Evaluate = "Evaluate";
    public const string Quantize = "Quantize";
    public const string QuantizeModel = "QuantizeModel";
    public const string ExportModel = "ExportModel";
    public const string Expand = "Expand";
    public const string ValidateUpload = "ValidateUpload";
    public const string RejectUpload = "RejectUpload";
    public const string Finalize = "Finalize";

    public const string PlanSweep = "PlanSweep";
    public const string PrepareTrial = "PrepareTrial";
    public const string RecordTrial = "RecordTrial";
    public const string StopTrials = "StopTrials";
    public const string FinishSweep = "FinishSweep";

    /// <summary>External event: finish gracefully after the current step.</summary>
    public const string StopEvent = "stop";

    /// <summary>External event a trial sends its sweep after each training step (<c>TrialEpochs</c>).</summary>
    public const string TrialEpochsEvent = "trial-epochs";
}

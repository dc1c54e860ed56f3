namespace ScaleGrow.Orchestration;

/// <summary>
/// Names of the orchestrations, events, and the sweep activities, shared by every host. A run's and an
/// upload's activities carry their names themselves (<c>TrainIntervalStep.Name</c>, …: core/ScaleGrow.Core/Runs/Steps/).
/// </summary>
public static class TaskNames
{
    public const string GrowthRun = "GrowthRun";
    public const string QuantizeUpload = "QuantizeUpload";
    public const string SweepRun = "SweepRun";

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

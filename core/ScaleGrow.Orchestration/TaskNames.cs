namespace ScaleGrow.Orchestration;

/// <summary>
/// Names of the orchestrations and events, shared by every host. Activities carry their names themselves
/// (<c>TrainIntervalStep.Name</c>, …: core/ScaleGrow.Core/Runs/Steps/ and Sweeps/Steps/).
/// </summary>
public static class TaskNames
{
    public const string GrowthRun = "GrowthRun";
    public const string QuantizeUpload = "QuantizeUpload";
    public const string SweepRun = "SweepRun";

    /// <summary>External event: finish gracefully after the current step.</summary>
    public const string StopEvent = "stop";

    /// <summary>External event a trial sends its sweep after each training step (<c>TrialEpochs</c>).</summary>
    public const string TrialEpochsEvent = "trial-epochs";
}

namespace ScaleGrow.Runs;

/// <summary>
/// How many step checkpoints a run keeps. Every training interval, insertion and optimizer migration writes a model
/// and an optimizer checkpoint (quick: 11 steps, 7.3 MB of the run's 8.2 MB); only the newest and the ones the
/// journal's resume point needs are worth keeping (issue 16). At each recorded growth cycle, the steps that the
/// journal's current resume point no longer needs are deleted before the new state is recorded (so the record stays
/// the step's last write), so a resumed run always finds what it starts from: the recorded state's checkpoint and
/// the model from before its last growth (a stop's fallback) are always kept.
/// Positional, so that the default survives source-generated JSON (see <see cref="ScaleGrow.Data.DatasetSpec"/>).
/// </summary>
/// <param name="KeepSteps">How many of the newest steps to keep besides those; 0 keeps every step (for studying a
/// run's growth step by step).</param>
public sealed record RetentionOptions(int KeepSteps = 3)
{
    public void Validate()
    {
        if (KeepSteps is < 0 or > 100000)
            throw new InvalidSpecException($"run: retention.keepSteps must be in 0..100000 (0 keeps every step), got {KeepSteps}");
    }

    /// <summary>
    /// The steps to delete among <paramref name="existing"/> once the journal's resume point is the checkpoint of
    /// step <paramref name="resumeStep"/>: those older than it, except the model from before its last growth
    /// (<paramref name="preGrowthStep"/>) and the <see cref="KeepSteps"/> newest.
    /// </summary>
    public IReadOnlyList<int> StepsToDelete(IEnumerable<int> existing, int resumeStep, int? preGrowthStep)
    {
        if (KeepSteps == 0) return [];
        var steps = existing.Distinct().OrderDescending().ToList();
        var keep = new HashSet<int>(steps.Take(KeepSteps)) { resumeStep };
        if (preGrowthStep is { } before) keep.Add(before);
        return steps.Where(s => s < resumeStep && !keep.Contains(s)).Order().ToList();
    }
}

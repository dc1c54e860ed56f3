namespace ScaleGrow.Runs;

// Beside RunPaths: a sweep keeps its files in the runs container, and the run catalog needs to tell a sweep's trials
// from plain runs, so the names live here rather than in Sweeps/ (which builds on Runs).

/// <summary>Where a sweep's files live: beside runs, in the same container, so that ids never clash.</summary>
public static class SweepPaths
{
    public static string Spec(string sweepId) => $"{RunPaths.Container}/{sweepId}/sweep-spec.json";
    public static string Result(string sweepId, string name) => RunPaths.Final(sweepId, name);

    /// <summary>Trial ids are derived from the sweep id, so <c>runs show {sweep}-t003</c> works on a trial.</summary>
    public static string TrialId(string sweepId, int index) => $"{sweepId}-t{index:000}";

    /// <summary>Sweep ids leave room for the trial suffix within the 63 characters of a run id.</summary>
    public static string ValidateSweepId(string? sweepId)
    {
        RunPaths.ValidateRunId(sweepId);
        if (sweepId!.Length > 58)
            throw new InvalidSpecException($"invalid sweep id '{sweepId[..40]}…': at most 58 characters (trial ids add '-t000')");
        return sweepId;
    }

    /// <summary>The sweep a trial id belongs to, when the id has a trial's shape.</summary>
    public static (string SweepId, int Index)? ParseTrialId(string runId)
    {
        int dash = runId.LastIndexOf("-t", StringComparison.Ordinal);
        if (dash <= 0 || runId.Length - dash != 5 || !int.TryParse(runId.AsSpan(dash + 2), out int index)) return null;
        return (runId[..dash], index);
    }
}

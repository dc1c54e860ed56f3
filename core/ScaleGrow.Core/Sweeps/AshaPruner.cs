namespace ScaleGrow.Sweeps;

/// <summary>
/// Asynchronous successive halving (ASHA, Li et al. 2020) as early stopping: each rung is an epoch count; when a trial
/// reaches a rung its validation accuracy there joins the rung's record, and the trial is stopped if it is in the
/// bottom <see cref="EarlyStoppingOptions.BottomFraction"/> of the trials recorded at that rung (k = ⌊n·fraction⌋ of
/// n, ties counted in the trial's favour only when strictly better), once at least
/// <see cref="EarlyStoppingOptions.MinTrialsAtRung"/> have reached it. A trial is judged once per rung, when it gets
/// there; later arrivals do not stop trials already past. Pure and deterministic: the sweep orchestrator feeds it
/// activity results in trial order.
/// </summary>
public sealed class AshaPruner(EarlyStoppingOptions options)
{
    private readonly Dictionary<int, List<(string RunId, double Accuracy)>> _rungs = new();

    /// <summary>
    /// Records what a trial has reached (validation accuracy after each epoch, in order) and says whether it must
    /// stop, with the reason. <paramref name="judge"/> false only records (a finished trial still sets the bar).
    /// </summary>
    public string? Observe(string runId, IReadOnlyList<double> accuracies, bool judge = true) =>
        Observe(runId, accuracies.Select((a, i) => (i + 1, a)).ToDictionary(x => x.Item1, x => x.a), judge);

    /// <summary>As above, with the accuracy after each epoch by epoch count (1 = after the first epoch); a resumed
    /// trial may report only the epochs since it resumed.</summary>
    public string? Observe(string runId, IReadOnlyDictionary<int, double> accuracyAfterEpoch, bool judge = true)
    {
        string? verdict = null;
        foreach (int rung in options.Rungs)
        {
            if (!accuracyAfterEpoch.TryGetValue(rung, out double accuracy)) continue;
            if (!_rungs.TryGetValue(rung, out var seen)) _rungs[rung] = seen = [];
            if (seen.Any(s => s.RunId == runId)) continue; // judged at this rung already
            seen.Add((runId, accuracy));
            if (!judge || verdict is not null || seen.Count < options.MinTrialsAtRung) continue;
            int n = seen.Count, bottom = (int)Math.Floor(n * options.BottomFraction);
            int better = seen.Count(s => s.Accuracy > accuracy);
            if (bottom > 0 && better >= n - bottom)
                verdict = $"pruned at rung epoch {rung}: validation accuracy {accuracy:P2} is in the bottom {bottom} " +
                          $"of the {n} trials that reached it";
        }
        return verdict;
    }
}

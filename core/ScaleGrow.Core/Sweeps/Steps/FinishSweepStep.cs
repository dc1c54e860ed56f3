using System.Text;
using System.Text.Json;
using ScaleGrow.Runs;

namespace ScaleGrow.Sweeps;

public sealed record FinishSweepInput(string SweepId, string? StopReason, double WallSeconds);

/// <summary>The <c>FinishSweep</c> activity of a sweep (see <see cref="RunAsync"/>).</summary>
public sealed class FinishSweepStep(SweepSteps sweeps)
{
    /// <summary>The activity's name, as the sweep orchestration calls it.</summary>
    public const string Name = "FinishSweep";

    private SweepSteps Context { get; } = sweeps;

    public async Task<SweepSummary> RunAsync(FinishSweepInput input, CancellationToken cancellationToken = default)
    {
        var spec = await Context.ReadSpecAsync(input.SweepId, cancellationToken);
        var trials = await Context.TrialsAsync(input.SweepId, spec, cancellationToken);
        var results = SweepReport.Results(input.SweepId, spec, trials, input.StopReason, input.WallSeconds);
        string json = SweepPaths.Result(input.SweepId, "sweep.json"), md = SweepPaths.Result(input.SweepId, "sweep.md"),
            png = SweepPaths.Result(input.SweepId, "pareto.png");
        await Context.Store.WriteAsync(json, JsonSerializer.SerializeToUtf8Bytes(results,
            SweepSteps.Indented), null, cancellationToken);
        await Context.Store.WriteAsync(md, Encoding.UTF8.GetBytes(SweepReport.Markdown(input.SweepId, trials, results)), null,
            cancellationToken);
        await Context.Store.WriteAsync(png, SweepReport.Pareto(input.SweepId, trials), null, cancellationToken);
        return new SweepSummary
        {
            SweepId = input.SweepId, Trials = trials.Count,
            ByStatus = trials.GroupBy(t => t.Status).ToDictionary(g => g.Key, g => g.Count()),
            StopReason = input.StopReason, WallSeconds = input.WallSeconds,
            TrialSeconds = trials.Sum(t => t.WallSeconds ?? 0), Results = json, Table = md, Plot = png,
        };
    }

}

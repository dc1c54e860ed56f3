using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScottPlot;

namespace ScaleGrow.Sweeps;

/// <summary>
/// A sweep's results: sweep.json (every trial), sweep.md (per configuration — axis values without the seed — mean ±
/// standard deviation over its trials of each metric, then every trial) and pareto.png (test accuracy against fused
/// parameters, one colour per configuration, the Pareto front drawn), plotted with ScottPlot as curves.png is.
/// </summary>
public static class SweepReport
{
    private static readonly string[] Finished = ["completed", "pruned", "stopped"];

    public static JsonObject Results(string sweepId, SweepSpec spec, IReadOnlyList<SweepTrialResult> trials,
        string? stopReason, double wallSeconds)
    {
        double trialSeconds = trials.Sum(t => t.WallSeconds ?? 0);
        return new JsonObject
        {
            ["sweepId"] = sweepId,
            ["mode"] = spec.Mode,
            ["parallel"] = spec.Parallel,
            ["axes"] = new JsonObject(spec.Axes.Select(a => KeyValuePair.Create(a.Path,
                (JsonNode?)new JsonArray(a.Values.Select(v => v?.DeepClone()).ToArray())))),
            ["earlyStopping"] = spec.EarlyStopping is { } e
                ? new JsonObject
                {
                    ["rungs"] = new JsonArray(e.Rungs.Select(r => (JsonNode)r).ToArray()),
                    ["bottomFraction"] = e.BottomFraction, ["minTrialsAtRung"] = e.MinTrialsAtRung,
                }
                : null,
            ["stopReason"] = stopReason,
            ["wallSeconds"] = wallSeconds,
            // What the sweep orchestrated: the trials' own wall times. With parallel 1 the difference to the sweep's
            // wall time is what the sweep's orchestration cost (RESULTS §9).
            ["trialSeconds"] = trialSeconds,
            ["overheadSeconds"] = spec.Parallel == 1 ? wallSeconds - trialSeconds : null,
            ["trials"] = JsonSerializer.SerializeToNode(trials.ToList(), SweepReportJson.Default.ListSweepTrialResult),
        };
    }

    /// <summary>Per configuration: how many trials, and mean ± standard deviation of each metric over them.</summary>
    public static IReadOnlyList<ConfigurationRow> Configurations(IReadOnlyList<SweepTrialResult> trials) =>
        trials.GroupBy(t => t.Configuration).Select(g =>
        {
            var done = g.Where(t => Finished.Contains(t.Status) && t.Accuracy is not null).ToList();
            return new ConfigurationRow(g.Key, g.Count(), done.Count,
                Stat(done.Select(t => t.Accuracy!.Value * 100)),
                Stat(done.Select(t => (double)(t.ParametersFused ?? 0) / 1e3)),
                Stat(done.Select(t => (double)(t.Flops ?? 0) / 1e6)),
                Stat(done.Where(t => t.LatencyMsBatch1 is not null).Select(t => t.LatencyMsBatch1!.Value)),
                Stat(done.Select(t => t.WallSeconds ?? 0)),
                string.Join(", ", g.GroupBy(t => t.Status).Select(s => $"{s.Count()} {s.Key}")));
        }).ToList();

    public sealed record ConfigurationRow(string Configuration, int Trials, int Finished, (double Mean, double Sd)? Accuracy,
        (double Mean, double Sd)? ParametersFusedK, (double Mean, double Sd)? FlopsM, (double Mean, double Sd)? LatencyMs,
        (double Mean, double Sd)? WallSeconds, string Statuses);

    /// <summary>Mean and sample standard deviation (0 for a single value); null for none.</summary>
    public static (double Mean, double Sd)? Stat(IEnumerable<double> values)
    {
        var v = values.ToList();
        if (v.Count == 0) return null;
        double mean = v.Average();
        double sd = v.Count > 1 ? Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Count - 1)) : 0;
        return (mean, sd);
    }

    public static string Markdown(string sweepId, IReadOnlyList<SweepTrialResult> trials, JsonObject results)
    {
        static string F((double Mean, double Sd)? s, string format) =>
            s is { } x ? $"{x.Mean.ToString(format, CultureInfo.InvariantCulture)} ± {x.Sd.ToString(format, CultureInfo.InvariantCulture)}" : "–";
        var md = new StringBuilder();
        md.AppendLine($"# Sweep {sweepId}");
        md.AppendLine();
        md.AppendLine(FormattableString.Invariant(
            $"{trials.Count} trials, wall time {(double)results["wallSeconds"]!:0} s, trials' own wall time {(double)results["trialSeconds"]!:0} s") +
                      (results["stopReason"] is { } why ? $"; stopped: {why}" : "") + ".");
        md.AppendLine();
        md.AppendLine("## Per configuration (mean ± standard deviation over its finished trials)");
        md.AppendLine();
        md.AppendLine("| configuration | trials | test acc % | params fused K | FLOPs M | latency b1 ms | wall s | status |");
        md.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var c in Configurations(trials))
            md.AppendLine($"| {c.Configuration} | {c.Finished}/{c.Trials} | {F(c.Accuracy, "0.00")} | {F(c.ParametersFusedK, "0.0")} | " +
                          $"{F(c.FlopsM, "0.0")} | {F(c.LatencyMs, "0.00")} | {F(c.WallSeconds, "0")} | {c.Statuses} |");
        md.AppendLine();
        md.AppendLine("## Trials");
        md.AppendLine();
        md.AppendLine("| trial | configuration | seed | status | arch | params | params fused | test acc % | wall s | stop reason / error |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var t in trials)
            md.AppendLine(FormattableString.Invariant(
                $"| {t.RunId} | {t.Configuration} | {t.Seed?.ToString() ?? (t.Axes.TryGetValue("seed", out var s) ? s : "")} | {t.Status} | {t.Arch} | {t.Parameters} | {t.ParametersFused} | {(t.Accuracy * 100)?.ToString("0.00", CultureInfo.InvariantCulture)} | {t.WallSeconds?.ToString("0", CultureInfo.InvariantCulture)} | {(t.Error ?? t.StopReason)?.Replace("|", "/")} |"));
        md.AppendLine();
        md.AppendLine("![Pareto front](pareto.png)");
        return md.ToString();
    }

    /// <summary>The trials on the Pareto front: no other trial is at least as accurate with fewer fused parameters.
    /// </summary>
    public static IReadOnlyList<SweepTrialResult> ParetoFront(IEnumerable<SweepTrialResult> trials)
    {
        var front = new List<SweepTrialResult>();
        double best = double.NegativeInfinity;
        foreach (var t in trials.Where(t => t.Accuracy is not null && t.ParametersFused is not null)
                     .OrderBy(t => t.ParametersFused).ThenByDescending(t => t.Accuracy))
        {
            if (t.Accuracy!.Value <= best) continue;
            best = t.Accuracy.Value;
            front.Add(t);
        }
        return front;
    }

    public static byte[] Pareto(string sweepId, IReadOnlyList<SweepTrialResult> trials)
    {
        var plot = new Plot();
        var points = trials.Where(t => Finished.Contains(t.Status) && t.Accuracy is not null && t.ParametersFused is not null)
            .ToList();
        var palette = new ScottPlot.Palettes.Category10();
        int i = 0;
        foreach (var group in points.GroupBy(t => t.Configuration))
        {
            var scatter = plot.Add.ScatterPoints(group.Select(t => t.ParametersFused!.Value / 1e3).ToArray(),
                group.Select(t => t.Accuracy!.Value * 100).ToArray(), palette.GetColor(i++));
            scatter.MarkerSize = 9;
            scatter.LegendText = group.Key.Length > 70 ? group.Key[..70] + "…" : group.Key;
        }
        var front = ParetoFront(points);
        if (front.Count > 0)
        {
            var line = plot.Add.Scatter(front.Select(t => t.ParametersFused!.Value / 1e3).ToArray(),
                front.Select(t => t.Accuracy!.Value * 100).ToArray(), Colors.Black);
            line.MarkerShape = MarkerShape.OpenCircle;
            line.MarkerSize = 16;
            line.ConnectStyle = ConnectStyle.StepHorizontal;
            line.LinePattern = LinePattern.Dashed;
            line.LegendText = "Pareto front";
        }
        if (points.Count > 0) plot.ShowLegend(Alignment.LowerRight);
        plot.Title($"{sweepId}: test accuracy against fused parameters");
        plot.XLabel("parameters after fusion (K)");
        plot.YLabel("test accuracy (%)");
        return plot.GetImageBytes(900, 560, ImageFormat.Png);
    }
}

[System.Text.Json.Serialization.JsonSourceGenerationOptions(
    PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
[System.Text.Json.Serialization.JsonSerializable(typeof(List<SweepTrialResult>))]
internal partial class SweepReportJson : System.Text.Json.Serialization.JsonSerializerContext;

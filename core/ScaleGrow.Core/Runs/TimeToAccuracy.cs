using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using ScottPlot;
using static System.FormattableString;

namespace ScaleGrow.Runs;

/// <summary>
/// Time to accuracy (issue 15, target 4): finished runs' validation accuracy against wall-clock seconds on one set of
/// axes, so a reader sees which run gets to a given accuracy first, with each run's test accuracy marked where the run
/// ended. Built from report.json files (their <c>epochHistory</c>), so it works on any finished run, grown or fixed.
/// </summary>
public static class TimeToAccuracy
{
    /// <summary>
    /// One run's curve. <see cref="Points"/> are (seconds since the run's first epoch began, validation accuracy) at the
    /// end of each epoch; <see cref="TestAccuracy"/> is the final model's, at <see cref="WallSeconds"/>.
    /// </summary>
    public sealed record Curve(string Label, string Arch, IReadOnlyList<(double Seconds, double Accuracy)> Points,
        double? TestAccuracy, double WallSeconds);

    /// <summary>
    /// A run's curve from its report.json. Time is the wall clock, and the run began when its first epoch began (its end
    /// less its training seconds). An epoch's end is its <c>endedAt</c> when every epoch has one (runs since
    /// 2026-12-05). Older journals only have write times: a step (activity) journals the epochs it trained when their
    /// checkpoint is written, so an epoch ended at its step's write time less the seconds of that step's later epochs;
    /// a step that stopped mid-epoch (its time limit) throws that estimate off by the part it trained of the next
    /// epoch. Either way growth, merging and checkpoint writes between steps count as they did on the clock, and a run
    /// resumed after a stop shows the pause. A report without either (older ones still) falls back to the sum of the
    /// epochs' own seconds.
    /// </summary>
    public static Curve FromReport(string label, JsonObject report, string source)
    {
        if (report["epochHistory"] is not JsonArray history)
            throw new CheckpointFormatException($"{source}: report has no epochHistory array");
        var epochs = history.OfType<JsonObject>()
            .Select(e => RunJournal.Read(e, RunStepsJson.Default.RunJournalEntry, source))
            .OfType<EpochEntry>().OrderBy(e => e.Epoch).ToList();
        var written = epochs.Select(e => DateTime.TryParse(e.WrittenAt, CultureInfo.InvariantCulture,
            DateTimeStyles.RoundtripKind, out var t) ? t : (DateTime?)null).ToList();
        var ends = new double[epochs.Count];
        double sum = 0;
        for (int i = 0; i < epochs.Count; i++) ends[i] = sum += epochs[i].Seconds;
        if (epochs.Count > 0 && written.All(t => t is not null))
        {
            // The index of the last epoch each step trained, whose write time is the step's.
            var stepEnd = epochs.Select((e, i) => (e.Step, i)).GroupBy(x => x.Step).ToDictionary(g => g.Key, g => g.Max(x => x.i));
            int first = stepEnd[epochs[0].Step];
            var start = written[first]!.Value.AddSeconds(-epochs.Take(first + 1).Sum(e => e.Seconds));
            for (int i = 0; i < epochs.Count; i++)
            {
                int end = stepEnd[epochs[i].Step];
                ends[i] = (written[end]!.Value - start).TotalSeconds - epochs.Skip(i + 1).Take(end - i).Sum(e => e.Seconds);
            }
        }
        var ended = epochs.Select(e => DateTime.TryParse(e.EndedAt, CultureInfo.InvariantCulture,
            DateTimeStyles.RoundtripKind, out var t) ? t : (DateTime?)null).ToList();
        if (epochs.Count > 0 && ended.All(t => t is not null))
        {
            var start = ended[0]!.Value.AddSeconds(-epochs[0].Seconds);
            for (int i = 0; i < epochs.Count; i++) ends[i] = (ended[i]!.Value - start).TotalSeconds;
        }
        var points = epochs.Select((e, i) => (ends[i], e.ValidationAccuracy)).ToList();
        double wall = report["wallSeconds"] is JsonValue w && w.TryGetValue<double>(out var ws) ? ws
            : points.Count > 0 ? points[^1].Item1 : 0;
        double? test = report["accuracy"] is JsonValue a && a.TryGetValue<double>(out var acc) ? acc : null;
        string arch = report["finalArch"] is JsonValue f && f.TryGetValue<string>(out var s) ? s : "";
        return new Curve(label, arch, points, test, wall);
    }

    /// <summary>The first epoch end at which validation accuracy is at least <paramref name="accuracy"/> (null: never).</summary>
    public static double? FirstReach(Curve curve, double accuracy) =>
        curve.Points.Where(p => p.Accuracy >= accuracy).Select(p => (double?)p.Seconds).FirstOrDefault();

    /// <summary>The curves on one plot, with a dashed line at <paramref name="target"/> (a fraction, e.g. 0.9).</summary>
    public static byte[] Plot(IReadOnlyList<Curve> curves, string title, double target)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        for (int i = 0; i < curves.Count; i++)
        {
            var c = curves[i];
            var color = palette.GetColor(i);
            if (c.Points.Count > 0)
            {
                var line = plot.Add.Scatter(c.Points.Select(p => p.Seconds).ToArray(),
                    c.Points.Select(p => 100 * p.Accuracy).ToArray(), color);
                line.LegendText = $"{c.Label} (validation)";
            }
            if (c.TestAccuracy is { } test)
            {
                var end = plot.Add.ScatterPoints(new[] { c.WallSeconds }, new[] { 100 * test }, color);
                end.MarkerShape = MarkerShape.FilledDiamond;
                end.MarkerSize = 12;
                end.LegendText = Invariant($"{c.Label}: test {100 * test:0.00} %");
            }
        }
        var goal = plot.Add.HorizontalLine(100 * target, 1, Colors.Gray);
        goal.LinePattern = LinePattern.Dashed;
        if (curves.Count > 0) plot.ShowLegend(Alignment.LowerRight);
        plot.Title(title);
        plot.XLabel("wall-clock seconds");
        plot.YLabel("accuracy (%)");
        return plot.GetImageBytes(900, 560, ImageFormat.Png);
    }

    /// <summary>A Markdown table: when each run first reached <paramref name="target"/>, its best and test accuracy.</summary>
    public static string Table(IReadOnlyList<Curve> curves, double target)
    {
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture,
            $"| run | final arch | first validation ≥ {100 * target:0.#} % at | best validation | test | wall s |");
        md.AppendLine("|---|---|---:|---:|---:|---:|");
        foreach (var c in curves)
        {
            string reach = FirstReach(c, target) is { } s ? Invariant($"{s:0} s") : "never";
            string best = c.Points.Count > 0 ? Invariant($"{100 * c.Points.Max(p => p.Accuracy):0.00} %") : "–";
            string test = c.TestAccuracy is { } t ? Invariant($"{100 * t:0.00} %") : "–";
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {c.Label} | {c.Arch} | {reach} | {best} | {test} | {c.WallSeconds:0} |");
        }
        return md.ToString();
    }
}

using System.Text.Json.Nodes;
using ScottPlot;

namespace ScaleGrow.Runs;

/// <summary>
/// The final report of a run (report.json) and its curves (curves.png: validation accuracy and parameters against
/// epochs, with growth events marked), built from the journal.
/// </summary>
public static class RunReport
{
    public static JsonObject Build(string runId, RunSpec spec, IReadOnlyList<RunJournalEntry> journal,
        EvaluationResult evaluation, FuseResult? fused, string? stopReason, double wallSeconds)
    {
        var epochs = journal.OfType<EpochEntry>().OrderBy(e => e.Epoch).ToList();
        var growths = journal.OfType<GrowthEntry>().OrderBy(e => e.Step).ToList();
        var importance = journal.OfType<ImportanceEntry>().ToDictionary(e => e.Step);
        var init = journal.OfType<InitializeEntry>().FirstOrDefault();
        var history = new JsonArray();
        foreach (var g in growths)
        {
            var entry = RunJournal.ToJson(g);
            // The scores that decided this growth were taken on the checkpoint it grew from.
            var scored = importance.Where(kv => kv.Key < g.Step).OrderByDescending(kv => kv.Key)
                .Select(kv => kv.Value).FirstOrDefault();
            if (scored is not null)
            {
                var scores = RunJournal.ToJson(scored);
                entry["importance"] = new JsonObject
                {
                    ["blocks"] = scores["blocks"]?.DeepClone(),
                    ["layers"] = scores["layers"]?.DeepClone()
                };
            }
            history.Add(entry);
        }
        var phaseSeconds = new JsonObject();
        foreach (var group in epochs.GroupBy(e => e.Phase ?? "train"))
            phaseSeconds[group.Key] = group.Sum(e => e.Seconds);
        var expansion = journal.OfType<ExpandEntry>().FirstOrDefault();
        string finalArch = growths.Count > 0 ? growths[^1].Action.ArchAfter
            : expansion?.ArchAfter ?? init?.Arch ?? "";
        return new JsonObject
        {
            ["runId"] = runId,
            ["kind"] = spec.Kind.ToString().ToLowerInvariant(),
            ["preset"] = spec.Preset,
            ["seed"] = spec.Seed,
            ["finalArch"] = finalArch,
            ["parameters"] = fused?.Parameters,
            ["parametersFused"] = fused?.ParametersFused ?? evaluation.Parameters,
            ["flops"] = evaluation.Flops,
            ["latencyMsBatch1"] = evaluation.LatencyMsBatch1,
            ["latencyMsBatch64"] = evaluation.LatencyMsBatch64,
            ["accuracy"] = evaluation.Accuracy,
            ["loss"] = evaluation.Loss,
            ["perplexity"] = evaluation.Perplexity,
            ["testSamples"] = evaluation.Samples,
            ["stopReason"] = stopReason,
            // Where it ran: the spec's choice, each device training used (a run can move between replicas), and
            // where the final model was measured, with that process's intra-op threads.
            ["device"] = new JsonObject
            {
                ["requested"] = spec.Device,
                ["training"] = new JsonArray(epochs.Select(e => e.Device).OfType<string>().Distinct()
                    .Select(d => (JsonNode)d).ToArray()),
                ["fusion"] = fused?.Device ?? journal.OfType<FuseEntry>().LastOrDefault()?.Device,
                ["evaluation"] = evaluation.Device,
                ["threads"] = evaluation.Threads,
            },
            ["epochs"] = epochs.Count,
            ["growths"] = growths.Count,
            ["wallSeconds"] = wallSeconds,
            ["secondsByPhase"] = phaseSeconds,
            ["growthHistory"] = history,
            ["epochHistory"] = new JsonArray(epochs.Select(e => (JsonNode)RunJournal.ToJson(e)).ToArray()),
        };
    }

    public static byte[] Curves(IReadOnlyList<RunJournalEntry> journal, string title)
    {
        var epochs = journal.OfType<EpochEntry>().OrderBy(e => e.Epoch).ToList();
        var plot = new Plot();
        if (epochs.Count > 0)
        {
            double[] x = epochs.Select(e => e.Epoch + 1.0).ToArray();
            var accuracy = plot.Add.Scatter(x, epochs.Select(e => 100 * e.ValidationAccuracy).ToArray());
            accuracy.LegendText = "validation accuracy (%)";
            var parameters = plot.Add.Scatter(x, epochs.Select(e => e.Parameters / 1e3).ToArray());
            parameters.LegendText = "parameters (K, unfused)";
            parameters.Axes.YAxis = plot.Axes.Right;
            plot.Axes.Right.Label.Text = "parameters (K)";
            foreach (var g in journal.OfType<GrowthEntry>())
            {
                if ((g.At ?? g.Epoch) is not { } at) continue;
                var line = plot.Add.VerticalLine(at, 1, g.Action.Kind == Growth.GrowthKind.Width
                    ? Colors.Orange : Colors.Gray);
                line.LinePattern = LinePattern.Dashed;
            }
            plot.ShowLegend(Alignment.LowerRight);
        }
        plot.Title(title);
        plot.XLabel("epoch");
        plot.YLabel("validation accuracy (%)");
        return plot.GetImageBytes(900, 500, ImageFormat.Png);
    }
}

using System.Text.Json.Nodes;
using ScottPlot;

namespace ScaleGrow.Runs;

/// <summary>
/// The final report of a run (report.json) and its curves (curves.png: validation accuracy and parameters against
/// epochs, with growth events marked), built from the journal.
/// </summary>
public static class RunReport
{
    public static JsonObject Build(string runId, RunSpec spec, IReadOnlyList<JsonObject> journal,
        EvaluationResult evaluation, FuseResult? fused, string? stopReason, double wallSeconds)
    {
        var epochs = journal.Where(e => (string?)e["kind"] == "epoch").OrderBy(e => (int)e["epoch"]!).ToList();
        var growths = journal.Where(e => (string?)e["kind"] == "growth").OrderBy(e => (int)e["step"]!).ToList();
        var importance = journal.Where(e => (string?)e["kind"] == "importance")
            .ToDictionary(e => (int)e["step"]!, e => e);
        var init = journal.FirstOrDefault(e => (string?)e["kind"] == "initialize");
        var history = new JsonArray();
        int previousStep = (int?)init?["step"] ?? 0;
        foreach (var g in growths)
        {
            var entry = g.DeepClone().AsObject();
            // The scores that decided this growth were taken on the checkpoint it grew from.
            var scored = importance.Where(kv => kv.Key < (int)g["step"]!).OrderByDescending(kv => kv.Key)
                .Select(kv => kv.Value).FirstOrDefault();
            if (scored is not null)
                entry["importance"] = new JsonObject { ["blocks"] = scored["blocks"]?.DeepClone(),
                    ["layers"] = scored["layers"]?.DeepClone() };
            history.Add(entry);
        }
        var phaseSeconds = new JsonObject();
        foreach (var group in epochs.GroupBy(e => (string?)e["phase"] ?? "train"))
            phaseSeconds[group.Key] = group.Sum(e => (double)e["seconds"]!);
        var expansion = journal.FirstOrDefault(e => (string?)e["kind"] == "expand");
        string finalArch = growths.Count > 0 ? (string)growths[^1]["action"]!["archAfter"]!
            : (string?)expansion?["archAfter"] ?? (string?)init?["arch"] ?? "";
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
                ["training"] = new JsonArray(epochs.Select(e => (string?)e["device"]).OfType<string>().Distinct()
                    .Select(d => (JsonNode)d).ToArray()),
                ["fusion"] = fused?.Device ?? (string?)journal.LastOrDefault(e => (string?)e["kind"] == "fuse")?["device"],
                ["evaluation"] = evaluation.Device,
                ["threads"] = evaluation.Threads,
            },
            ["epochs"] = epochs.Count,
            ["growths"] = growths.Count,
            ["wallSeconds"] = wallSeconds,
            ["secondsByPhase"] = phaseSeconds,
            ["growthHistory"] = history,
            ["epochHistory"] = new JsonArray(epochs.Select(e => (JsonNode)e.DeepClone()).ToArray()),
        };
    }

    public static byte[] Curves(IReadOnlyList<JsonObject> journal, string title)
    {
        var epochs = journal.Where(e => (string?)e["kind"] == "epoch").OrderBy(e => (int)e["epoch"]!).ToList();
        var plot = new Plot();
        if (epochs.Count > 0)
        {
            double[] x = epochs.Select(e => (double)(int)e["epoch"]! + 1).ToArray();
            var accuracy = plot.Add.Scatter(x, epochs.Select(e => 100 * (double)e["validationAccuracy"]!).ToArray());
            accuracy.LegendText = "validation accuracy (%)";
            var parameters = plot.Add.Scatter(x, epochs.Select(e => (double)(long)e["parameters"]! / 1e3).ToArray());
            parameters.LegendText = "parameters (K, unfused)";
            parameters.Axes.YAxis = plot.Axes.Right;
            plot.Axes.Right.Label.Text = "parameters (K)";
            foreach (var g in journal.Where(e => (string?)e["kind"] == "growth"))
            {
                if (g["epoch"] is null) continue;
                var line = plot.Add.VerticalLine((int)g["epoch"]!, 1, (string?)g["action"]?["kind"] == "width"
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

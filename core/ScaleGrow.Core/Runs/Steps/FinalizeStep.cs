using System.Text.Json;
using ScaleGrow.Models;

namespace ScaleGrow.Runs;

public sealed record FinalizeInput(string RunId, string Model, string FusedModel, EvaluationResult Evaluation,
    string? StopReason, double WallSeconds, QuantizeModelResult? Quantized = null, ExportModelResult? Exported = null);

/// <summary>
/// The <c>Finalize</c> activity (see <see cref="RunAsync"/>).
/// </summary>
public sealed class FinalizeStep(RunSteps run) : RunStep<FinalizeInput, RunSummary>(run)
{
    /// <summary>The activity's name, as the orchestrations call it and the service documents it.</summary>
    public const string Name = "Finalize";

    /// <summary>Writes the run's final artifacts: the grown model, report.json and curves.png (fused model: Fuse).</summary>
    public override async Task<RunSummary> RunAsync(FinalizeInput input, CancellationToken cancellationToken = default)
    {
        var spec = await Run.ReadSpecAsync(input.RunId, cancellationToken);
        string model = RunPaths.Final(input.RunId, "model.safetensors");
        await Run.Store.WriteAsync(model, await Run.Store.ReadAllBytesAsync(input.Model, cancellationToken), null,
            cancellationToken);
        var journal = await Run.Journal(input.RunId).RunEntriesAsync(cancellationToken);
        var (grown, _) = Checkpoints.ModelIO.LoadModel(await Run.Store.ReadAllBytesAsync(input.Model, cancellationToken),
            input.Model);
        var stats = ModelStats.Of(grown.Spec);
        grown.Module.Dispose();
        var fused = new FuseResult(input.FusedModel, stats.Parameters, stats.ParametersFused);
        var report = RunReport.Build(input.RunId, spec, journal, input.Evaluation, fused, input.StopReason,
            input.WallSeconds);
        report["arch"] = grown.Spec.ArchString;
        if (journal.OfType<ExpandEntry>().FirstOrDefault() is { } expansion)
            report["expansion"] = RunJournal.ToJson(expansion);
        // Fine-tuning trained the merged plain network: the unfused parameter count above is the merged one.
        if (journal.OfType<MergeEntry>().LastOrDefault() is { } merge)
            report["branchMerge"] = RunJournal.ToJson(merge);
        if (input.Quantized is { } q)
            report["quantized"] = JsonSerializer.SerializeToNode(q, RunStepsJson.Default.QuantizeModelResult);
        if (input.Exported is { } exported)
            report["onnx"] = JsonSerializer.SerializeToNode(exported, RunStepsJson.Default.ExportModelResult);
        string reportPath = RunPaths.Final(input.RunId, "report.json");
        await Run.Store.WriteAsync(reportPath,
            JsonSerializer.SerializeToUtf8Bytes(report, RunJournal.Indented), null,
            cancellationToken);
        await Run.Store.WriteAsync(RunPaths.Final(input.RunId, "curves.png"),
            RunReport.Curves(journal, $"{input.RunId}: {grown.Spec.ArchString}"), null, cancellationToken);
        return new RunSummary
        {
            RunId = input.RunId, Arch = grown.Spec.ArchString, Parameters = stats.Parameters,
            ParametersFused = stats.ParametersFused, Evaluation = input.Evaluation, Model = model,
            FusedModel = input.FusedModel, Report = reportPath, StopReason = input.StopReason, Quantized = input.Quantized,
            Exported = input.Exported,
            Growths = journal.OfType<GrowthEntry>().Count(), Epochs = journal.OfType<EpochEntry>().Count(),
            WallSeconds = input.WallSeconds,
        };
    }
}

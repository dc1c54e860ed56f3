using static TorchSharp.torch;

namespace ScaleGrow.Runs;

public sealed record EvaluateInput(string RunId, string Model, bool MeasureLatency);

public sealed record EvaluationResult
{
    /// <summary>Classification accuracy; for language models, top-1 next-token accuracy.</summary>
    public required double Accuracy { get; init; }

    /// <summary>Mean loss per sample (per target token for language models).</summary>
    public required double Loss { get; init; }

    /// <summary>Language models: exp(<see cref="Loss"/>), per token of the run's tokenizer.</summary>
    public double? Perplexity { get; init; }

    /// <summary>Test samples (target tokens for language models).</summary>
    public required long Samples { get; init; }
    public required long Parameters { get; init; }
    public required long Flops { get; init; }
    public double? LatencyMsBatch1 { get; init; }
    public double? LatencyMsBatch64 { get; init; }

    /// <summary>Where the model was measured (the latencies are this device's), read from the model's parameters.</summary>
    public string? Device { get; init; }

    /// <summary>Intra-op threads of the process that measured it (CPU latency depends on them).</summary>
    public int? Threads { get; init; }
}

/// <summary>
/// Measures a model on the run's test split: accuracy, loss, parameters, FLOPs, and latency when asked.
/// </summary>
public sealed class EvaluateStep(RunSteps run) : RunStep<EvaluateInput, EvaluationResult>(run)
{
    /// <summary>The activity's name, as the orchestrations call it and the service documents it.</summary>
    public const string Name = "Evaluate";

    public override async Task<EvaluationResult> RunAsync(EvaluateInput input, CancellationToken cancellationToken = default)
    {
        var spec = await Run.ReadSpecAsync(input.RunId, cancellationToken);
        using var lease = RunData.Lease(spec);
        var data = lease.Data;
        var device = Run.DeviceFor(spec);
        var model = await Run.LoadModelAsync(input.Model, device, cancellationToken);
        try
        {
            var result = Evaluation.Evaluate(model, data, spec.Training.EvalBatchSize,
                input.MeasureLatency && spec.MeasureLatency, cancellationToken, device);
            await Run.Journal(input.RunId).UpsertAsync("evaluate", new EvaluateEntry(input.Model, result), cancellationToken);
            return result;
        }
        finally
        {
            model.Module.Dispose();
        }
    }
}

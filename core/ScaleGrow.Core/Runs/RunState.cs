using System.Text.Json.Serialization;
using ScaleGrow.Growth;

namespace ScaleGrow.Runs;

public enum RunPhase
{
    [JsonStringEnumMemberName("initialize")] Initialize,
    [JsonStringEnumMemberName("grow")] Grow,
    [JsonStringEnumMemberName("train")] Train,
    [JsonStringEnumMemberName("fine-tune")] FineTune,
    [JsonStringEnumMemberName("finalize")] Finalize,
    [JsonStringEnumMemberName("done")] Done,
    /// <summary>`runs delete` asked the run to end at once: no fuse, no report, nothing more written.</summary>
    [JsonStringEnumMemberName("deleted")] Deleted,
}

/// <summary>
/// Everything the growth orchestrator knows between steps — small records only. It is the ContinueAsNew input, it is
/// journaled after every growth cycle, and a resumed run starts from the last journaled copy.
/// </summary>
public sealed record GrowthRunState
{
    public required string RunId { get; init; }
    public required RunSettings Settings { get; init; }
    public required RunPhase Phase { get; init; }
    public required RunCheckpoint Checkpoint { get; init; }

    /// <summary>Next free step number (each step writes its artifacts under steps/{step}).</summary>
    public required int NextStep { get; init; }

    public required TrainingPosition Position { get; init; }
    public required string ArchitectureJson { get; init; }
    public required string Arch { get; init; }
    public required long Parameters { get; init; }
    public required ScheduleSegment Schedule { get; init; }
    public required DateTime StartedUtc { get; init; }
    public GrowthProgress Progress { get; set; } = new();

    /// <summary>Epoch at which the current phase ends (growth: N; fine-tune: stop epoch + M).</summary>
    public int PhaseEndEpoch { get; init; }

    /// <summary>Training batches per epoch, as the last TrainInterval reported them (0 before the first): growth points
    /// inside an epoch are batch positions.</summary>
    public int BatchesPerEpoch { get; init; }

    public double? LastValidationAccuracy { get; init; }
    public string? StopReason { get; init; }
    public bool StopRequested { get; init; }
    public string? FusedModel { get; init; }
    public EvaluationResult? Evaluation { get; init; }
    public int Executions { get; init; }

    /// <summary>Where the last training step computed (<see cref="ComputeDevice.Name"/>, e.g. <c>cuda:0 (…)</c>).</summary>
    public string? Device { get; init; }

    /// <summary>Scale runs: the ScaleNet expansion has happened.</summary>
    public bool Expanded { get; init; }

    /// <summary>
    /// The model as it was just before the last growth, and the epoch that growth happened at: a stop that lands
    /// before the grown model has trained one full epoch delivers this one instead of a half-initialised network.
    /// </summary>
    public PreGrowthModel? BeforeLastGrowth { get; init; }
}

/// <summary>A model a growth replaced: its checkpoint and what status and report say about it.</summary>
public sealed record PreGrowthModel(RunCheckpoint Checkpoint, string ArchitectureJson, string Arch, long Parameters,
    int GrowthEpoch);

/// <summary>What a run publishes as custom status (kept far below the 16 KB limit).</summary>
/// <param name="Device">Where the run's last step computed: on a GPU replica <c>cuda:0 (its name)</c>, else <c>cpu</c>.</param>
public sealed record RunStatus(string Phase, int Step, int Epoch, string Arch, long Parameters, double? Accuracy,
    string? StopReason, string? Device = null);

/// <summary>A finished run, as the orchestration returns it.</summary>
public sealed record RunSummary
{
    public required string RunId { get; init; }
    public required string Arch { get; init; }
    public required long Parameters { get; init; }
    public required long ParametersFused { get; init; }
    public required EvaluationResult Evaluation { get; init; }
    public required string Model { get; init; }
    public required string FusedModel { get; init; }
    public required string Report { get; init; }

    /// <summary>The quantized final model, when the spec asked for one.</summary>
    public QuantizeModelResult? Quantized { get; init; }

    /// <summary>The ONNX exports, when the spec asked for them.</summary>
    public ExportModelResult? Exported { get; init; }
    public string? StopReason { get; init; }
    public int Growths { get; init; }
    public int Epochs { get; init; }
    public double WallSeconds { get; init; }
}

/// <summary>Where a run's artifacts live in the store (docs/architecture.md "A run's life").</summary>
public static class RunPaths
{
    public const string Container = "runs";

    public static string Spec(string runId) => $"{Container}/{runId}/spec.json";
    public static string Journal(string runId) => $"{Container}/{runId}/journal.json";
    public static string Control(string runId) => $"{Container}/{runId}/control.json";
    public static string Lease(string runId) => $"{Container}/{runId}/lease.json";
    public static string StepModel(string runId, int step) => $"{Container}/{runId}/steps/{step:00000}/model.safetensors";
    public static string StepOptimizer(string runId, int step) => $"{Container}/{runId}/steps/{step:00000}/optim.safetensors";
    public static string Final(string runId, string name) => $"{Container}/{runId}/final/{name}";

    /// <summary>
    /// Run ids reach blob names: lower-case letters, digits and single dashes, 3–63 characters, starting and ending
    /// with a letter or digit. Anything else (<c>../x</c>, unicode, very long) is rejected before it touches a path.
    /// </summary>
    public static string ValidateRunId(string? runId)
    {
        if (string.IsNullOrEmpty(runId) || runId.Length is < 3 or > 63 || !runId.All(c => c is >= 'a' and <= 'z'
                or >= '0' and <= '9' or '-') || runId[0] == '-' || runId[^1] == '-' || runId.Contains("--"))
            throw new InvalidSpecException(
                $"invalid run id '{Shorten(runId)}': use 3–63 lower-case letters, digits and single dashes");
        return runId;
    }

    private static string Shorten(string? s) => s is null ? "" : s.Length > 40 ? s[..40] + "…" : s;
}

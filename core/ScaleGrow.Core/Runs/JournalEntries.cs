using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using ScaleGrow.Growth;

namespace ScaleGrow.Runs;

/// <summary>
/// One entry of a run's journal (<see cref="RunJournal"/>), typed by its <c>kind</c> as
/// <see cref="Models.ArchitectureSpec"/> is. The JSON is the journal's file format, read by reports, <c>runs show</c>
/// and people: field names and meanings do not change. An entry of a kind this version does not know (a newer
/// writer's) reads as a plain <see cref="RunJournalEntry"/>, so old code can still list a new run.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind",
    UnknownDerivedTypeHandling = JsonUnknownDerivedTypeHandling.FallBackToBaseType)]
[JsonDerivedType(typeof(InitializeEntry), "initialize")]
[JsonDerivedType(typeof(EpochEntry), "epoch")]
[JsonDerivedType(typeof(ImportanceEntry), "importance")]
[JsonDerivedType(typeof(GrowthEntry), "growth")]
[JsonDerivedType(typeof(MergeEntry), "merge")]
[JsonDerivedType(typeof(MigrateEntry), "migrate")]
[JsonDerivedType(typeof(StateEntry), "state")]
[JsonDerivedType(typeof(FuseEntry), "fuse")]
[JsonDerivedType(typeof(EvaluateEntry), "evaluate")]
[JsonDerivedType(typeof(ExpandEntry), "expand")]
public record RunJournalEntry
{
    /// <summary>The entry's key in the journal (<c>epoch-00004</c>, …): written by <see cref="RunJournal"/>.</summary>
    public string? Key { get; init; }

    /// <summary>When the entry was (last) written: a step re-executed after a crash shows up as a changed time.</summary>
    public string? WrittenAt { get; init; }
}

/// <summary>InitializeRun: the seed (or pretrained) model of step 0.</summary>
public sealed record InitializeEntry(int Step, string Arch, long Parameters, JsonNode Architecture, string? Device,
    int Threads) : RunJournalEntry;

/// <summary>TrainInterval: one finished epoch, journaled once the checkpoint holding it is written.</summary>
public sealed record EpochEntry : RunJournalEntry
{
    public int Epoch { get; init; }
    public int Step { get; init; }
    public string Phase { get; init; } = "train";
    public double TrainLoss { get; init; }
    public double TrainAccuracy { get; init; }
    public double ValidationLoss { get; init; }
    public double ValidationAccuracy { get; init; }
    public double Seconds { get; init; }
    public double LearningRate { get; init; }
    public string Arch { get; init; } = "";
    public long Parameters { get; init; }

    /// <summary>The batch the epoch's last training step started at (0 unless it resumed mid-epoch).</summary>
    public int ResumedAtBatch { get; init; }

    public string? Device { get; init; }
    public string? Precision { get; init; }

    /// <summary>When the epoch ended (see <see cref="EpochRecord.EndedAt"/>); null in older journals.</summary>
    public string? EndedAt { get; init; }

    public static EpochEntry Of(EpochRecord r, int step, int startBatch) => new()
    {
        Epoch = r.Epoch, Step = step, Phase = r.Phase, TrainLoss = r.TrainLoss, TrainAccuracy = r.TrainAccuracy,
        ValidationLoss = r.ValidationLoss, ValidationAccuracy = r.ValidationAccuracy, Seconds = r.Seconds,
        LearningRate = r.LearningRate, Arch = r.Arch, Parameters = r.Parameters, ResumedAtBatch = startBatch,
        Device = r.Device, Precision = r.Precision, EndedAt = r.EndedAt,
    };
}

/// <summary>ScoreImportance: block scores as [index, score] pairs and layer scores by <c>L{id}</c>.</summary>
public sealed record ImportanceEntry(int Step, IReadOnlyList<double[]> Blocks,
    IReadOnlyDictionary<string, double> Layers, string? Device) : RunJournalEntry;

/// <summary>InsertModule: what grew where (the action, with its new parameter names) and the sizes after.</summary>
/// <param name="At">Epochs trained when it grew: <c>Epoch</c> at an epoch's end, a fraction more at a point inside an
/// epoch (<c>growth.intervalsPerEpoch</c>); null in runs from before this field.</param>
public sealed record GrowthEntry(int Step, int? Epoch, GrowthAction Action, long Parameters, long ParametersFused,
    string? Device, double? At = null) : RunJournalEntry;

/// <summary>MergeBranches: the merged plain network.</summary>
public sealed record MergeEntry(int Step, int Epoch, string Arch, long ParametersBefore, long Parameters,
    long ParametersFused, string? Device) : RunJournalEntry;

/// <summary>MigrateOptimizer: how the moments were carried over.</summary>
public sealed record MigrateEntry(int Step, string Strategy, int Moments, int Reset, string? Device) : RunJournalEntry;

/// <summary>RecordProgress: the orchestration's state after a growth cycle (what a resume starts from).</summary>
public sealed record StateEntry(int Step, GrowthRunState State) : RunJournalEntry;

/// <summary>Fuse: the deployable model.</summary>
public sealed record FuseEntry(string Model, long ParametersFused, string? Device) : RunJournalEntry;

/// <summary>Evaluate: the final model's test result.</summary>
public sealed record EvaluateEntry(string Model, EvaluationResult Result) : RunJournalEntry;

/// <summary>Expand (ScaleNet): the architecture before and after, and each new instance's source layer.</summary>
public sealed record ExpandEntry(int Step, string ArchBefore, string ArchAfter, string Mapping, long ParametersBefore,
    long ParametersAfter, string? Device, IReadOnlyList<string> Instances) : RunJournalEntry;

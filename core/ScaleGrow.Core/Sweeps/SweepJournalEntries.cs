using System.Text.Json.Serialization;

namespace ScaleGrow.Sweeps;

/// <summary>
/// One entry of a sweep's journal (the same <see cref="Runs.RunJournal"/> file a run has), typed by its <c>kind</c>.
/// A kind this version does not know reads as a plain <see cref="SweepJournalEntry"/>.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind",
    UnknownDerivedTypeHandling = JsonUnknownDerivedTypeHandling.FallBackToBaseType)]
[JsonDerivedType(typeof(SweepStartedEntry), "started")]
[JsonDerivedType(typeof(TrialEntry), "trial")]
public record SweepJournalEntry
{
    public string? Key { get; init; }
    public string? WrittenAt { get; init; }
}

/// <summary>When the sweep first started (its wall-clock budget counts from here, across resumes).</summary>
public sealed record SweepStartedEntry(string At) : SweepJournalEntry;

/// <summary>A trial's recorded result (key <c>trial-{index:000}</c>).</summary>
public sealed record TrialEntry(int Index, SweepTrialResult Trial) : SweepJournalEntry;
